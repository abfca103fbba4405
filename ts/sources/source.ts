/**
 * Where cluster state comes from: the Kubernetes API (informers) or a directory of YAML. A source
 * only reports changes, previous and current object, like an informer's event handlers; it never
 * computes anything. `synced` fires once every kind has been listed completely: nothing may be
 * programmed before that (programming from a partial list would delete live services).
 */
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

export interface ClusterEvents {
  service(previous: V1Service | undefined, current: V1Service | undefined): void;
  endpointSlice(previous: V1EndpointSlice | undefined, current: V1EndpointSlice | undefined): void;
  node(previous: V1Node | undefined, current: V1Node | undefined): void;
  /** Every kind has been listed once. */
  synced(): void;
  /** The source lost or regained its connection (degraded health, metrics). */
  health?(healthy: boolean, reason?: string): void;
}

export interface ClusterSource {
  /** A name for logs: 'file:/etc/bpfproxy/cluster', 'kubernetes:https://…'. */
  readonly description: string;
  start(events: ClusterEvents): Promise<void>;
  stop(): Promise<void>;
}

/** namespace/name, the key every tracker uses. */
export function objectKey(o: { metadata?: { namespace?: string; name?: string } }): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}
