/**
 * clustercidr4_v1: the cluster (pod) CIDRs, kube-proxy's local-traffic detector, as an LPM set the
 * datapath asks for frontends flagged SVC_F_DETECT_LOCAL. They are configuration, not state: the
 * loader writes them once per load (like rodata, but a node may have several and a restart with a
 * new clusterCIDR must replace a pinned set), and the sync loop never touches them.
 */
import { formatIPv4, parseCidr4 } from '../util/ip.js';
import type { DatapathMaps } from './typed-map.js';

/** Makes clustercidr4_v1 hold exactly `cidrs` (IPv4 'a.b.c.d/len'; anything else is refused). */
export function writeClusterCidrs(maps: Pick<DatapathMaps, 'clustercidr4'>, cidrs: readonly string[]): void {
  const wanted = new Map<string, { prefixlen: number; addr: string }>();
  for (const text of cidrs) {
    const cidr = parseCidr4(text);
    if (cidr === undefined) throw new TypeError(`clusterCidrs: '${text}' is not an IPv4 CIDR`);
    const key = { prefixlen: cidr.prefix, addr: formatIPv4(cidr.base) };
    wanted.set(`${key.addr}/${key.prefixlen}`, key);
  }
  for (const [key] of maps.clustercidr4.entries()) {
    if (!wanted.has(`${key.addr}/${key.prefixlen}`)) maps.clustercidr4.delete(key);
  }
  for (const key of wanted.values()) maps.clustercidr4.set(key, 1);
}

/** The cluster CIDRs the datapath holds, sorted. */
export function readClusterCidrs(maps: Pick<DatapathMaps, 'clustercidr4'>): string[] {
  return maps.clustercidr4
    .entries()
    .map(([k]) => `${k.addr}/${k.prefixlen}`)
    .sort();
}
