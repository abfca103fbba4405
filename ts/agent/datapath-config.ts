/**
 * From the agent's configuration to the datapath's load-time configuration (rodata) and map sizes.
 *
 * - nodeIp: the uplink's primary IPv4 address. Masqueraded flows leave through the uplink with it
 *   as source, and their replies come back to it there.
 * - hairpinIp: the same address. A pod reaching itself through its Service sees the node as the
 *   client (kube-proxy masquerades hairpin traffic to a node address as well); the pod's reply to
 *   it leaves through the pod's veth, where tc_pod reverses it.
 * - clusterCidrs: every IPv4 CIDR of clusterCIDR (kube-proxy's local-traffic detector); which
 *   frontends use it, and masqueradeAll, are per-frontend flags the model decides.
 * - conntrack lifetimes: kube-proxy's conntrack options, for the states they name (established,
 *   CLOSE_WAIT; UDP unreplied = udpTimeout, replied = udpStreamTimeout). The states kube-proxy does
 *   not configure (SYN_SENT, TIME_WAIT, CLOSE) keep netfilter's lifetimes, bpf/lib/config.h's.
 */
import type { DatapathConfig } from '../abi/config.js';
import type { MapKey } from '../abi/maps.js';
import { parseCidr4, splitClusterCIDR } from '../model/index.js';
import type { AgentConfig, MapSizes } from './config.js';

export function datapathConfigFor(config: AgentConfig, nodeIp: string | undefined): { config: DatapathConfig; notes: string[] } {
  const notes: string[] = [];
  const p = config.proxy;
  const cidrs = splitClusterCIDR(p.clusterCIDR).filter((c) => parseCidr4(c) !== undefined);
  if (!nodeIp) notes.push('the uplink has no IPv4 address: masqueraded and hairpin traffic cannot be translated');
  const seconds = (ms: number) => Math.max(1, Math.round(ms / 1000));
  return {
    config: {
      ...(nodeIp ? { nodeIp, hairpinIp: nodeIp } : {}),
      clusterCidrs: cidrs,
      snatPortMin: p.snatPortRange.min,
      snatPortMax: p.snatPortRange.max,
      ctTcpEstablishedSeconds: seconds(p.conntrack.tcpEstablishedTimeout),
      ctTcpCloseWaitSeconds: seconds(p.conntrack.tcpCloseWaitTimeout),
      ctUdpSeconds: seconds(p.conntrack.udpTimeout),
      ctUdpStreamSeconds: seconds(p.conntrack.udpStreamTimeout),
      maglevM: p.maglevTableSize,
    },
    notes,
  };
}

export function loaderMapSizes(sizes: MapSizes): Partial<Record<MapKey, number>> {
  return { svc4: sizes.services, backends: sizes.backends, ct4: sizes.conntrack, aff4: sizes.affinity };
}

/** The configuration field that sizes each map (the others have fixed sizes). */
export const MAP_SIZE_FIELDS: Partial<Record<MapKey, string>> = {
  svc4: 'mapSizes.services',
  backends: 'mapSizes.backends',
  ct4: 'mapSizes.conntrack',
  aff4: 'mapSizes.affinity',
};
