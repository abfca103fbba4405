/**
 * The Node objects of a lab, as a kubelet would register them: name node-k, its InternalIP, its pod
 * CIDR and a zone label (zones go round a, b, c, as in `--api kube` mode's kube-nodes.ts, so that
 * topology-aware routing has zones to choose between). The agents read them for their own node
 * address, pod CIDR and zone.
 */
import type { V1Node } from '@kubernetes/client-node';

import type { NodeState } from './lab-state.js';

export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** node-1 → zone-a, node-2 → zone-b, node-3 → zone-c, node-4 → zone-a, … */
export function zoneOf(node: Pick<NodeState, 'index'>): string {
  return `zone-${'abc'[(node.index - 1) % 3]}`;
}

export function nodeObject(node: NodeState): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node.name,
      labels: { 'kubernetes.io/hostname': node.name, 'kubernetes.io/os': 'linux', [ZONE_LABEL]: zoneOf(node) },
    },
    spec: { podCIDR: node.podCidr, podCIDRs: [node.podCidr] },
    status: {
      addresses: nodeAddresses(node),
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

/** A Node's status.addresses: its InternalIP(s) and Hostname, as both modes register them. */
export function nodeAddresses(node: NodeState): { type: string; address: string }[] {
  return [
    { type: 'InternalIP', address: node.address },
    // A node with a second uplink reports both addresses, as cloud nodes with two NICs do.
    ...(node.secondUplink ? [{ type: 'InternalIP', address: node.secondUplink.address }] : []),
    { type: 'Hostname', address: node.name },
  ];
}
