/**
 * Ethernet / IPv4 / TCP / UDP / ICMP frames: a builder that fills in lengths and checksums, a
 * parser, and a checksum verifier. Used by the packet tests and by `explain`.
 */
import { isIPv4 } from 'node:net';

import { internetChecksum, onesSum, pseudoHeaderSum } from './checksum.js';

export const ETH_P_IP = 0x0800;
export const ETH_HLEN = 14;
export const PROTO = { ICMP: 1, TCP: 6, UDP: 17, SCTP: 132 } as const;

export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 } as const;
export type TcpFlagName = keyof typeof TCP_FLAGS;

export interface EthSpec { src?: string; dst?: string; type?: number }
export interface Ipv4Spec {
  src: string;
  dst: string;
  ttl?: number;
  id?: number;
  tos?: number;
  /** Don't Fragment. */
  df?: boolean;
  /** More Fragments. */
  mf?: boolean;
  /** Fragment offset in 8-byte units. */
  fragOffset?: number;
  /** Raw IP options (padded to 4 bytes). */
  options?: Buffer;
  /** The protocol number when there is no tcp/udp/icmp part (SCTP, ...). */
  proto?: number;
}
export interface TcpSpec {
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags?: TcpFlagName[] | number;
  window?: number;
  options?: Buffer;
}
export interface UdpSpec {
  sport: number;
  dport: number;
  /** Send a zero ("no") checksum. */
  noChecksum?: boolean;
}
export interface IcmpSpec { type: number; code: number; rest?: number }

export interface PacketSpec {
  eth?: EthSpec;
  ip: Ipv4Spec;
  tcp?: TcpSpec;
  udp?: UdpSpec;
  icmp?: IcmpSpec;
  payload?: Buffer | string;
}

