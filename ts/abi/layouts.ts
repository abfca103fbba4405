/**
 * The map keys and values of bpf/include/bpfproxy/*.h, field by field. Keep in step with the C
 * headers: test/abi/drift.test.ts compares each codec with the compiled objects' BTF.
 */
import { defineStruct, type StructCodec } from './codec.js';

export const svc4Key = defineStruct('svc4_key', 12, [
  { name: 'addr', offset: 0, type: 'ipv4' },
  { name: 'port', offset: 4, type: 'be16' },
  { name: 'proto', offset: 6, type: 'u8' },
  { name: 'scope', offset: 7, type: 'u8' },
  { name: 'backend_slot', offset: 8, type: 'u16' },
  { name: 'pad', offset: 10, type: 'u16' },
]);

export const svc4Value = defineStruct('svc4_value', 20, [
  { name: 'backend_id', offset: 0, type: 'u32' },
  { name: 'svc_id', offset: 4, type: 'u32' },
  { name: 'affinity_timeout', offset: 8, type: 'u32' },
  { name: 'count', offset: 12, type: 'u16' },
  { name: 'local_count', offset: 14, type: 'u16' },
  { name: 'flags', offset: 16, type: 'u16' },
  { name: 'kind', offset: 18, type: 'u8' },
  { name: 'pad', offset: 19, type: 'u8' },
]);

export const backend4 = defineStruct('backend4', 8, [
  { name: 'addr', offset: 0, type: 'ipv4' },
  { name: 'port', offset: 4, type: 'be16' },
  { name: 'proto', offset: 6, type: 'u8' },
  { name: 'flags', offset: 7, type: 'u8' },
]);

export const ct4Key = defineStruct('ct4_key', 16, [
  { name: 'saddr', offset: 0, type: 'ipv4' },
  { name: 'daddr', offset: 4, type: 'ipv4' },
  { name: 'sport', offset: 8, type: 'be16' },
  { name: 'dport', offset: 10, type: 'be16' },
  { name: 'proto', offset: 12, type: 'u8' },
  { name: 'dir', offset: 13, type: 'u8' },
  { name: 'pad', offset: 14, type: 'u16' },
]);

/**
 * ct4_v3's and ct4_v4's value (v4 changed only the map's type). ct4_v2's was its first 40 bytes
 * (ct4ValueV2Size), ct4_v1's its first 32 (ct4ValueV1Size): the loader's migration copies them and
 * fills in the rest.
 */
export const ct4Value = defineStruct('ct4_value', 48, [
  { name: 'nat_saddr', offset: 0, type: 'ipv4' },
  { name: 'nat_daddr', offset: 4, type: 'ipv4' },
  { name: 'nat_sport', offset: 8, type: 'be16' },
  { name: 'nat_dport', offset: 10, type: 'be16' },
  { name: 'backend_id', offset: 12, type: 'u32' },
  { name: 'svc_id', offset: 16, type: 'u32' },
  { name: 'flags', offset: 20, type: 'u16' },
  { name: 'tcp_seen', offset: 22, type: 'u8' },
  { name: 'pad', offset: 23, type: 'u8' },
  { name: 'expires_ns', offset: 24, type: 'u64' },
  { name: 'be_gen', offset: 32, type: 'u32' },
  { name: 'pad2', offset: 36, type: 'u32' },
  { name: 'state', offset: 40, type: 'u64' },
]);

/** ct4_v1's value (no be_gen) and ct4_v2's (no state): only read, by the loader's migration. Not in BTF any more. */
export const ct4ValueV1Size = 32;
export const ct4ValueV2Size = 40;

/** begen_v1's one value: the backend generation (bpfproxy/service.h). */
export const begenValue = defineStruct('begen_value', 4, [
  { name: 'generation', offset: 0, type: 'u32' },
]);

export const srcr4Key = defineStruct('srcr4_key', 12, [
  { name: 'prefixlen', offset: 0, type: 'u32' },
  { name: 'svc_id', offset: 4, type: 'u32' },
  { name: 'addr', offset: 8, type: 'ipv4' },
]);

/** clustercidr4_v1's key (LPM: prefixlen counts the address bits). */
export const cidr4Key = defineStruct('cidr4_key', 8, [
  { name: 'prefixlen', offset: 0, type: 'u32' },
  { name: 'addr', offset: 4, type: 'ipv4' },
]);

