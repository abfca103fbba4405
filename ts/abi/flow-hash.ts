/**
 * The flow hash of bpf/lib/hash.h: lookup3's three-word hash over (saddr, daddr, sport<<16|dport)
 * as host-order numbers, proto as the initial value. Maglev indexes its table with hash % M, so
 * this tells which entry (and backend) a flow gets, on any node.
 */
import { ipv4ToBuffer } from './codec.js';

const rol32 = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

export function jhash3words(a: number, b: number, c: number, initval: number): number {
  const init = (initval + 0xdeadbeef + (3 << 2)) >>> 0;
  a = (a + init) >>> 0;
  b = (b + init) >>> 0;
  c = (c + init) >>> 0;
  c = ((c ^ b) - rol32(b, 14)) >>> 0;
  a = ((a ^ c) - rol32(c, 11)) >>> 0;
  b = ((b ^ a) - rol32(a, 25)) >>> 0;
  c = ((c ^ b) - rol32(b, 16)) >>> 0;
  a = ((a ^ c) - rol32(c, 4)) >>> 0;
  b = ((b ^ a) - rol32(a, 14)) >>> 0;
  c = ((c ^ b) - rol32(b, 24)) >>> 0;
  return c;
}

export interface FlowTuple {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: number;
}

export function flowHash4(t: FlowTuple): number {
  return jhash3words(
    ipv4ToBuffer(t.saddr).readUInt32BE(0),
    ipv4ToBuffer(t.daddr).readUInt32BE(0),
    (((t.sport & 0xffff) << 16) | (t.dport & 0xffff)) >>> 0,
    t.proto,
  );
}

/** The Maglev table position of a flow. */
export function maglevIndex(t: FlowTuple, m: number): number {
  return flowHash4(t) % m;
}
