/**
 * Where cluster state comes from: the Kubernetes API (informers) or a directory of YAML. A source
 * only reports changes, previous and current object, like an informer's event handlers; it never
 * computes anything. `synced` fires once every kind has been listed completely: nothing may be
 * programmed before that (programming from a partial list would delete live services).
 */
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

import type { Problem } from '../model/index.js';

export interface ClusterEvents {
  service(previous: V1Service | undefined, current: V1Service | undefined): void;
  endpointSlice(previous: V1EndpointSlice | undefined, current: V1EndpointSlice | undefined): void;
  node(previous: V1Node | undefined, current: V1Node | undefined): void;
  /** networking.k8s.io/v1 ServiceCIDR: the ranges ClusterIPs come from (the service device's routes). */
  serviceCIDR?(previous: ServiceCIDR | undefined, current: ServiceCIDR | undefined): void;
  /** Every kind has been listed once. */
  synced(): void;
  /** The source lost or regained its connection (degraded health, metrics). */
  health?(healthy: boolean, reason?: string): void;
}

/** What the agent reads of a ServiceCIDR (the client library's V1ServiceCIDR, slim). */
export interface ServiceCIDR {
  metadata?: { name?: string; resourceVersion?: string };
  spec?: { cidrs?: string[] };
}

export interface ClusterSource {
  /** A name for logs: 'file:/etc/bpfproxy/cluster', 'kubernetes:https://…'. */
  readonly description: string;
  start(events: ClusterEvents): Promise<void>;
  stop(): Promise<void>;
  /** Where problems are reported on the objects themselves (Kubernetes Events), for a source with an API. */
  problemRecorder?(opts: ProblemRecorderOptions): ProblemRecorder;
}

export interface ProblemRecorderOptions {
  nodeName: string;
  log: (message: string, fields?: Record<string, unknown>) => void;
  onResult?: (result: 'created' | 'patched' | 'failed' | 'dropped') => void;
}

/** Takes the whole list of current problems after each sync that changed it; never blocks, never throws. */
export interface ProblemRecorder {
  observe(problems: readonly Problem[]): void;
  stop(): Promise<void>;
}

/** namespace/name, the key every tracker uses (of any value: it runs before an object is checked). */
export function objectKey(o: { metadata?: { namespace?: string; name?: string } }): string {
  const meta = (o as { metadata?: unknown } | null | undefined)?.metadata as { namespace?: unknown; name?: unknown } | null | undefined;
  return `${keyText(meta?.namespace)}/${keyText(meta?.name)}`;
}

function keyText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined || v === null) return '';
  // Not String(v): an object without a usable toString (JSON can give {"toString": 5}) throws.
  try {
    return JSON.stringify(v) ?? typeof v;
  } catch {
    return typeof v;
  }
}
