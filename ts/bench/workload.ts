/**
 * The Services a traffic scenario loads: N − 1 synthetic ClusterIP Services (ts/baselines/synthetic:
 * deterministic, sorted by name so that the last one is KUBE-SERVICES' last rule), plus the target
 * Service, named to sort last, whose endpoints are the bench's real backend pods and their sinks.
 * The same objects feed every path: iptables and nftables text through ts/baselines, bpfproxy
 * through the model. Synthetic endpoints are placed on another node (they are never contacted).
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import { generateScale, syntheticClusterIP, syntheticServiceName, SYNTHETIC_NAMESPACE, type BaselineInput } from '../baselines/index.js';
import type { PodState } from '../lab/lab-state.js';
import { SINK_PORT } from './topology.js';

export const TARGET_PORT = 80;
export const TARGET_NODE_PORT_TCP = 30080;
export const TARGET_NODE_PORT_UDP = 30081;

export interface Workload {
  input: BaselineInput;
  /** The target Service's ClusterIP (its rules are matched last). */
  clusterIp: string;
  services: number;
}

/** `services` Services in all (≥ 1); the last is the target, served by `backends`. */
export function trafficWorkload(services: number, backends: readonly PodState[], opts: { nodePort?: boolean; endpointsPerService?: number } = {}): Workload {
  if (services < 1) throw new RangeError('a traffic workload needs at least the target Service');
  const index = services - 1;
  const input = generateScale(index, opts.endpointsPerService ?? 1, { endpointNodes: ['node-2'] });
  const name = syntheticServiceName(index);
  const clusterIp = syntheticClusterIP(index);
  const nodePort = (port: number) => (opts.nodePort ? { nodePort: port } : {});
  const service: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: SYNTHETIC_NAMESPACE },
    spec: {
      type: opts.nodePort ? 'NodePort' : 'ClusterIP',
      clusterIP: clusterIp,
      clusterIPs: [clusterIp],
      ports: [
        { name: 'tcp', port: TARGET_PORT, protocol: 'TCP', targetPort: 'tcp' as never, ...nodePort(TARGET_NODE_PORT_TCP) },
        { name: 'udp', port: TARGET_PORT, protocol: 'UDP', targetPort: 'udp' as never, ...nodePort(TARGET_NODE_PORT_UDP) },
      ],
    },
  };
  const slice: V1EndpointSlice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${name}-target`, namespace: SYNTHETIC_NAMESPACE, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    ports: [
      { name: 'tcp', port: SINK_PORT, protocol: 'TCP' },
      { name: 'udp', port: SINK_PORT, protocol: 'UDP' },
    ],
    endpoints: backends.map((p) => ({
      addresses: [p.address],
      nodeName: p.node,
      targetRef: { kind: 'Pod', namespace: SYNTHETIC_NAMESPACE, name: p.name },
      conditions: { ready: true, serving: true, terminating: false },
    })),
  };
  return { input: { ...input, services: [...input.services, service], endpointSlices: [...input.endpointSlices, slice] }, clusterIp, services };
}
