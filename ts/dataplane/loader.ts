/**
 * Loads the node's datapath: the embedded objects (tc_pod, tc_uplink, xdp_uplink) with the same
 * rodata configuration, every map pinned under one bpffs directory so that the objects share them
 * (the first load creates and pins, the next ones reuse the pins; an incompatible pin fails the
 * load instead of being replaced). Returns typed handles to maps and programs.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

import { embeddedObject, native, type BpfObjectNative, type BpfProgramNative } from '../addon/index.js';
import { BPF_F_INNER_MAP, MAGLEV_M_DEFAULT } from '../abi/constants.js';
import { rodataOf, type DatapathConfig } from '../abi/config.js';
import { encodeMaglevTable, legacyMapNames, maglevInner, mapSpecs, type MapKey } from '../abi/maps.js';
import { fieldSpan, u32 } from '../abi/codec.js';
import { ct4Key, ct4Value, ct4ValueV1Size, ct4ValueV2Size, mapCounts } from '../abi/layouts.js';
import { CtDir, CtFlags, CtState, IPPROTO } from '../abi/constants.js';
import { monotonicNs } from '../abi/clock.js';
import { backendGeneration } from './backend-generation.js';
import { writeClusterCidrs } from './cluster-cidrs.js';
import { TypedMap, type DatapathMaps } from './typed-map.js';

export const datapathObjects = ['tc_pod', 'tc_uplink', 'xdp_uplink'] as const;
export type DatapathObjectName = (typeof datapathObjects)[number];

export const datapathPrograms = {
  tcPodIngress: { object: 'tc_pod', name: 'tc_pod_ingress' },
  tcPodEgress: { object: 'tc_pod', name: 'tc_pod_egress' },
  tcUplinkIngress: { object: 'tc_uplink', name: 'tc_uplink_ingress' },
  tcHostEgress: { object: 'tc_uplink', name: 'tc_host_egress' },
  tcLoEgress: { object: 'tc_uplink', name: 'tc_lo_egress' },
  tcUplinkEgress: { object: 'tc_uplink', name: 'tc_uplink_egress' },
  xdpUplink: { object: 'xdp_uplink', name: 'xdp_uplink' },
} as const;
export type DatapathProgramKey = keyof typeof datapathPrograms;

/** The object whose syscall program counts the hash maps' elements (bpf/map_count.bpf.c). */
const MAP_COUNT_OBJECT = 'map_count';
/** The maps map_count.bpf.c counts: every hash map (bpfproxy/map_count.h). */
export const countedMaps = mapCounts.fields.map((f) => f.name) as readonly MapKey[];

export interface LoadDatapathOptions {
  /** A directory on a bpffs mount; maps are pinned here by name. */
  pinDir: string;
  config: DatapathConfig;
  /** max_entries per map, by map key (svc4, ct4, ...) or kernel name; defaults are the C ones. */
  mapSizes?: Partial<Record<MapKey, number>>;
  /** Told what the load migrated from an older agent's pins (see Datapath.migration). */
  log?: (message: string) => void;
  /**
   * Leave the migration of older pins to the caller (migrateLegacyMaps), to run once the new
   * programs are attached: the old programs stop writing the old maps only then, so flows they
   * create in between are carried over too. The agent does this; by default the load migrates.
   */
  deferMigration?: boolean;
}

/** What a load carried over from maps an older agent pinned (null: nothing to migrate). */
export interface DatapathMigration {
  /** Older conntrack maps (ct4_v3, ct4_v2, ct4_v1) → ct4_v4, newest first. */
  ct4: Ct4Migration[];
}

export interface Ct4Migration {
  /** The old map's kernel name. */
  from: string;
  /** Live entries copied into ct4_v4. */
  copied: number;
  /** Entries left behind because they had expired (GC would delete them). */
  expired: number;
  /** Entries left behind because ct4_v4 holds their key already (an interrupted earlier migration, a newer map). */
  present: number;
  /** Live entries left behind because ct4_v4 had no room for them (a smaller mapSizes.conntrack than the old map's). */
  noRoom: number;
  /** ct4_v1 only: the be_gen its entries got, begen_v1's value at load (0 in a fresh begen_v1: "known good now"). */
  generation?: number;
  /** The old map was left pinned (a copy before the attach; the one after removes it). */
  kept?: true;
}

