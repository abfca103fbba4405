/**
 * The only writer of the control-plane maps. It keeps a shadow of what the maps hold (read back
 * from the pins on start, so a restarted agent adopts the live state instead of flushing it),
 * diffs the desired entries against it, and writes only the difference, in an order that never
 * lets a packet see a half-written service:
 *
 *   1. backends, Maglev tables, source ranges, node addresses that are new or changed;
 *   2. service slots (new and changed);
 *   3. service masters — a master only once all its slots are in, so a new count never points at
 *      a missing slot;
 *   4. masters of removed frontends, then slots no master counts any more;
 *   5. what nothing refers to any more: source ranges, Maglev tables, node addresses, backends.
 *
 * A failed write (a full map, say) is reported with its map and errno and leaves that frontend as
 * it was (slots it had just created are removed again); every other frontend is still written.
 *
 * apply() takes the whole desired content (a full sync); applyChanges() only what one partial sync
 * changed (entry-changes.ts), in the same order.
 */
import { BpfError } from '../addon/index.js';
import { u32 } from '../abi/codec.js';
import { SvcScope } from '../abi/constants.js';
import { native, type BpfMapNative } from '../addon/index.js';
import { bumpBackendGeneration } from './backend-generation.js';
import type { Datapath } from './loader.js';
import type { EntryChanges } from './entry-changes.js';
import type { DesiredEntries, Entry, FrontendEntries } from './entries.js';

export interface WriteFailure {
  map: string;
  code: string;
  message: string;
  /** The frontend left as it was, when the failure concerns one. */
  frontend?: string;
}

export interface ApplyResult {
  written: number;
  deleted: number;
  failures: WriteFailure[];
}

const SVC_MASTER_SLOT_OFFSET = 8; // svc4_key.backend_slot
const SVC_SCOPE_OFFSET = 7; // svc4_key.scope

/**
 * The shadow holds keys and values as latin1 strings: one character per byte, the most compact
 * string V8 has (a one-byte string of n characters), half of a hex string and exact both ways.
 */
function bin(b: Buffer): string {
  return b.toString('latin1');
}

function unbin(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

function isMaster(key: string): boolean {
  return key.charCodeAt(SVC_MASTER_SLOT_OFFSET) === 0 && key.charCodeAt(SVC_MASTER_SLOT_OFFSET + 1) === 0 && key.charCodeAt(SVC_SCOPE_OFFSET) === 0;
}

/** The master key of the frontend a slot key belongs to. */
function masterOf(key: string): string {
  return key.slice(0, SVC_SCOPE_OFFSET) + '\0\0\0' + key.slice(SVC_MASTER_SLOT_OFFSET + 2);
}

/** The key of one slot of the frontend whose master key is given. */
function slotKey(masterKey: Buffer, scope: number, slot: number): string {
  const k = Buffer.from(masterKey);
  k[SVC_SCOPE_OFFSET] = scope;
  k.writeUInt16LE(slot, SVC_MASTER_SLOT_OFFSET);
  return bin(k);
}

/** A u32 key (be_v1, little endian) from its latin1 form. */
function u32Of(key: string): number {
  return (key.charCodeAt(0) | (key.charCodeAt(1) << 8) | (key.charCodeAt(2) << 16) | (key.charCodeAt(3) << 24)) >>> 0;
}

/** Snapshot of a map as key → value (latin1). */
function readAll(map: BpfMapNative): Map<string, string> {
  const { keys, values, count } = map.dump();
  const ks = keys.length / Math.max(count, 1);
  const vs = values.length / Math.max(count, 1);
  const out = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    out.set(keys.toString('latin1', i * ks, (i + 1) * ks), values.toString('latin1', i * vs, (i + 1) * vs));
  }
  return out;
}

function failureOf(map: string, e: unknown, frontend?: string): WriteFailure {
  const err = e as Error & { code?: string };
  return { map, code: err instanceof BpfError ? err.code : (err.code ?? 'EUNKNOWN'), message: err.message, ...(frontend ? { frontend } : {}) };
}

