/**
 * The EndpointSlice controller, for the lab: from a Service with a selector and the lab's pods, the
 * slices Kubernetes' controller would write. Pure, so it is tested on its own.
 *
 * Like the real controller: pods in the Service's namespace whose labels match the selector; one
 * endpoint per pod with ready / serving / terminating conditions (ready is never true for a
 * terminating pod unless publishNotReadyAddresses), nodeName, zone and a targetRef; named target
 * ports resolved per pod (name and protocol must match a container port; a pod without it is left
 * out of that port); pods with the same resolved ports share slices of at most 100 endpoints; a
 * Service that selects nothing gets one empty placeholder slice. Slice names are the Service name
 * plus five characters, as the controller's generateName gives, but derived from the port set so
 * that the same input always gives the same names.
 */
import { createHash } from 'node:crypto';

import type { DiscoveryV1EndpointPort, V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import type { PodPort } from '../lab-state.js';

export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
export const LABEL_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';
export const CONTROLLER_NAME = 'endpointslice-controller.k8s.io';
export const LABEL_HEADLESS = 'service.kubernetes.io/headless';
export const LABEL_ZONE = 'topology.kubernetes.io/zone';
export const MAX_ENDPOINTS_PER_SLICE = 100;

/** What the controller needs of a lab pod. */
export interface SelectablePod {
  name: string;
  namespace: string;
  node: string;
  address: string;
  labels: Readonly<Record<string, string>>;
  ports: readonly PodPort[];
  /** Being deleted: still serving, no longer ready. */
  terminating: boolean;
}

/** Node name → its topology.kubernetes.io/zone. */
export type NodeZones = ReadonlyMap<string, string>;

export function selects(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The container port a Service port's targetPort names on this pod, or undefined when it has none. */
export function resolveTargetPort(targetPort: number | string | undefined, servicePort: number, protocol: string, pod: SelectablePod): number | undefined {
  if (targetPort === undefined) return servicePort;
  if (typeof targetPort === 'number') return targetPort;
  if (/^\d+$/.test(targetPort)) return Number(targetPort);
  return pod.ports.find((p) => p.name === targetPort && p.protocol === protocol)?.port;
}

const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function suffix(key: string): string {
  const digest = createHash('sha256').update(key).digest();
  return Array.from(digest.subarray(0, 5), (b) => ALPHABET[b % ALPHABET.length]).join('');
}

/** The slices for one Service; [] for a Service without a selector (its slices are the user's). */
export function endpointSlicesFor(service: V1Service, pods: readonly SelectablePod[], zones: NodeZones): V1EndpointSlice[] {
  const spec = service.spec;
  const name = service.metadata?.name ?? '';
  const namespace = service.metadata?.namespace ?? 'default';
  if (!spec?.selector || Object.keys(spec.selector).length === 0 || spec.type === 'ExternalName') return [];
  const servicePorts = spec.ports ?? [];
  const selected = pods.filter((p) => p.namespace === namespace && selects(spec.selector, p.labels)).sort((a, b) => a.name.localeCompare(b.name));

  // Group pods by the ports their endpoints get.
  const groups = new Map<string, { ports: DiscoveryV1EndpointPort[]; pods: SelectablePod[] }>();
  for (const pod of selected) {
    const ports: DiscoveryV1EndpointPort[] = [];
    for (const sp of servicePorts) {
      const port = resolveTargetPort(sp.targetPort as number | string | undefined, sp.port, sp.protocol ?? 'TCP', pod);
      if (port !== undefined) ports.push({ name: sp.name ?? '', port, protocol: sp.protocol ?? 'TCP' });
    }
    const key = JSON.stringify(ports);
    const group = groups.get(key) ?? { ports, pods: [] };
    group.pods.push(pod);
    groups.set(key, group);
  }

  const labels: Record<string, string> = { [LABEL_SERVICE_NAME]: name, [LABEL_MANAGED_BY]: CONTROLLER_NAME };
  if (spec.clusterIP === 'None') labels[LABEL_HEADLESS] = '';
  const slice = (key: string, ports: DiscoveryV1EndpointPort[], members: SelectablePod[]): V1EndpointSlice => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${name}-${suffix(`${namespace}/${name}/${key}`)}`,
      namespace,
      labels: { ...labels },
    },
    addressType: 'IPv4',
    ports,
    endpoints: members.map((pod) => {
      const serving = true;
      const zone = zones.get(pod.node);
      return {
        addresses: [pod.address],
        conditions: { ready: spec.publishNotReadyAddresses === true || (serving && !pod.terminating), serving, terminating: pod.terminating },
        nodeName: pod.node,
        ...(zone !== undefined && { zone }),
        targetRef: { kind: 'Pod', namespace, name: pod.name },
      };
    }),
  });

  if (groups.size === 0) return [slice('placeholder', [], [])];
  const slices: V1EndpointSlice[] = [];
  for (const [key, group] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    for (let i = 0; i < group.pods.length; i += MAX_ENDPOINTS_PER_SLICE) {
      slices.push(slice(i === 0 ? key : `${key}#${i / MAX_ENDPOINTS_PER_SLICE}`, group.ports, group.pods.slice(i, i + MAX_ENDPOINTS_PER_SLICE)));
    }
  }
  return slices;
}
