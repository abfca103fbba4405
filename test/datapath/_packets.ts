/** Short-hands for the frames the packet tests send and expect. */
import { buildPacket, internetChecksum, type PacketSpec, type TcpFlagName } from '../../ts/packet/index.js';

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

/**
 * The datagram of `spec` cut into IPv4 fragments: `cuts` are offsets into the IP payload (the L4
 * header included), multiples of 8, in order. Each fragment is a spec of raw payload (its L4 bytes
 * as they are in the whole datagram: the first fragment's TCP/UDP checksum covers the reassembled
 * datagram), so that translating the datagram then cutting it gives the fragments NAT should make.
 */
export function fragments(spec: PacketSpec, cuts: number[]): PacketSpec[] {
  const whole = buildPacket(spec);
  const ihl = (whole[14]! & 0x0f) * 4;
  const proto = whole[14 + 9]!;
  const l4 = whole.subarray(14 + ihl);
  const bounds = [0, ...cuts, l4.length];
  const out: PacketSpec[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const from = bounds[i]!;
    if (from % 8) throw new RangeError(`fragment offset ${from} is not a multiple of 8`);
    const { tcp: _t, udp: _u, icmp: _i, ...rest } = spec;
    out.push({
      ...rest,
      ip: { ...spec.ip, df: false, proto, mf: i + 2 < bounds.length, fragOffset: from / 8 },
      payload: Buffer.from(l4.subarray(from, bounds[i + 1]!)),
    });
  }
  return out;
}

/** Frames of fragments put back together (RFC 791 reassembly of a complete, ordered set). */
export function reassemble(frames: Buffer[]): Buffer {
  const parts = frames.map((f) => {
    const ihl = (f[14]! & 0x0f) * 4;
    const word = f.readUInt16BE(14 + 6);
    return { off: (word & 0x1fff) * 8, data: f.subarray(14 + ihl, 14 + f.readUInt16BE(14 + 2)), head: f.subarray(0, 14 + ihl) };
  }).sort((a, b) => a.off - b.off);
  const first = parts[0]!;
  let at = 0;
  for (const p of parts) {
    if (p.off !== at) throw new Error(`fragments leave a hole or overlap at ${at}`);
    at += p.data.length;
  }
  const l4 = Buffer.concat(parts.map((p) => p.data));
  const head = Buffer.from(first.head);
  head.writeUInt16BE(head.length - 14 + l4.length, 14 + 2);
  head.writeUInt16BE(head.readUInt16BE(14 + 6) & 0x4000, 14 + 6);
  head.writeUInt16BE(0, 14 + 10);
  head.writeUInt16BE(internetChecksum(head.subarray(14)), 14 + 10);
  return Buffer.concat([head, l4]);
}
