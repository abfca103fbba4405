/** Short-hands for the frames the packet tests send and expect. */
import type { PacketSpec, TcpFlagName } from '../../ts/packet/index.js';

export const POD_MAC = '02:00:00:00:01:01';
export const HOST_MAC = '02:00:00:00:01:02';
export const PEER_MAC = '02:00:00:00:00:aa';
export const UPLINK_MAC = '02:00:00:00:00:bb';

export function tcp(
  src: string, sport: number, dst: string, dport: number, flags: TcpFlagName[] = ['SYN'],
  more: { seq?: number; ack?: number; payload?: string; eth?: { src: string; dst: string } } = {},
): PacketSpec {
  return {
    eth: more.eth ?? { src: POD_MAC, dst: HOST_MAC },
    ip: { src, dst, id: 0x1234, df: true },
    tcp: { sport, dport, flags, seq: more.seq ?? 1000, ack: more.ack ?? 0, window: 29200 },
    ...(more.payload !== undefined ? { payload: more.payload } : {}),
  };
}

export function udp(src: string, sport: number, dst: string, dport: number, payload = 'hello', more: { noChecksum?: boolean; eth?: { src: string; dst: string } } = {}): PacketSpec {
  return {
    eth: more.eth ?? { src: POD_MAC, dst: HOST_MAC },
    ip: { src, dst, id: 0x4321 },
    udp: { sport, dport, ...(more.noChecksum ? { noChecksum: true } : {}) },
    payload,
  };
}

/** The same frame with addresses and ports replaced: what NAT should make of it. */
export function rewrite(spec: PacketSpec, to: { src?: string; sport?: number; dst?: string; dport?: number }): PacketSpec {
  const out: PacketSpec = { ...spec, ip: { ...spec.ip } };
  if (to.src) out.ip.src = to.src;
  if (to.dst) out.ip.dst = to.dst;
  if (spec.tcp) out.tcp = { ...spec.tcp, ...(to.sport ? { sport: to.sport } : {}), ...(to.dport ? { dport: to.dport } : {}) };
  if (spec.udp) out.udp = { ...spec.udp, ...(to.sport ? { sport: to.sport } : {}), ...(to.dport ? { dport: to.dport } : {}) };
  return out;
}

/** From the outside: frames arriving on the uplink. */
export const fromPeer = { src: PEER_MAC, dst: UPLINK_MAC };
