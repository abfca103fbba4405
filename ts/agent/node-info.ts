/**
 * This node as the model needs it, from its Node object (name = hostnameOverride): addresses
 * (InternalIP first, then ExternalIP; IPv4 only until the IPv6 dataplane exists), podCIDRs and
 * the zone label. Without a Node object (a file source with no Node, or before the API has one)
 * the uplink's addresses stand in, as kube-proxy falls back to the host's addresses.
 */
import { isIPv4 } from 'node:net';

import type { V1Node } from '@kubernetes/client-node';

import type { NodeInfo } from '../model/index.js';

export const ZONE_LABEL = 'topology.kubernetes.io/zone';
/** The taint the cluster autoscaler puts on a node it is about to delete (kube-proxy ≥ 1.31 fails /healthz on it). */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

export interface NodeView {
  info: NodeInfo;
  /** Whether a Node object was found (else the fallback addresses were used). */
  fromNodeObject: boolean;
}

export function nodeInfoFrom(node: V1Node | undefined, name: string, fallbackAddresses: readonly string[]): NodeView {
  if (!node) return { info: { name, addresses: [...fallbackAddresses], podCIDRs: [] }, fromNodeObject: false };
  const addrs = node.status?.addresses ?? [];
  const byType = (type: string) => addrs.filter((a) => a.type === type && isIPv4(a.address)).map((a) => a.address);
  const addresses = [...new Set([...byType('InternalIP'), ...byType('ExternalIP')])];
  const podCIDRs = node.spec?.podCIDRs?.length ? node.spec.podCIDRs : node.spec?.podCIDR ? [node.spec.podCIDR] : [];
  const zone = node.metadata?.labels?.[ZONE_LABEL];
  return {
    info: {
      name,
      // A Node object without addresses yet (a kubelet still starting) must not leave NodePorts nowhere.
      addresses: addresses.length > 0 ? addresses : [...fallbackAddresses],
      podCIDRs: podCIDRs.filter((c) => c.includes('.')),
      ...(zone ? { zone } : {}),
    },
    fromNodeObject: true,
  };
}

/** Why /healthz must fail because the node is going away, or undefined. */
export function nodeDeletionReason(node: V1Node | undefined): string | undefined {
  if (!node) return undefined;
  if (node.metadata?.deletionTimestamp) return `node ${node.metadata.name} is being deleted (deletionTimestamp ${String(node.metadata.deletionTimestamp)})`;
  if (node.spec?.taints?.some((t) => t.key === TO_BE_DELETED_TAINT)) return `node ${node.metadata?.name} has the ${TO_BE_DELETED_TAINT} taint`;
  return undefined;
}