export interface Datapath {
  readonly pinDir: string;
  readonly config: DatapathConfig;
  readonly maps: DatapathMaps;
  readonly programs: Record<DatapathProgramKey, BpfProgramNative>;
  /** The loaded objects, for BTF introspection (typeLayout, rodataVariables). */
  readonly objects: Record<DatapathObjectName, BpfObjectNative>;
  /** What this load migrated from an older agent's pinned maps, or null. */
  readonly migration: DatapathMigration | null;
  /**
   * Elements in each hash map (countedMaps), exact, as the kernel counts them
   * (bpf_map_sum_elem_count); null when this kernel cannot run the counter (countProblem says why).
   */
  countEntries(): Partial<Record<MapKey, number>> | null;
  /** Why countEntries() is null: the counter's load failed (a kernel without BTF or older than 6.6). */
  readonly countProblem: string | null;
  /** Creates (or replaces) the Maglev table of a service from the backend ids of its M entries. */
  setMaglevTable(svcId: number, table: ArrayLike<number>): void;
  deleteMaglevTable(svcId: number): void;
  /** Releases this process's handles; pinned maps stay (unpin by removing the files). */
  close(): void;
}

export async function loadDatapath(opts: LoadDatapathOptions): Promise<Datapath> {
  const rodata = rodataOf(opts.config);
  const mapOptions: Record<string, { maxEntries?: number; pinPath: string }> = {};
  for (const [key, spec] of Object.entries(mapSpecs) as [MapKey, (typeof mapSpecs)[MapKey]][]) {
    const size = opts.mapSizes?.[key];
    mapOptions[spec.name] = { pinPath: join(opts.pinDir, spec.name), ...(size !== undefined ? { maxEntries: size } : {}) };
  }

  const objects = {} as Record<DatapathObjectName, BpfObjectNative>;
  try {
    for (const name of datapathObjects) {
      const obj = new native.BpfObject(embeddedObject(name), name, { rodata, maps: mapOptions });
      objects[name] = obj;
      await obj.load();
    }
  } catch (e) {
    for (const o of Object.values(objects)) o.close();
    throw e;
  }

  const first = objects[datapathObjects[0]];
  const maps = {} as Record<MapKey, TypedMap<unknown, unknown>>;
  for (const [key, spec] of Object.entries(mapSpecs) as [MapKey, (typeof mapSpecs)[MapKey]][]) {
    maps[key] = new TypedMap(spec as never, first.map(spec.name));
  }
  const programs = {} as Record<DatapathProgramKey, BpfProgramNative>;
  for (const [key, p] of Object.entries(datapathPrograms) as [DatapathProgramKey, (typeof datapathPrograms)[DatapathProgramKey]][]) {
    programs[key] = objects[p.object].program(p.name);
  }

  // The counter is optional: a kernel that cannot load it loses the exact counts, not the datapath.
  let counter: { object: BpfObjectNative; program: BpfProgramNative } | null = null;
  let countProblem: string | null = null;
  {
    const obj = new native.BpfObject(embeddedObject(MAP_COUNT_OBJECT), MAP_COUNT_OBJECT, { maps: mapOptions });
    try {
      await obj.load();
      counter = { object: obj, program: obj.program('map_count') };
    } catch (e) {
      obj.close();
      countProblem = (e as Error).message.split('\n')[0]!;
    }
  }

  let migration: DatapathMigration | null = null;
  try {
    writeClusterCidrs(maps as unknown as DatapathMaps, opts.config.clusterCidrs ?? []);
    if (!opts.deferMigration) migration = migrateLegacyMaps(opts.pinDir, maps as unknown as DatapathMaps);
  } catch (e) {
    for (const m of Object.values(maps)) m.raw.close();
    for (const p of Object.values(programs)) p.close();
    for (const o of Object.values(objects)) o.close();
    counter?.program.close();
    counter?.object.close();
    throw e;
  }
  if (migration) opts.log?.(describeMigration(migration));

  const maglevM = opts.config.maglevM ?? MAGLEV_M_DEFAULT;
  return {
    pinDir: opts.pinDir,
    config: opts.config,
    maps: maps as unknown as DatapathMaps,
    programs,
    objects,
    migration,
    countProblem,
    countEntries() {
      if (!counter) return null;
      const { ctx } = counter.program.runSyscall(Buffer.alloc(mapCounts.size));
      const c = mapCounts.decode(ctx) as Record<string, bigint>;
      return Object.fromEntries(countedMaps.map((k) => [k, Number(c[k])]));
    },
    setMaglevTable(svcId, table) {
      if (table.length !== maglevM) throw new RangeError(`a Maglev table has ${maglevM} entries, got ${table.length}`);
      const inner = native.BpfMap.create({
        type: maglevInner.type,
        name: `${maglevInner.namePrefix}${svcId}`.slice(0, 15),
        keySize: maglevInner.key.size,
        valueSize: maglevInner.value.size,
        maxEntries: maglevM,
        flags: BPF_F_INNER_MAP,
      });
      const { keys, values } = encodeMaglevTable(table);
      try {
        inner.updateBatch(keys, values, maglevM);
        // One update swaps the whole table in: a packet sees the old table or the new one.
        maps.maglev.raw.update(u32.encode(svcId), u32.encode(inner.fd));
      } finally {
        inner.close(); // the outer map holds its own reference
      }
    },
    deleteMaglevTable(svcId) {
      maps.maglev.raw.delete(u32.encode(svcId));
    },
    close() {
      for (const m of Object.values(maps)) m.raw.close();
      for (const p of Object.values(programs)) p.close();
      for (const o of Object.values(objects)) o.close();
      counter?.program.close();
      counter?.object.close();
    },
  };
}