export const nodeaddr4Value = defineStruct('nodeaddr4_value', 4, [
  { name: 'flags', offset: 0, type: 'u32' },
]);

export const aff4Key = defineStruct('aff4_key', 8, [
  { name: 'client', offset: 0, type: 'ipv4' },
  { name: 'svc_id', offset: 4, type: 'u32' },
]);

export const aff4Value = defineStruct('aff4_value', 16, [
  { name: 'backend_id', offset: 0, type: 'u32' },
  { name: 'pad', offset: 4, type: 'u32' },
  { name: 'last_seen_ns', offset: 8, type: 'u64' },
]);

export const svcStats = defineStruct('svc_stats', 24, [
  { name: 'packets', offset: 0, type: 'u64' },
  { name: 'bytes', offset: 8, type: 'u64' },
  { name: 'new_flows', offset: 16, type: 'u64' },
]);

export const dropStats = defineStruct('drop_stats', 16, [
  { name: 'packets', offset: 0, type: 'u64' },
  { name: 'bytes', offset: 8, type: 'u64' },
]);

/** bpfproxy/frag.h: what every fragment of a datagram shares (RFC 791), and its first fragment's ports. */
export const frag4Key = defineStruct('frag4_key', 12, [
  { name: 'saddr', offset: 0, type: 'ipv4' },
  { name: 'daddr', offset: 4, type: 'ipv4' },
  { name: 'id', offset: 8, type: 'be16' },
  { name: 'proto', offset: 10, type: 'u8' },
  { name: 'pad', offset: 11, type: 'u8' },
]);

export const frag4Value = defineStruct('frag4_value', 4, [
  { name: 'sport', offset: 0, type: 'be16' },
  { name: 'dport', offset: 2, type: 'be16' },
]);

export const fragStats = defineStruct('frag_stats', 16, [
  { name: 'packets', offset: 0, type: 'u64' },
  { name: 'bytes', offset: 8, type: 'u64' },
]);

export type Svc4Key = ReturnType<typeof svc4Key.decode>;
export type Svc4Value = ReturnType<typeof svc4Value.decode>;
export type Backend4 = ReturnType<typeof backend4.decode>;
export type Ct4Key = ReturnType<typeof ct4Key.decode>;
export type Ct4Value = ReturnType<typeof ct4Value.decode>;
export type BegenValue = ReturnType<typeof begenValue.decode>;
export type Srcr4Key = ReturnType<typeof srcr4Key.decode>;
export type Cidr4Key = ReturnType<typeof cidr4Key.decode>;
export type Aff4Key = ReturnType<typeof aff4Key.decode>;
export type Aff4Value = ReturnType<typeof aff4Value.decode>;
export type SvcStats = ReturnType<typeof svcStats.decode>;
export type DropStats = ReturnType<typeof dropStats.decode>;
export type Frag4Key = ReturnType<typeof frag4Key.decode>;
export type Frag4Value = ReturnType<typeof frag4Value.decode>;
export type FragStats = ReturnType<typeof fragStats.decode>;

/** Every struct codec, for the drift test. */
/**
 * map_count.bpf.c's context (bpfproxy/map_count.h): each hash map's element count, by the name
 * ts/abi/maps.ts gives the map. s64 in C, never negative: read as u64.
 */
export const mapCounts = defineStruct('map_counts', 56, [
  { name: 'svc4', offset: 0, type: 'u64' },
  { name: 'backends', offset: 8, type: 'u64' },
  { name: 'ct4', offset: 16, type: 'u64' },
  { name: 'aff4', offset: 24, type: 'u64' },
  { name: 'nodeaddr4', offset: 32, type: 'u64' },
  { name: 'maglev', offset: 40, type: 'u64' },
  { name: 'frag4', offset: 48, type: 'u64' },
]);

export const allStructs: readonly StructCodec<unknown>[] = [
  svc4Key, svc4Value, backend4, ct4Key, ct4Value, srcr4Key, cidr4Key, nodeaddr4Value, aff4Key, aff4Value, svcStats, dropStats,
  frag4Key, frag4Value, fragStats, begenValue,
] as unknown as readonly StructCodec<unknown>[];