export class Reconciler {
  private svc = new Map<string, string>();
  private backends = new Map<string, string>();
  private sourceRanges = new Map<string, string>();
  private nodeAddresses = new Map<string, string>();
  private maglev = new Map<number, Uint32Array>();

  constructor(private readonly dp: Datapath) {}

  /** Reads what the pinned maps hold: the state a previous agent left. */
  adopt(): void {
    this.svc = readAll(this.dp.maps.svc4.raw);
    this.backends = readAll(this.dp.maps.backends.raw);
    this.sourceRanges = readAll(this.dp.maps.srcr4.raw);
    this.nodeAddresses = readAll(this.dp.maps.nodeaddr4.raw);
    this.maglev = new Map();
    for (const [key, id] of readAll(this.dp.maps.maglev.raw)) {
      const inner = native.BpfMap.fromId(unbin(id).readUInt32LE(0));
      try {
        const { values, count } = inner.dump();
        const table = new Uint32Array(count);
        for (let i = 0; i < count; i++) table[i] = values.readUInt32LE(4 * i);
        this.maglev.set(unbin(key).readUInt32LE(0), table);
      } finally {
        inner.close();
      }
    }
  }

  /** Entries the agent believes the svc4 map holds (for metrics and `services`). */
  get serviceEntries(): number {
    return this.svc.size;
  }

  /** Entries the agent believes each map it writes holds, by kernel map name. */
  entryCounts(): Record<string, number> {
    return {
      svc4_v1: this.svc.size,
      be_v1: this.backends.size,
      srcr4_v1: this.sourceRanges.size,
      nodeaddr4_v1: this.nodeAddresses.size,
      maglev_v1: this.maglev.size,
    };
  }

  apply(desired: DesiredEntries): ApplyResult {
    const result: ApplyResult = { written: 0, deleted: 0, failures: [] };
    const maps = this.dp.maps;

    // 1. Things services refer to.
    const backends = [...desired.backends.values()];
    const readdressed = this.readdresses(backends);
    this.upsert(maps.backends.raw, 'be_v1', this.backends, backends, result);
    for (const [svcId, table] of desired.maglev) {
      if (sameTable(this.maglev.get(svcId), table)) continue;
      try {
        this.dp.setMaglevTable(svcId, table);
        this.maglev.set(svcId, table);
        result.written++;
      } catch (e) {
        result.failures.push(failureOf('maglev_v1', e));
      }
    }
    this.upsert(maps.srcr4.raw, 'srcr4_v1', this.sourceRanges, [...desired.sourceRanges.values()], result);
    this.upsert(maps.nodeaddr4.raw, 'nodeaddr4_v1', this.nodeAddresses, [...desired.nodeAddresses.values()], result);

    // 2–3. Slots, then masters whose slots are all in.
    const failedMasters = this.writeFrontends([...desired.frontends.values()], result);
    const svcMap = maps.svc4.raw;

    // 4. Removed masters first, then slots nothing counts any more (but never under a master that
    //    failed to move to its new count, which may still count them). Which svc4 keys are desired
    //    is known from the masters and each one's slot counts (slots are numbered from 1 without
    //    gaps), without a set of every desired key.
    const desiredSlots = new Map<string, { all: number; local: number }>();
    for (const fe of desired.frontends.values()) {
      const master = bin(fe.master.key);
      const counts = desiredSlots.get(master) ?? { all: 0, local: 0 };
      for (const s of fe.slots) {
        const slot = s.key.readUInt16LE(SVC_MASTER_SLOT_OFFSET);
        if (s.key[SVC_SCOPE_OFFSET] === SvcScope.ALL) counts.all = Math.max(counts.all, slot);
        else counts.local = Math.max(counts.local, slot);
      }
      desiredSlots.set(master, counts);
    }
    const staleMasters: string[] = [];
    const staleSlots: string[] = [];
    for (const k of this.svc.keys()) {
      if (isMaster(k)) {
        if (!desiredSlots.has(k)) staleMasters.push(k);
        continue;
      }
      const master = masterOf(k);
      const counts = desiredSlots.get(master);
      const scope = k.charCodeAt(SVC_SCOPE_OFFSET);
      const slot = k.charCodeAt(SVC_MASTER_SLOT_OFFSET) | (k.charCodeAt(SVC_MASTER_SLOT_OFFSET + 1) << 8);
      const wanted = counts !== undefined && slot >= 1 && ((scope === SvcScope.ALL && slot <= counts.all) || (scope === SvcScope.LOCAL && slot <= counts.local));
      if (!wanted && !failedMasters.has(master)) staleSlots.push(k);
    }
    this.remove(svcMap, 'svc4_v1', this.svc, staleMasters, result);
    this.remove(svcMap, 'svc4_v1', this.svc, staleSlots, result);

    // 5. What nothing refers to any more.
    const desiredRanges = new Set([...desired.sourceRanges.values()].map((e) => bin(e.key)));
    this.remove(maps.srcr4.raw, 'srcr4_v1', this.sourceRanges, [...this.sourceRanges.keys()].filter((k) => !desiredRanges.has(k)), result);
    for (const svcId of [...this.maglev.keys()].filter((id) => !desired.maglev.has(id))) {
      try {
        this.dp.deleteMaglevTable(svcId);
        this.maglev.delete(svcId);
        result.deleted++;
      } catch (e) {
        result.failures.push(failureOf('maglev_v1', e));
      }
    }
    const desiredAddrs = new Set([...desired.nodeAddresses.values()].map((e) => bin(e.key)));
    this.remove(maps.nodeaddr4.raw, 'nodeaddr4_v1', this.nodeAddresses, [...this.nodeAddresses.keys()].filter((k) => !desiredAddrs.has(k)), result);
    const desiredBackends = new Set(desired.backends.keys());
    const stillReferenced = new Set<string>();
    for (const v of this.svc.values()) stillReferenced.add(v.slice(0, 4)); // svc4_value.backend_id
    const deletedBefore = result.deleted;
    this.remove(
      maps.backends.raw,
      'be_v1',
      this.backends,
      [...this.backends.keys()].filter((k) => !desiredBackends.has(u32Of(k)) && !stillReferenced.has(k)),
      result,
    );
    if (readdressed || result.deleted > deletedBefore) this.bumpBackendGeneration(result);
    return result;
  }

