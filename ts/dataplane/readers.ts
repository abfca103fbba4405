/**
 * Reading the datapath's maps back, one family at a time: what the reconciler's adopt, id
 * recovery, the golden dumps, `bpfproxy services` and `explain` all read. Each family is decoded
 * here once (svc4_v1 into masters and slots, Maglev tables out of their inner arrays, per-CPU
 * counters summed), over a loaded Datapath's maps or a node's pins (pinned-maps.ts) alike.
 */
import { SvcScope } from '../abi/constants.js';
import { DROP_REASONS } from '../abi/drop-reason.js';
import type { Aff4Key, Aff4Value, Backend4, Ct4Key, Ct4Value, Svc4Key, Svc4Value } from '../abi/layouts.js';
import { decodeMaglevTable } from '../abi/maps.js';
import { protocolName } from '../abi/names.js';
import { native } from '../addon/index.js';
import { sumPerCpu, type DatapathMaps } from './typed-map.js';

/** The maps a reader needs, from a Datapath or from PinnedMaps. */
export type MapsWith<K extends keyof DatapathMaps> = { readonly maps: Pick<DatapathMaps, K> };

// --- services (svc4_v1): a master per frontend, and its slots ---------------------------------

/** A master key: slot 0 of scope ALL. Its value holds the frontend's counts, kind and flags. */
export function isMasterKey(k: Svc4Key): boolean {
  return k.scope === SvcScope.ALL && k.backend_slot === 0;
}

/** 'addr:port/PROTO', how frontends are named everywhere (the model's frontend key). */
export function frontendName(k: Pick<Svc4Key, 'addr' | 'port' | 'proto'>): string {
  return `${k.addr}:${k.port}/${protocolName(k.proto)}`;
}

export interface ServiceMaster {
  readonly key: Svc4Key;
  readonly value: Svc4Value;
}

export interface ServiceSlot {
  readonly key: Svc4Key;
  /** svc4_value of a slot: backend_id and svc_id only. */
  readonly value: Svc4Value;
}

/** svc4_v1 split into masters and slots, in the map's order. */
export function readServiceEntries(dp: MapsWith<'svc4'>): { masters: ServiceMaster[]; slots: ServiceSlot[] } {
  const masters: ServiceMaster[] = [];
  const slots: ServiceSlot[] = [];
  for (const [key, value] of dp.maps.svc4.entries()) (isMasterKey(key) ? masters : slots).push({ key, value });
  return { masters, slots };
}

// --- backends (be_v1) ---------------------------------------------------------------------------

/** be_v1 by id. */
export function readBackends(dp: MapsWith<'backends'>): Map<number, Backend4> {
  return new Map(dp.maps.backends.entries());
}

/** 'addr:port/PROTO', the model's backend key. */
export function backendName(b: Backend4): string {
  return `${b.addr}:${b.port}/${protocolName(b.proto)}`;
}

// --- Maglev tables (maglev_v1 → inner arrays) ---------------------------------------------------

/** The inner array maglev_v1 names by map id: entry i → backend id. */
function readInnerTable(innerId: number): Uint32Array {
  const inner = native.BpfMap.fromId(innerId);
  try {
    const { values, count } = inner.dump();
    return decodeMaglevTable(values, count);
  } finally {
    inner.close();
  }
}

/** The service ids that have a Maglev table (without reading the tables). */
export function readMaglevIds(dp: MapsWith<'maglev'>): number[] {
  return dp.maps.maglev.entries().map(([svcId]) => svcId);
}

/** Every Maglev table, by service id. */
export function readMaglevTables(dp: MapsWith<'maglev'>): Map<number, Uint32Array> {
  return new Map(dp.maps.maglev.entries().map(([svcId, innerId]) => [svcId, readInnerTable(innerId)]));
}

/** One service's Maglev table, or null when it has none. */
export function readMaglevTable(dp: MapsWith<'maglev'>, svcId: number): Uint32Array | null {
  const innerId = dp.maps.maglev.get(svcId);
  return innerId === null ? null : readInnerTable(innerId);
}

/** Entries per backend id, in ascending id order. */
export function maglevShares(table: ArrayLike<number>): [backendId: number, entries: number][] {
  const share = new Map<number, number>();
  for (let i = 0; i < table.length; i++) share.set(table[i]!, (share.get(table[i]!) ?? 0) + 1);
  return [...share].sort(([a], [b]) => a - b);
}

// --- source ranges (srcr4_v1), node addresses (nodeaddr4_v1) -----------------------------------

/** loadBalancerSourceRanges as the datapath holds them: svc_id and 'a.b.c.d/len'. */
export function readSourceRanges(dp: MapsWith<'srcr4'>): { svcId: number; cidr: string }[] {
  // The LPM key counts svc_id's 32 bits in its prefix length.
  return dp.maps.srcr4.entries().map(([k]) => ({ svcId: k.svc_id, cidr: `${k.addr}/${k.prefixlen - 32}` }));
}

/** The addresses NodePorts answer on, in the map's order. */
export function readNodeAddresses(dp: MapsWith<'nodeaddr4'>): string[] {
  return dp.maps.nodeaddr4.entries().map(([addr]) => addr);
}

// --- conntrack (ct4), affinity (aff4) -------------------------------------------------------------

export function readConntrack(dp: MapsWith<'ct4'>): [Ct4Key, Ct4Value][] {
  return dp.maps.ct4.entries();
}

export function readAffinity(dp: MapsWith<'aff4'>): [Aff4Key, Aff4Value][] {
  return dp.maps.aff4.entries();
}

// --- counters (svcstat_v1, drops_v1), summed over CPUs -------------------------------------------

export interface ServiceCounters {
  packets: number;
  bytes: number;
  newFlows: number;
}

/** A service group's forward-direction counters (zero when it has none yet). */
export function readServiceCounters(dp: MapsWith<'svcstat'>, svcId: number): ServiceCounters {
  const s = sumPerCpu(dp.maps.svcstat.getPerCpu(svcId));
  return { packets: Number(s?.packets ?? 0n), bytes: Number(s?.bytes ?? 0n), newFlows: Number(s?.new_flows ?? 0n) };
}

/** Packets and bytes dropped or rejected, for every DropReason (zeros included). */
export function readDropCounters(dp: MapsWith<'drops'>, reasons = DROP_REASONS): { reason: string; packets: number; bytes: number }[] {
  return reasons.map((r) => {
    const s = sumPerCpu(dp.maps.drops.getPerCpu(r.value));
    return { reason: r.name, packets: Number(s?.packets ?? 0n), bytes: Number(s?.bytes ?? 0n) };
  });
}