/** Where ct4_value keeps its fields (ct4_v1's and ct4_v2's values are its prefixes). */
const CT4_EXPIRES_OFFSET = fieldSpan(ct4Value, 'expires_ns').offset;
const CT4_BE_GEN_OFFSET = fieldSpan(ct4Value, 'be_gen').offset;
const CT4_FLAGS_OFFSET = fieldSpan(ct4Value, 'flags').offset;
const CT4_TCP_SEEN_OFFSET = fieldSpan(ct4Value, 'tcp_seen').offset;
const CT4_STATE_OFFSET = fieldSpan(ct4Value, 'state').offset;

/** One line on what a migration did, for logs. */
export function describeMigration(m: DatapathMigration): string {
  return m.ct4
    .map((c) =>
      `migrated ${c.from} to ${mapSpecs.ct4.name}: ${c.copied} entries copied${c.generation !== undefined ? ` (be_gen ${c.generation})` : ''}, ` +
      `${c.expired} expired and ${c.present} already present left behind` +
      `${c.noRoom > 0 ? `, ${c.noRoom} live ones for want of room (mapSizes.conntrack)` : ''}${c.kept ? '' : `; ${c.from} unpinned`}`)
    .join('; ');
}

const TCP_FIN = 0x01;
const TCP_RST = 0x04;

/**
 * The ct4_v3 state of a flow an older agent tracked, from what each of its entries saw (tcp_seen
 * is per direction; ct4_v2's CLOSING flag did not say which way). A TCP flow whose reply entry saw
 * a packet is established; older UDP flows are taken as replied (they had the stream lifetime).
 * The deadline is kept: the flow's next packet writes its state's. FIN and RST count only where
 * the older agent took the flow as closing (its CLOSING flag, on either entry): an entry it made
 * from a packet already past a RST has RST in tcp_seen and carried on as established.
 */
function migratedState(proto: number, fwdSeen: number, replySeen: number, closing: boolean): bigint {
  if (proto !== IPPROTO.TCP) return BigInt(CtState.REPLIED);
  let s = 0;
  if (replySeen) s |= CtState.REPLIED;
  if (!closing) return BigInt(s);
  if (fwdSeen & TCP_FIN) s |= CtState.FIN_FWD;
  if (replySeen & TCP_FIN) s |= CtState.FIN_REPLY;
  if ((fwdSeen | replySeen) & TCP_RST) s |= CtState.RST;
  return BigInt(s);
}

/**
 * Conntrack survives an upgrade: a ct4_v3, ct4_v2 or ct4_v1 pinned by an older agent is copied into
 * ct4_v4 and unpinned. ct4_v3 entries are copied as they are (v4 changed only the map's type: a
 * hash, which refuses inserts when full, where v3's LRU hash evicted); ct4_v1 values get be_gen =
 * the current backend generation (0 in a fresh begen_v1: the backend is taken as known good now;
 * the next bump makes every copied flow check it); every
 * value gets its flow's state (from both entries' tcp_seen) and CT_F_REPLY on reply entries.
 * Expired entries are left (GC would delete them), and so are keys ct4_v4 already holds (a
 * migration interrupted after some copies, a flow the new programs made meanwhile, or a newer old
 * map: the newer entry wins). Run before the new programs are attached (the load's default), flows
 * the old programs create until then are not carried over; run after (deferMigration), they are,
 * but packets of established flows that arrive between the attach and the copy find no entry: a
 * TCP segment is dropped as CT_INVALID, or, to a Maglev frontend, re-picked statelessly with a new
 * SNAT port, and the backend resets the connection. The agent therefore copies twice: before the
 * attach with keepSource (every flow the old programs know is there when ours take the hooks), and
 * after (the flows they made meanwhile; then the pin goes).
 */
