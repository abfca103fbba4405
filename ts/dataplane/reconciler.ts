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
 * changed (entry-changes.ts). Each fills a WritePlan, and one run writes either in that order.
 */
import { BpfError, type BpfMapNative } from '../addon/index.js';
import { fieldSpan, u32 } from '../abi/codec.js';
import { SvcScope } from '../abi/constants.js';
import { backend4, svc4Key, svc4Value } from '../abi/layouts.js';
import { mapSpecs } from '../abi/maps.js';
import { bumpBackendGeneration } from './backend-generation.js';
import type { Datapath } from './loader.js';
import type { EntryChanges } from './entry-changes.js';
import { bin, unbin, type DesiredEntries, type Entry, type FrontendEntries } from './entries.js';
import { readMaglevTables } from './readers.js';

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

/**
 * What one sync writes, step by step (the order above). apply() and applyChanges() fill it
 * differently; run() writes it. What goes stale is asked for only when its step comes, so that it
 * sees the writes before it (and the masters that failed).
 */
interface WritePlan {
  /** 1. Entries to make so; unchanged ones are skipped. */
  readonly backends: readonly Entry[];
  readonly maglev: Iterable<readonly [svcId: number, table: Uint32Array]>;
  readonly sourceRanges: readonly Entry[];
  /** nodeaddr4_v1's whole content, or null when this sync leaves it alone. */
  readonly nodeAddresses: readonly Entry[] | null;
  /** 2–3. */
  readonly frontends: readonly FrontendEntries[];
  /** 4. svc4_v1 keys nothing counts any more, masters first (never under a master that failed to move). */
  staleServiceKeys(failedMasters: ReadonlySet<string>): { masters: string[]; slots: string[] };
  /** 5. */
  staleSourceRanges(): string[];
  staleMaglev(): number[];
  staleBackends(failedMasters: ReadonlySet<string>): string[];
}

// Where the shadow's svc4_v1 keys and values keep what the reconciler reads without decoding them.
const SCOPE = fieldSpan(svc4Key, 'scope');
const SLOT = fieldSpan(svc4Key, 'backend_slot');
/** A slot's backend_id, a u32 like be_v1's key: the same bytes name the backend in both maps. */
const BACKEND_ID = fieldSpan(svc4Value, 'backend_id');
const BACKEND_ADDR = fieldSpan(backend4, 'addr');

const scopeOf = (key: string): number => key.charCodeAt(SCOPE.offset);
const slotOf = (key: string): number => key.charCodeAt(SLOT.offset) | (key.charCodeAt(SLOT.offset + 1) << 8); // u16, little endian

/** The svc4_v1 key with another scope and slot. */
function withSlot(key: string, scope: number, slot: number): string {
  const k = key.slice(0, SCOPE.offset) + String.fromCharCode(scope) + key.slice(SCOPE.offset + SCOPE.size);
  return k.slice(0, SLOT.offset) + String.fromCharCode(slot & 0xff, slot >>> 8) + k.slice(SLOT.offset + SLOT.size);
}

const isMaster = (key: string): boolean => slotOf(key) === 0 && scopeOf(key) === SvcScope.ALL;

/** The master key of the frontend a slot key belongs to. */
const masterOf = (key: string): string => withSlot(key, SvcScope.ALL, 0);

/** A be_v1 key (a u32, little endian) from its shadow form. */
function u32Of(key: string): number {
  return (key.charCodeAt(0) | (key.charCodeAt(1) << 8) | (key.charCodeAt(2) << 16) | (key.charCodeAt(3) << 24)) >>> 0;
}