  /**
   * Writes the frontends of one incremental sync (EntryChanges), in the same order as apply():
   * referenced things first, slots, masters, then what is no longer referenced. Only the changed
   * frontends are looked at; their stale slots are found from the shadow (slots are numbered from
   * 1 without gaps). Backends are only deleted when every frontend write succeeded, since a master
   * left at its old count may still point at them (the retry is a full sync, which cleans up).
   */
  applyChanges(changes: EntryChanges): ApplyResult {
    const result: ApplyResult = { written: 0, deleted: 0, failures: [] };
    const maps = this.dp.maps;
    const present = <T>(m: Map<T, Entry | null>): Entry[] => [...m.values()].filter((e): e is Entry => e !== null);
    const absent = <T>(m: Map<T, Entry | null>): T[] => [...m].filter(([, e]) => e === null).map(([k]) => k);

    // 1. Things services refer to.
    const backends = present(changes.backends);
    const readdressed = this.readdresses(backends);
    this.upsert(maps.backends.raw, 'be_v1', this.backends, backends, result);
    for (const [svcId, table] of changes.maglev) {
      if (table === null || sameTable(this.maglev.get(svcId), table)) continue;
      try {
        this.dp.setMaglevTable(svcId, table);
        this.maglev.set(svcId, table);
        result.written++;
      } catch (e) {
        result.failures.push(failureOf('maglev_v1', e));
      }
    }
    this.upsert(maps.srcr4.raw, 'srcr4_v1', this.sourceRanges, present(changes.sourceRanges), result);
    if (changes.nodeAddresses !== null) this.upsert(maps.nodeaddr4.raw, 'nodeaddr4_v1', this.nodeAddresses, [...changes.nodeAddresses.values()], result);

    // 2–3. Slots, then masters.
    const writes = [...changes.frontends.values()].flatMap((c) => (c.entries === null ? [] : [c.entries]));
    const failedMasters = this.writeFrontends(writes, result);

    // 4. Masters of removed frontends, then slots beyond what each master now counts.
    const svcMap = maps.svc4.raw;
    const staleMasters: string[] = [];
    const staleSlots: string[] = [];
    for (const change of changes.frontends.values()) {
      const master = bin(change.masterKey);
      if (failedMasters.has(master)) continue;
      const counts = { all: 0, local: 0 };
      if (change.entries === null) {
        if (this.svc.has(master)) staleMasters.push(master);
      } else {
        for (const slot of change.entries.slots) {
          if (slot.key[SVC_SCOPE_OFFSET] === SvcScope.ALL) counts.all++;
          else counts.local++;
        }
      }
      for (const [scope, from] of [
        [SvcScope.ALL, counts.all],
        [SvcScope.LOCAL, counts.local],
      ] as const) {
        for (let slot = from + 1; ; slot++) {
          const key = slotKey(change.masterKey, scope, slot);
          if (!this.svc.has(key)) break;
          staleSlots.push(key);
        }
      }
    }
    this.remove(svcMap, 'svc4_v1', this.svc, staleMasters, result);
    this.remove(svcMap, 'svc4_v1', this.svc, staleSlots, result);

    // 5. What nothing refers to any more.
    this.remove(
      maps.srcr4.raw,
      'srcr4_v1',
      this.sourceRanges,
      absent(changes.sourceRanges)
        .map((hex) => bin(Buffer.from(hex, 'hex')))
        .filter((k) => this.sourceRanges.has(k)),
      result,
    );
    for (const [svcId, table] of changes.maglev) {
      if (table !== null || !this.maglev.has(svcId)) continue;
      try {
        this.dp.deleteMaglevTable(svcId);
        this.maglev.delete(svcId);
        result.deleted++;
      } catch (e) {
        result.failures.push(failureOf('maglev_v1', e));
      }
    }
    if (changes.nodeAddresses !== null) {
      const keep = new Set([...changes.nodeAddresses.values()].map((e) => bin(e.key)));
      this.remove(maps.nodeaddr4.raw, 'nodeaddr4_v1', this.nodeAddresses, [...this.nodeAddresses.keys()].filter((k) => !keep.has(k)), result);
    }
    let backendsDeleted = false;
    if (failedMasters.size === 0) {
      const gone = absent(changes.backends)
        .map((id) => bin(u32.encode(id)))
        .filter((k) => this.backends.has(k));
      const deletedBefore = result.deleted;
      this.remove(maps.backends.raw, 'be_v1', this.backends, gone, result);
      backendsDeleted = result.deleted > deletedBefore;
    }
    if (readdressed || backendsDeleted) this.bumpBackendGeneration(result);
    return result;
  }

