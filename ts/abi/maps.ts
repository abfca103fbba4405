/**
 * The datapath's maps: kernel name (versioned, at most 15 characters), type and codecs. The
 * loader pins each under the node's bpffs directory by its name.
 */
import { ipv4, u8, u32, type ScalarCodec, type StructCodec } from './codec.js';
import {
  aff4Key, aff4Value, backend4, begenValue, cidr4Key, ct4Key, ct4Value, dropStats, frag4Key, frag4Value, fragStats, nodeaddr4Value, srcr4Key,
  svc4Key, svc4Value, svcStats,
} from './layouts.js';

export interface MapSpec<K, V> {
  readonly name: string;
  readonly type: string;
  readonly key: StructCodec<K> | ScalarCodec<K>;
  readonly value: StructCodec<V> | ScalarCodec<V>;
  readonly perCpu: boolean;
}

function spec<K, V>(name: string, type: string, key: StructCodec<K> | ScalarCodec<K>, value: StructCodec<V> | ScalarCodec<V>): MapSpec<K, V> {
  if (name.length > 15) throw new Error(`map name '${name}' is longer than the kernel's 15 characters`);
  return { name, type, key, value, perCpu: type.startsWith('percpu') || type.startsWith('lru_percpu') };
}

export const mapSpecs = {
  svc4: spec('svc4_v1', 'hash', svc4Key, svc4Value),
  backends: spec('be_v1', 'hash', u32, backend4),
  /**
   * v2: the value gained be_gen; v3: state (the flow's, in both entries); v4: a hash, not an LRU
   * hash (a full table refuses new flows instead of evicting live ones). Pinned ct4_v1 to ct4_v3
   * are migrated by the loader.
   */
  ct4: spec('ct4_v4', 'hash', ct4Key, ct4Value),
  aff4: spec('aff4_v1', 'lru_hash', aff4Key, aff4Value),
  srcr4: spec('srcr4_v1', 'lpm_trie', srcr4Key, u8),
  nodeaddr4: spec('nodeaddr4_v1', 'hash', ipv4, nodeaddr4Value),
  /** The cluster CIDRs (kube-proxy's local-traffic detector): written by the loader from the config. */
  clustercidr4: spec('clustercidr4_v1', 'lpm_trie', cidr4Key, u8),
  /** svc_id -> inner array (written as an fd, read back as a map id). */
  maglev: spec('maglev_v1', 'hash_of_maps', u32, u32),
  drops: spec('drops_v1', 'percpu_array', u32, dropStats),
  svcstat: spec('svcstat_v1', 'percpu_array', u32, svcStats),
  /** (saddr, daddr, IP id, proto) -> the first fragment's ports (bpf/lib/frag.h). */
  frag4: spec('frag4_v1', 'lru_hash', frag4Key, frag4Value),
  /** FragStat -> packets and bytes. */
  fragstat: spec('fragstat_v1', 'percpu_array', u32, fragStats),
  /** Key 0 -> the backend generation, bumped after be_v1 deletions and overwrites (bumpBackendGeneration). */
  begen: spec('begen_v1', 'array', u32, begenValue),
} as const;

/**
 * maglev_v1's inner maps, one per service with a table: arrays of M u32 entries (entry → backend
 * id), created with BPF_F_INNER_MAP and named by prefix + svc_id (cut to the kernel's 15).
 */
export const maglevInner = { namePrefix: 'mgl_', type: 'array', key: u32, value: u32 } as const;

/** A Maglev table as an inner map's batch: keys 0..M-1 and their backend ids. */
export function encodeMaglevTable(table: ArrayLike<number>): { keys: Buffer; values: Buffer } {
  const keys = Buffer.alloc(maglevInner.key.size * table.length);
  const values = Buffer.alloc(maglevInner.value.size * table.length);
  for (let i = 0; i < table.length; i++) {
    keys.writeUInt32LE(i, maglevInner.key.size * i);
    values.writeUInt32LE(table[i] ?? 0, maglevInner.value.size * i);
  }
  return { keys, values };
}

/** An inner map's dump (values in key order) as the table. */
export function decodeMaglevTable(values: Buffer, count: number): Uint32Array {
  const table = new Uint32Array(count);
  for (let i = 0; i < count; i++) table[i] = maglevInner.value.decode(values, maglevInner.value.size * i);
  return table;
}

/** Kernel names of maps an older agent pinned that the loader converts and unpins. */
export const legacyMapNames = { ct4V1: 'ct4_v1', ct4V2: 'ct4_v2', ct4V3: 'ct4_v3' } as const;

export type MapKey = keyof typeof mapSpecs;