/** Snapshot of a map as key → value, in the shadow's form. */
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
    this.maglev = readMaglevTables(this.dp);
  }

  /** Entries the agent believes the svc4 map holds (for metrics and `services`). */
  get serviceEntries(): number {
    return this.svc.size;
  }

  /** Entries the agent believes each map it writes holds, by kernel map name. */
  entryCounts(): Record<string, number> {
    return {
      [mapSpecs.svc4.name]: this.svc.size,
      [mapSpecs.backends.name]: this.backends.size,
      [mapSpecs.srcr4.name]: this.sourceRanges.size,
      [mapSpecs.nodeaddr4.name]: this.nodeAddresses.size,
      [mapSpecs.maglev.name]: this.maglev.size,
    };
  }

  /** A full sync: the maps end up holding `desired` exactly. */
  apply(desired: DesiredEntries): ApplyResult {
    return this.run({
      backends: [...desired.backends.values()],
      maglev: desired.maglev,
      sourceRanges: [...desired.sourceRanges.values()],
      nodeAddresses: [...desired.nodeAddresses.values()],
      frontends: [...desired.frontends.values()],
      staleServiceKeys: (failedMasters) => this.staleServiceKeys(desired, failedMasters),
      staleSourceRanges: () => [...this.sourceRanges.keys()].filter((k) => !desired.sourceRanges.has(k)),
      staleMaglev: () => [...this.maglev.keys()].filter((id) => !desired.maglev.has(id)),
      staleBackends: () => {
        // Not while a master still names them (one that failed to move to its new slots).
        const stillReferenced = new Set<string>();
        for (const v of this.svc.values()) stillReferenced.add(v.slice(BACKEND_ID.offset, BACKEND_ID.offset + BACKEND_ID.size));
        return [...this.backends.keys()].filter((k) => !desired.backends.has(u32Of(k)) && !stillReferenced.has(k));
      },
    });
  }

  /**
   * Writes the frontends of one incremental sync (EntryChanges), in the same order as apply().
   * Only the changed frontends are looked at; their stale slots are found from the shadow (slots
   * are numbered from 1 without gaps). Backends are only deleted when every frontend write
   * succeeded, since a master left at its old count may still point at them (the retry is a full
   * sync, which cleans up).
   */
  applyChanges(changes: EntryChanges): ApplyResult {
    const present = <T>(m: Map<T, Entry | null>): Entry[] => [...m.values()].filter((e): e is Entry => e !== null);
    const absent = <K, V>(m: Map<K, V | null>): K[] => [...m].filter(([, e]) => e === null).map(([k]) => k);
    return this.run({
      backends: present(changes.backends),
      maglev: [...changes.maglev].filter((e): e is [number, Uint32Array] => e[1] !== null),
      sourceRanges: present(changes.sourceRanges),
      nodeAddresses: changes.nodeAddresses === null ? null : [...changes.nodeAddresses.values()],
      frontends: [...changes.frontends.values()].flatMap((c) => (c.entries === null ? [] : [c.entries])),
      staleServiceKeys: (failedMasters) => this.staleServiceKeysOf(changes, failedMasters),
      staleSourceRanges: () => absent(changes.sourceRanges).filter((k) => this.sourceRanges.has(k)),
      staleMaglev: () => absent(changes.maglev).filter((id) => this.maglev.has(id)),
      staleBackends: (failedMasters) =>
        failedMasters.size > 0
          ? []
          : absent(changes.backends)
              .map((id) => bin(u32.encode(id)))
              .filter((k) => this.backends.has(k)),
    });
  }

  /** Writes a plan in the order of the file comment. */
  private run(plan: WritePlan): ApplyResult {
    const result: ApplyResult = { written: 0, deleted: 0, failures: [] };
    const maps = this.dp.maps;

    // 1. Things services refer to.
    const readdressed = this.readdresses(plan.backends);
    this.upsert(maps.backends.raw, mapSpecs.backends.name, this.backends, plan.backends, result);
    for (const [svcId, table] of plan.maglev) this.setMaglevTable(svcId, table, result);
    this.upsert(maps.srcr4.raw, mapSpecs.srcr4.name, this.sourceRanges, plan.sourceRanges, result);
    if (plan.nodeAddresses !== null) this.upsert(maps.nodeaddr4.raw, mapSpecs.nodeaddr4.name, this.nodeAddresses, plan.nodeAddresses, result);

    // 2–3. Slots, then masters whose slots are all in.
    const failedMasters = this.writeFrontends(plan.frontends, result);

    // 4. Removed masters first, then slots nothing counts any more.
    const stale = plan.staleServiceKeys(failedMasters);
    this.remove(maps.svc4.raw, mapSpecs.svc4.name, this.svc, stale.masters, result);
    this.remove(maps.svc4.raw, mapSpecs.svc4.name, this.svc, stale.slots, result);

    // 5. What nothing refers to any more.
    this.remove(maps.srcr4.raw, mapSpecs.srcr4.name, this.sourceRanges, plan.staleSourceRanges(), result);
    for (const svcId of plan.staleMaglev()) this.deleteMaglevTable(svcId, result);
    if (plan.nodeAddresses !== null) {
      const keep = new Set(plan.nodeAddresses.map((e) => bin(e.key)));
      this.remove(maps.nodeaddr4.raw, mapSpecs.nodeaddr4.name, this.nodeAddresses, [...this.nodeAddresses.keys()].filter((k) => !keep.has(k)), result);
    }
    const deletedBefore = result.deleted;
    this.remove(maps.backends.raw, mapSpecs.backends.name, this.backends, plan.staleBackends(failedMasters), result);
    if (readdressed || result.deleted > deletedBefore) this.bumpBackendGeneration(result);
    return result;
  }

  /**
   * A full sync's stale svc4_v1 keys. Which keys are desired is known from the masters and each
   * one's slot counts (slots are numbered from 1 without gaps), without a set of every desired key.
   */
  private staleServiceKeys(desired: DesiredEntries, failedMasters: ReadonlySet<string>): { masters: string[]; slots: string[] } {
    const desiredSlots = new Map<string, { all: number; local: number }>();
    for (const fe of desired.frontends.values()) {
      const master = bin(fe.master.key);
      const counts = desiredSlots.get(master) ?? { all: 0, local: 0 };
      for (const s of fe.slots) {
        const slot = s.key.readUInt16LE(SLOT.offset);
        if (s.key[SCOPE.offset] === SvcScope.ALL) counts.all = Math.max(counts.all, slot);
        else counts.local = Math.max(counts.local, slot);
      }
      desiredSlots.set(master, counts);
    }
    const masters: string[] = [];
    const slots: string[] = [];
    for (const k of this.svc.keys()) {
      if (isMaster(k)) {
        if (!desiredSlots.has(k)) masters.push(k);
        continue;
      }
      const master = masterOf(k);
      const counts = desiredSlots.get(master);
      const scope = scopeOf(k);
      const slot = slotOf(k);
      const wanted = counts !== undefined && slot >= 1 && ((scope === SvcScope.ALL && slot <= counts.all) || (scope === SvcScope.LOCAL && slot <= counts.local));
      if (!wanted && !failedMasters.has(master)) slots.push(k);
    }
    return { masters, slots };
  }

  /** A partial sync's stale svc4_v1 keys: masters of removed frontends, slots beyond what each master now counts. */
  private staleServiceKeysOf(changes: EntryChanges, failedMasters: ReadonlySet<string>): { masters: string[]; slots: string[] } {
    const masters: string[] = [];
    const slots: string[] = [];
    for (const change of changes.frontends.values()) {
      const master = bin(change.masterKey);
      if (failedMasters.has(master)) continue;
      const counts = { all: 0, local: 0 };
      if (change.entries === null) {
        if (this.svc.has(master)) masters.push(master);
      } else {
        for (const slot of change.entries.slots) {
          if (slot.key[SCOPE.offset] === SvcScope.ALL) counts.all++;
          else counts.local++;
        }
      }
      for (const [scope, from] of [
        [SvcScope.ALL, counts.all],
        [SvcScope.LOCAL, counts.local],
      ] as const) {
        for (let slot = from + 1; ; slot++) {
          const key = withSlot(master, scope, slot);
          if (!this.svc.has(key)) break;
          slots.push(key);
        }
      }
    }
    return { masters, slots };
  }

  private setMaglevTable(svcId: number, table: Uint32Array, result: ApplyResult): void {
    if (sameTable(this.maglev.get(svcId), table)) return;
    try {
      this.dp.setMaglevTable(svcId, table);
      this.maglev.set(svcId, table);
      result.written++;
    } catch (e) {
      result.failures.push(failureOf(mapSpecs.maglev.name, e));
    }
  }

  private deleteMaglevTable(svcId: number, result: ApplyResult): void {
    try {
      this.dp.deleteMaglevTable(svcId);
      this.maglev.delete(svcId);
      result.deleted++;
    } catch (e) {
      result.failures.push(failureOf(mapSpecs.maglev.name, e));
    }
  }

  /** Whether writing these be_v1 entries gives an existing id another address (an id reused for another endpoint). */
  private readdresses(entries: readonly Entry[]): boolean {
    return entries.some((e) => {
      const held = this.backends.get(bin(e.key));
      return held !== undefined && held.slice(BACKEND_ADDR.offset, BACKEND_ADDR.offset + BACKEND_ADDR.size) !== e.value.toString('latin1', BACKEND_ADDR.offset, BACKEND_ADDR.offset + BACKEND_ADDR.size);
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
      result.failures.push(failureOf(mapSpecs.begen.name, e));
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
          map: mapSpecs.svc4.name,
          code: 'E2BIG',
          message: `${mapSpecs.svc4.name} is full: ${fe.frontend} needs ${need} more entries, ${Math.max(free, 0)} of ${capacity} are free (raise mapSizes.services)`,
          frontend: fe.frontend,
        });
        continue;
      }
      const failed = this.writeEntries(svcMap, mapSpecs.svc4.name, this.svc, slotsToWrite, result, fe.frontend);
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
      if (this.writeEntries(svcMap, mapSpecs.svc4.name, this.svc, [fe.master], result, fe.frontend)) {
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

  private upsert(map: BpfMapNative, name: string, shadow: Map<string, string>, entries: readonly Entry[], result: ApplyResult): void {
    this.writeEntries(map, name, shadow, entries.filter((e) => shadow.get(bin(e.key)) !== bin(e.value)), result);
  }

  /** Writes in one batch, falling back to entry by entry to find what failed. Returns whether any failed. */
  private writeEntries(map: BpfMapNative, name: string, shadow: Map<string, string>, entries: readonly Entry[], result: ApplyResult, frontend?: string): boolean {
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