  /** Whether writing these be_v1 entries gives an existing id another address (an id reused for another endpoint). */
  private readdresses(entries: readonly Entry[]): boolean {
    return entries.some((e) => {
      const held = this.backends.get(bin(e.key));
      return held !== undefined && held.slice(0, 4) !== bin(e.value.subarray(0, 4)); // backend4.addr
    });
  }

  /**
   * After be_v1 deletions or re-addressings, never before: established flows check their backend
   * only when the generation has moved (backend-generation.ts), so until this write they keep
   * using what was deleted; a failure is reported like a failed map write (the sync is retried).
   */
  private bumpBackendGeneration(result: ApplyResult): void {
    try {
      bumpBackendGeneration(this.dp);
    } catch (e) {
      result.failures.push(failureOf('begen_v1', e));
    }
  }

  /**
   * Slots, frontend by frontend so that a failure stays with its frontend, then the masters whose
   * slots are all in. A frontend that needs more new entries than the map has room for is not
   * started at all: writing part of it would only take the room others need (we are the only
   * writer, so the count is exact). Returns the masters that could not be written.
   */
  private writeFrontends(frontends: readonly FrontendEntries[], result: ApplyResult): Set<string> {
    const svcMap = this.dp.maps.svc4.raw;
    const capacity = svcMap.info.maxEntries;
    let reservedMasters = 0;
    const failedMasters = new Set<string>();
    const createdSlots = new Map<string, Buffer[]>();
    for (const fe of frontends) {
      const master = bin(fe.master.key);
      const slotsToWrite: Entry[] = [];
      const newKeys: Buffer[] = [];
      for (const s of fe.slots) {
        const held = this.svc.get(bin(s.key));
        if (held !== undefined && held === bin(s.value)) continue;
        slotsToWrite.push(s);
        if (held === undefined) newKeys.push(s.key);
      }
      const masterIsNew = !this.svc.has(master);
      const need = newKeys.length + (masterIsNew ? 1 : 0);
      const free = capacity - this.svc.size - reservedMasters;
      if (need > free) {
        failedMasters.add(master);
        result.failures.push({
          map: 'svc4_v1',
          code: 'E2BIG',
          message: `svc4_v1 is full: ${fe.frontend} needs ${need} more entries, ${Math.max(free, 0)} of ${capacity} are free (raise mapSizes.services)`,
          frontend: fe.frontend,
        });
        continue;
      }
      const failed = this.writeEntries(svcMap, 'svc4_v1', this.svc, slotsToWrite, result, fe.frontend);
      if (failed) {
        failedMasters.add(master);
        // Slots this attempt created are counted by no master (a master only ever counts slots
        // that exist): take them out again, so that a frontend that cannot be written does not
        // keep the room other frontends need.
        this.rollback(svcMap, newKeys);
      } else {
        createdSlots.set(master, newKeys);
        if (masterIsNew) reservedMasters++;
      }
    }
    const masters = frontends.filter(
      (fe) => !failedMasters.has(bin(fe.master.key)) && this.svc.get(bin(fe.master.key)) !== bin(fe.master.value),
    );
    for (const fe of masters) {
      const master = bin(fe.master.key);
      const wasThere = this.svc.has(master);
      if (this.writeEntries(svcMap, 'svc4_v1', this.svc, [fe.master], result, fe.frontend)) {
        failedMasters.add(master);
        if (!wasThere) this.rollback(svcMap, createdSlots.get(master) ?? []);
      }
    }
    return failedMasters;
  }