export function macToBuffer(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6) throw new TypeError(`not a MAC address: '${mac}'`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function bufferToMac(b: Buffer, at = 0): string {
  return [...b.subarray(at, at + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function ip4(addr: string): Buffer {
  if (!isIPv4(addr)) throw new TypeError(`not an IPv4 address: '${addr}'`);
  return Buffer.from(addr.split('.').map(Number));
}

const ip4str = (b: Buffer, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

export function tcpFlagsOf(flags: TcpFlagName[] | number | undefined): number {
  if (flags === undefined) return 0;
  if (typeof flags === 'number') return flags;
  return flags.reduce((acc, f) => acc | TCP_FLAGS[f], 0);
}

export function tcpFlagNames(flags: number): TcpFlagName[] {
  return (Object.keys(TCP_FLAGS) as TcpFlagName[]).filter((k) => flags & TCP_FLAGS[k]);
}

function l4Bytes(spec: PacketSpec, src: Buffer, dst: Buffer): { proto: number; bytes: Buffer } {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0));
  if (spec.tcp) {
    const opts = spec.tcp.options ?? Buffer.alloc(0);
    if (opts.length % 4) throw new RangeError('TCP options must be padded to 4 bytes');
    const h = Buffer.alloc(20 + opts.length);
    h.writeUInt16BE(spec.tcp.sport, 0);
    h.writeUInt16BE(spec.tcp.dport, 2);
    h.writeUInt32BE((spec.tcp.seq ?? 0) >>> 0, 4);
    h.writeUInt32BE((spec.tcp.ack ?? 0) >>> 0, 8);
    h[12] = (h.length / 4) << 4;
    h[13] = tcpFlagsOf(spec.tcp.flags);
    h.writeUInt16BE(spec.tcp.window ?? 65535, 14);
    opts.copy(h, 20);
    const seg = Buffer.concat([h, payload]);
    seg.writeUInt16BE(internetChecksum(seg, pseudoHeaderSum(src, dst, PROTO.TCP, seg.length)), 16);
    return { proto: PROTO.TCP, bytes: seg };
  }
  if (spec.udp) {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(spec.udp.sport, 0);
    h.writeUInt16BE(spec.udp.dport, 2);
    h.writeUInt16BE(8 + payload.length, 4);
    const seg = Buffer.concat([h, payload]);
    if (!spec.udp.noChecksum) {
      const c = internetChecksum(seg, pseudoHeaderSum(src, dst, PROTO.UDP, seg.length));
      seg.writeUInt16BE(c === 0 ? 0xffff : c, 6);
    }
    return { proto: PROTO.UDP, bytes: seg };
  }
  if (spec.icmp) {
    const h = Buffer.alloc(8);
    h[0] = spec.icmp.type;
    h[1] = spec.icmp.code;
    h.writeUInt32BE((spec.icmp.rest ?? 0) >>> 0, 4);
    const seg = Buffer.concat([h, payload]);
    seg.writeUInt16BE(internetChecksum(seg), 2);
    return { proto: PROTO.ICMP, bytes: seg };
  }
  return { proto: spec.ip.proto ?? 0, bytes: payload };
}

/** An Ethernet frame with IPv4 and the given L4 part; lengths and checksums are computed. */
export function buildPacket(spec: PacketSpec): Buffer {
  const src = ip4(spec.ip.src);
  const dst = ip4(spec.ip.dst);
  const { proto, bytes } = l4Bytes(spec, src, dst);
  const opts = spec.ip.options ?? Buffer.alloc(0);
  if (opts.length % 4) throw new RangeError('IP options must be padded to 4 bytes');
  const ip = Buffer.alloc(20 + opts.length);
  ip[0] = 0x40 | (ip.length / 4);
  ip[1] = spec.ip.tos ?? 0;
  ip.writeUInt16BE(ip.length + bytes.length, 2);
  ip.writeUInt16BE(spec.ip.id ?? 0, 4);
  ip.writeUInt16BE((spec.ip.df ? 0x4000 : 0) | (spec.ip.mf ? 0x2000 : 0) | (spec.ip.fragOffset ?? 0), 6);
  ip[8] = spec.ip.ttl ?? 64;
  ip[9] = proto;
  src.copy(ip, 12);
  dst.copy(ip, 16);
  opts.copy(ip, 20);
  ip.writeUInt16BE(internetChecksum(ip), 10);
  const eth = Buffer.alloc(ETH_HLEN);
  macToBuffer(spec.eth?.dst ?? '02:00:00:00:00:02').copy(eth, 0);
  macToBuffer(spec.eth?.src ?? '02:00:00:00:00:01').copy(eth, 6);
  eth.writeUInt16BE(spec.eth?.type ?? ETH_P_IP, 12);
  return Buffer.concat([eth, ip, bytes]);
}

export interface ParsedPacket {
  eth: { src: string; dst: string; type: number };
  ip?: {
    src: string; dst: string; ttl: number; id: number; tos: number; proto: number; totLen: number; ihl: number;
    df: boolean; mf: boolean; fragOffset: number; checksum: number;
  };
  tcp?: { sport: number; dport: number; seq: number; ack: number; flags: number; flagNames: TcpFlagName[]; doff: number; window: number; checksum: number };
  udp?: { sport: number; dport: number; length: number; checksum: number };
  icmp?: { type: number; code: number; checksum: number; rest: number };
  /** L4 payload (for ICMP: what follows its 8-byte header). */
  payload: Buffer;
}

export function parsePacket(buf: Buffer): ParsedPacket {
  if (buf.length < ETH_HLEN) throw new RangeError(`frame of ${buf.length} bytes`);
  const out: ParsedPacket = {
    eth: { dst: bufferToMac(buf, 0), src: bufferToMac(buf, 6), type: buf.readUInt16BE(12) },
    payload: Buffer.alloc(0),
  };
  if (out.eth.type !== ETH_P_IP) {
    out.payload = buf.subarray(ETH_HLEN);
    return out;
  }
  const ip = buf.subarray(ETH_HLEN);
  const ihl = (ip[0]! & 0x0f) * 4;
  const totLen = ip.readUInt16BE(2);
  const frag = ip.readUInt16BE(6);
  out.ip = {
    src: ip4str(ip, 12), dst: ip4str(ip, 16), ttl: ip[8]!, id: ip.readUInt16BE(4), tos: ip[1]!, proto: ip[9]!, totLen, ihl,
    df: !!(frag & 0x4000), mf: !!(frag & 0x2000), fragOffset: frag & 0x1fff, checksum: ip.readUInt16BE(10),
  };
  const l4 = ip.subarray(ihl, totLen);
  if (out.ip.fragOffset !== 0) {
    out.payload = l4;
    return out;
  }
  if (out.ip.proto === PROTO.TCP && l4.length >= 20) {
    const doff = (l4[12]! >> 4) * 4;
    out.tcp = {
      sport: l4.readUInt16BE(0), dport: l4.readUInt16BE(2), seq: l4.readUInt32BE(4), ack: l4.readUInt32BE(8),
      flags: l4[13]!, flagNames: tcpFlagNames(l4[13]!), doff, window: l4.readUInt16BE(14), checksum: l4.readUInt16BE(16),
    };
    out.payload = l4.subarray(doff);
  } else if (out.ip.proto === PROTO.UDP && l4.length >= 8) {
    out.udp = { sport: l4.readUInt16BE(0), dport: l4.readUInt16BE(2), length: l4.readUInt16BE(4), checksum: l4.readUInt16BE(6) };
    out.payload = l4.subarray(8);
  } else if (out.ip.proto === PROTO.ICMP && l4.length >= 8) {
    out.icmp = { type: l4[0]!, code: l4[1]!, checksum: l4.readUInt16BE(2), rest: l4.readUInt32BE(4) };
    out.payload = l4.subarray(8);
  } else {
    out.payload = l4;
  }
  return out;
}

/** Problems with the frame's IPv4 and L4 checksums and lengths; empty when all are right. */
export function checksumProblems(buf: Buffer): string[] {
  const problems: string[] = [];
  if (buf.length < ETH_HLEN + 20 || buf.readUInt16BE(12) !== ETH_P_IP) return ['not an IPv4 frame'];
  const ip = buf.subarray(ETH_HLEN);
  const ihl = (ip[0]! & 0x0f) * 4;
  const totLen = ip.readUInt16BE(2);
  if (totLen > ip.length) problems.push(`IPv4 total length ${totLen} exceeds the ${ip.length} bytes present`);
  if (onesSum(ip.subarray(0, ihl)) !== 0xffff) problems.push('IPv4 header checksum is wrong');
  const frag = ip.readUInt16BE(6);
  if (frag & 0x3fff) return problems; // a fragment's L4 checksum covers the reassembled datagram
  const l4 = ip.subarray(ihl, Math.min(totLen, ip.length));
  const src = ip.subarray(12, 16);
  const dst = ip.subarray(16, 20);
  const proto = ip[9]!;
  if (proto === PROTO.TCP) {
    if (onesSum(l4, pseudoHeaderSum(src, dst, proto, l4.length)) !== 0xffff) problems.push('TCP checksum is wrong');
  } else if (proto === PROTO.UDP) {
    if (l4.readUInt16BE(4) !== l4.length) problems.push(`UDP length ${l4.readUInt16BE(4)} != ${l4.length}`);
    if (l4.readUInt16BE(6) !== 0 && onesSum(l4, pseudoHeaderSum(src, dst, proto, l4.length)) !== 0xffff) problems.push('UDP checksum is wrong');
  } else if (proto === PROTO.ICMP) {
    if (onesSum(l4) !== 0xffff) problems.push('ICMP checksum is wrong');
  }
  return problems;
}