export function migrateLegacyMaps(pinDir: string, maps: DatapathMaps, opts: { keepSource?: boolean } = {}): DatapathMigration | null {
  const sources = [
    { name: legacyMapNames.ct4V3, valueSize: ct4Value.size },
    { name: legacyMapNames.ct4V2, valueSize: ct4ValueV2Size },
    { name: legacyMapNames.ct4V1, valueSize: ct4ValueV1Size },
  ].filter((src) => existsSync(join(pinDir, src.name)));
  if (sources.length === 0) return null;
  const keySize = ct4Key.size;
  const present = new Set<string>();
  let stored = 0;
  {
    const { keys, count } = maps.ct4.raw.keys();
    for (let i = 0; i < count; i++) present.add(keys.toString('hex', i * keySize, (i + 1) * keySize));
    stored = count;
  }
  const out: Ct4Migration[] = [];
  for (const src of sources) {
    const pin = join(pinDir, src.name);
    const old = native.BpfMap.fromPin(pin);
    try {
      const info = old.info;
      if (info.keySize !== keySize || info.valueSize !== src.valueSize) {
        throw new Error(`${pin}: key/value sizes ${info.keySize}/${info.valueSize}, expected ${src.name}'s ${keySize}/${src.valueSize}; not migrated (remove the pin to drop it)`);
      }
      const generation = src.name === legacyMapNames.ct4V1 ? backendGeneration({ maps }) : undefined;
      const now = monotonicNs(); // the datapath's clock (ct_now)
      const { keys, values, count } = old.dump();
      // Each entry's tcp_seen, by key: a flow's state needs both directions'.
      const seen = new Map<string, number>();
      const closingOf = new Set<string>();
      for (let i = 0; i < count; i++) {
        const hex = keys.toString('hex', i * keySize, (i + 1) * keySize);
        seen.set(hex, values[i * src.valueSize + CT4_TCP_SEEN_OFFSET]!);
        if (values.readUInt16LE(i * src.valueSize + CT4_FLAGS_OFFSET) & CtFlags.CLOSING_V2) closingOf.add(hex);
      }
      const outKeys = Buffer.alloc(count * keySize);
      const outValues = Buffer.alloc(count * ct4Value.size);
      let copied = 0;
      let expired = 0;
      let already = 0;
      for (let i = 0; i < count; i++) {
        const key = keys.subarray(i * keySize, (i + 1) * keySize);
        const v = values.subarray(i * src.valueSize, (i + 1) * src.valueSize);
        if (v.readBigUInt64LE(CT4_EXPIRES_OFFSET) <= now) {
          expired++;
          continue;
        }
        const hex = key.toString('hex');
        if (present.has(hex)) {
          already++;
          continue;
        }
        present.add(hex);
        key.copy(outKeys, copied * keySize);
        const at = copied * ct4Value.size;
        v.copy(outValues, at);
        copied++;
        if (src.valueSize === ct4Value.size) continue; // ct4_v3: the same value
        const k = ct4Key.decode(key);
        const value = ct4Value.decode(Buffer.concat([v, Buffer.alloc(ct4Value.size - src.valueSize)]));
        const otherKey = ct4Key.encode({ saddr: value.nat_daddr, daddr: value.nat_saddr, sport: value.nat_dport, dport: value.nat_sport, proto: k.proto, dir: k.dir ^ 1, pad: 0 });
        const mine = v[CT4_TCP_SEEN_OFFSET]!;
        const theirs = seen.get(otherKey.toString('hex')) ?? 0;
        const reply = k.dir === CtDir.REPLY;
        if (generation !== undefined) outValues.writeUInt32LE(generation, at + CT4_BE_GEN_OFFSET);
        const flags = (value.flags & ~CtFlags.CLOSING_V2) | (reply ? CtFlags.REPLY : 0);
        outValues.writeUInt16LE(flags, at + CT4_FLAGS_OFFSET);
        const closing = (value.flags & CtFlags.CLOSING_V2) !== 0 || closingOf.has(otherKey.toString('hex'));
        outValues.writeBigUInt64LE(migratedState(k.proto, reply ? theirs : mine, reply ? mine : theirs, closing), at + CT4_STATE_OFFSET);
      }
      // ct4_v4 refuses inserts beyond its size (an LRU hash evicted): copy what fits.
      const room = Math.max(0, maps.ct4.raw.info.maxEntries - stored);
      const noRoom = Math.max(0, copied - room);
      copied -= noRoom;
      if (copied > 0) maps.ct4.raw.updateBatch(outKeys.subarray(0, copied * keySize), outValues.subarray(0, copied * ct4Value.size), copied);
      stored += copied;
      if (!opts.keepSource) unlinkSync(pin);
      out.push({ from: src.name, copied, expired, present: already, noRoom, ...(generation !== undefined ? { generation } : {}), ...(opts.keepSource ? { kept: true } : {}) });
    } finally {
      old.close();
    }
  }
  return { ct4: out };
}