  private rollback(map: BpfMapNative, keys: Buffer[]): void {
    for (const k of keys) {
      try {
        map.delete(k);
      } catch {
        // not there (the write never happened): nothing to undo
      }
      this.svc.delete(bin(k));
    }
  }

  private upsert(map: BpfMapNative, name: string, shadow: Map<string, string>, entries: Entry[], result: ApplyResult): void {
    this.writeEntries(map, name, shadow, entries.filter((e) => shadow.get(bin(e.key)) !== bin(e.value)), result);
  }

  /** Writes in one batch, falling back to entry by entry to find what failed. Returns whether any failed. */
  private writeEntries(map: BpfMapNative, name: string, shadow: Map<string, string>, entries: Entry[], result: ApplyResult, frontend?: string): boolean {
    if (entries.length === 0) return false;
    try {
      map.updateBatch(Buffer.concat(entries.map((e) => e.key)), Buffer.concat(entries.map((e) => e.value)), entries.length);
      for (const e of entries) shadow.set(bin(e.key), bin(e.value));
      result.written += entries.length;
      return false;
    } catch {
      let failed = false;
      for (const e of entries) {
        try {
          map.update(e.key, e.value);
          shadow.set(bin(e.key), bin(e.value));
          result.written++;
        } catch (err) {
          failed = true;
          result.failures.push(failureOf(name, err, frontend));
          break; // the rest of this frontend waits for the next sync
        }
      }
      return failed;
    }
  }

  private remove(map: BpfMapNative, name: string, shadow: Map<string, string>, keys: string[], result: ApplyResult): void {
    if (keys.length === 0) return;
    try {
      map.deleteBatch(Buffer.concat(keys.map(unbin)), keys.length);
      for (const k of keys) shadow.delete(k);
      result.deleted += keys.length;
    } catch {
      // Not every map type has batch deletes (nor every kernel): one by one, in the same order.
      for (const k of keys) {
        try {
          map.delete(unbin(k));
          shadow.delete(k);
          result.deleted++;
        } catch (e) {
          result.failures.push(failureOf(name, e));
        }
      }
    }
  }
}

function sameTable(a: Uint32Array | undefined, b: Uint32Array): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
