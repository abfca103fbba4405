/**
 * The datapath's load-time configuration: the `const volatile` variables of bpf/lib/config.h.
 * Only what is given here is written; the C defaults are the defaults. The drift test compares
 * this list with the objects' .rodata.
 */
import { ipv4ToBuffer } from './codec.js';

export interface DatapathConfig {
  /** Source address of masqueraded traffic; replies to it are translated on the uplink. */
  nodeIp?: string;
  /** Source address of hairpin traffic (a pod reaching itself through its Service). */
  hairpinIp?: string;
  /**
   * The cluster (pod) CIDRs, 'a.b.c.d/len': kube-proxy's local-traffic detector. Not rodata: the
   * loader writes them to clustercidr4_v1 (a node may have several); frontends opt in with
   * SVC_F_DETECT_LOCAL. Empty or absent: no detector.
   */
  clusterCidrs?: readonly string[];
  /** SNAT source ports: keep net.ipv4.ip_local_port_range below snatPortMin. */
  snatPortMin?: number;
  snatPortMax?: number;
  /** Conntrack lifetimes by flow state (bpf/lib/config.h has the defaults). SYN_SENT: no answer yet. */
  ctTcpSynSeconds?: number;
  ctTcpEstablishedSeconds?: number;
  /** A FIN one way (half-closed). */
  ctTcpCloseWaitSeconds?: number;
  /** FINs both ways. */
  ctTcpTimeWaitSeconds?: number;
  /** After an RST (CLOSE). */
  ctTcpResetSeconds?: number;
  /** UDP without a reply yet. */
  ctUdpSeconds?: number;
  /** UDP that got a reply. */
  ctUdpStreamSeconds?: number;
  ctOtherSeconds?: number;
  /** Maglev table size, a prime in 251..131071. */
  maglevM?: number;
  /** Forward north-south traffic with bpf_fib_lookup + redirect (else hand it to the stack). */
  fibRedirect?: boolean;
}

type RodataKind = 'ipv4' | 'u32';

/** C variable, its size and how DatapathConfig feeds it. */
export const rodataVariables: readonly { cName: string; size: number; kind: RodataKind }[] = [
  { cName: 'cfg_node_ip', size: 4, kind: 'ipv4' },
  { cName: 'cfg_hairpin_ip', size: 4, kind: 'ipv4' },
  { cName: 'cfg_snat_port_min', size: 4, kind: 'u32' },
  { cName: 'cfg_snat_port_max', size: 4, kind: 'u32' },
  { cName: 'cfg_ct_tcp_syn_s', size: 4, kind: 'u32' },
  { cName: 'cfg_ct_tcp_established_s', size: 4, kind: 'u32' },
  { cName: 'cfg_ct_tcp_close_wait_s', size: 4, kind: 'u32' },
  { cName: 'cfg_ct_tcp_time_wait_s', size: 4, kind: 'u32' },
  { cName: 'cfg_ct_tcp_reset_s', size: 4, kind: 'u32' },
  { cName: 'cfg_ct_udp_s', size: 4, kind: 'u32' },
  { cName: 'cfg_ct_udp_stream_s', size: 4, kind: 'u32' },
  { cName: 'cfg_ct_other_s', size: 4, kind: 'u32' },
  { cName: 'cfg_maglev_m', size: 4, kind: 'u32' },
  { cName: 'cfg_fib_redirect', size: 4, kind: 'u32' },
];

/** The rodata values for BpfObject's `rodata` option. Addresses go as network-order Buffers. */
export function rodataOf(c: DatapathConfig): Record<string, number | Buffer> {
  const out: Record<string, number | Buffer> = {};
  const set = (name: string, v: number | boolean | undefined) => {
    if (v !== undefined) out[name] = typeof v === 'boolean' ? Number(v) : v;
  };
  if (c.nodeIp !== undefined) out.cfg_node_ip = ipv4ToBuffer(c.nodeIp);
  if (c.hairpinIp !== undefined) out.cfg_hairpin_ip = ipv4ToBuffer(c.hairpinIp);
  if ((c.snatPortMin ?? 61000) > (c.snatPortMax ?? 65535)) throw new RangeError('snatPortMin > snatPortMax');
  set('cfg_snat_port_min', c.snatPortMin);
  set('cfg_snat_port_max', c.snatPortMax);
  set('cfg_ct_tcp_syn_s', c.ctTcpSynSeconds);
  set('cfg_ct_tcp_established_s', c.ctTcpEstablishedSeconds);
  set('cfg_ct_tcp_close_wait_s', c.ctTcpCloseWaitSeconds);
  set('cfg_ct_tcp_time_wait_s', c.ctTcpTimeWaitSeconds);
  set('cfg_ct_tcp_reset_s', c.ctTcpResetSeconds);
  set('cfg_ct_udp_s', c.ctUdpSeconds);
  set('cfg_ct_udp_stream_s', c.ctUdpStreamSeconds);
  set('cfg_ct_other_s', c.ctOtherSeconds);
  if (c.maglevM !== undefined && (c.maglevM < 251 || c.maglevM > 131071)) throw new RangeError(`maglevM ${c.maglevM} outside 251..131071`);
  set('cfg_maglev_m', c.maglevM);
  set('cfg_fib_redirect', c.fibRedirect);
  return out;
}
