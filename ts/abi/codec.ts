/**
 * Declarative codecs for the C structs of bpf/include/bpfproxy: each field says its name (as in C),
 * byte offset, type and so byte order. test/abi/drift.test.ts holds every codec against the BTF of
 * the compiled objects, so a layout change on one side and not the other fails CI.
 */
import { isIPv4 } from 'node:net';

import { parseIPv4 } from '../util/ip.js';

/** u*: host (little-endian) order; be16/be32: network order numbers; ipv4: dotted quad, network order. */
export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'be32' | 'ipv4';

export interface FieldSpec {
  readonly name: string;
  readonly offset: number;
  readonly type: FieldType;
}

type FieldValue<T extends FieldType> = T extends 'u64' ? bigint : T extends 'ipv4' ? string : number;

export type StructValue<F extends readonly FieldSpec[]> = {
  [E in F[number] as E['name']]: FieldValue<E['type']>;
};

export const fieldSize: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8, be16: 2, be32: 4, ipv4: 4 };

export interface StructCodec<T> {
  /** The C struct's name, as BTF knows it. */
  readonly cName: string;
  readonly size: number;
  readonly fields: readonly FieldSpec[];
  /** Missing fields are zero. */
  encode(value: Partial<T>): Buffer;
  encodeInto(value: Partial<T>, buf: Buffer, at: number): void;
  decode(buf: Buffer, at?: number): T;
}

export function ipv4ToBuffer(addr: string): Buffer {
  if (!isIPv4(addr)) throw new TypeError(`not an IPv4 address: '${addr}'`);
  return Buffer.from(addr.split('.').map(Number));
}

export function bufferToIpv4(buf: Buffer, at = 0): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

function zeroOf(type: FieldType): number | bigint | string {
  return type === 'u64' ? 0n : type === 'ipv4' ? '0.0.0.0' : 0;
}

function writeField(buf: Buffer, at: number, f: FieldSpec, v: unknown): void {
  const o = at + f.offset;
  switch (f.type) {
    case 'u8': buf.writeUInt8(v as number, o); break;
    case 'u16': buf.writeUInt16LE(v as number, o); break;
    case 'u32': buf.writeUInt32LE(v as number, o); break;
    case 'u64': buf.writeBigUInt64LE(BigInt(v as bigint), o); break;
    case 'be16': buf.writeUInt16BE(v as number, o); break;
    case 'be32': buf.writeUInt32BE(v as number, o); break;
    case 'ipv4': {
      // Hot in full syncs (one per map entry): parsed straight into the buffer.
      const value = parseIPv4(v as string);
      if (value === undefined) throw new TypeError(`not an IPv4 address: '${String(v)}'`);
      buf.writeUInt32BE(value, o);
      break;
    }
  }
}

function readField(buf: Buffer, at: number, f: FieldSpec): number | bigint | string {
  const o = at + f.offset;
  switch (f.type) {
    case 'u8': return buf.readUInt8(o);
    case 'u16': return buf.readUInt16LE(o);
    case 'u32': return buf.readUInt32LE(o);
    case 'u64': return buf.readBigUInt64LE(o);
    case 'be16': return buf.readUInt16BE(o);
    case 'be32': return buf.readUInt32BE(o);
    case 'ipv4': return bufferToIpv4(buf, o);
  }
}

export function defineStruct<const F extends readonly FieldSpec[]>(cName: string, size: number, fields: F): StructCodec<StructValue<F>> {
  for (const f of fields) {
    if (f.offset + fieldSize[f.type] > size) throw new Error(`${cName}.${f.name} lies outside the struct`);
  }
  const codec: StructCodec<StructValue<F>> = {
    cName,
    size,
    fields,
    encodeInto(value, buf, at) {
      const v = value as Record<string, unknown>;
      for (const f of fields) writeField(buf, at, f, v[f.name] ?? zeroOf(f.type));
    },
    encode(value) {
      const buf = Buffer.alloc(size);
      codec.encodeInto(value, buf, 0);
      return buf;
    },
    decode(buf, at = 0) {
      if (buf.length < at + size) throw new RangeError(`${cName}: ${buf.length - at} bytes, want ${size}`);
      const out: Record<string, unknown> = {};
      for (const f of fields) out[f.name] = readField(buf, at, f);
      return out as StructValue<F>;
    },
  };
  return codec;
}

/** Where a field lies in its struct: for code that reads or patches encoded bytes without decoding them. */
export function fieldSpan<T>(codec: StructCodec<T>, name: keyof T & string): { offset: number; size: number } {
  const f = codec.fields.find((x) => x.name === name);
  if (!f) throw new Error(`${codec.cName} has no field ${name}`);
  return { offset: f.offset, size: fieldSize[f.type] };
}

/** A codec for a bare scalar key or value (u32 ids, be32 addresses). */
export interface ScalarCodec<T> {
  readonly size: number;
  encode(value: T): Buffer;
  decode(buf: Buffer, at?: number): T;
}

export const u32: ScalarCodec<number> = {
  size: 4,
  encode: (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; },
  decode: (b, at = 0) => b.readUInt32LE(at),
};

export const u8: ScalarCodec<number> = {
  size: 1,
  encode: (v) => Buffer.from([v]),
  decode: (b, at = 0) => b.readUInt8(at),
};

export const ipv4: ScalarCodec<string> = {
  size: 4,
  encode: ipv4ToBuffer,
  decode: bufferToIpv4,
};
