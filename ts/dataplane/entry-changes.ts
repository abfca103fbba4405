/**
 * Map entries for what one batch of the incremental model changed: the same encoders as
 * computeEntries (entries.ts), applied to the changed frontends, groups and backends only. What
 * crosses items is kept as counts: how many served frontends can pick each backend (a backend none
 * can pick is marked terminating), and how many served NodePort frontends exist (node addresses
 * are only written while one does).
 */
import { maglevTableFor } from '../model/maglev-tables.js';
import type { IncrementalModel, ModelDelta } from '../model/incremental.js';
import type { DesiredBackend, DesiredFrontend, DesiredService, DesiredState } from '../model/types.js';
import {
  backendEntry,
  bin,
  frontendEntries,
  frontendMasterKey,
  nodeAddressEntries,
  selectableIds,
  sourceRangeEntries,
  type BackendIdOf,
  type Entry,
  type FrontendEntries,
} from './entries.js';

/** One frontend to write (entries) or remove (entries null); the master key names it either way. */
export interface FrontendChange {
  readonly masterKey: Buffer;
  readonly entries: FrontendEntries | null;
}

/** Entries to write, and keys to delete (null), for one incremental sync. */
export interface EntryChanges {
  readonly frontends: Map<string, FrontendChange>;
  readonly backends: Map<number, Entry | null>;
  /** srcr4_v1 by bin(key). */
  readonly sourceRanges: Map<string, Entry | null>;
  /** The whole nodeaddr4_v1 content when it changes, else null. */
  readonly nodeAddresses: Map<string, Entry> | null;
  readonly maglev: Map<number, Uint32Array | null>;
}

const served = (f: DesiredFrontend | undefined): f is DesiredFrontend => f !== undefined && f.protocol !== 'SCTP';

function hasTable(s: DesiredService | undefined): s is DesiredService {
  return s !== undefined && s.maglev && s.service.protocol !== 'SCTP' && s.backends.length > 0;
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export class EntryTracker {
  /** Backend id → served frontends that can pick it. */
  private pickable = new Map<number, number>();
  private nodePorts = 0;

  constructor(private readonly maglevTableSize: number) {}

  /** Starts over from a whole state (after a full sync wrote computeEntries of it). */
  reset(state: DesiredState): void {
    const ids = new Map(state.backends.map((b) => [b.key, b.id]));
    const idOf: BackendIdOf = (ep, protocol) => ids.get(`${ep}/${protocol}`)!;
    this.pickable = new Map();
    this.nodePorts = 0;
    for (const f of state.frontends) this.count(f, idOf, +1);
  }

  changes(delta: ModelDelta, model: IncrementalModel): EntryChanges {
    // Ids as they were when a removed frontend was written: its backends may be gone by now.
    const idBefore: BackendIdOf = (ep, protocol) => {
      const key = `${ep}/${protocol}`;
      const id = delta.backends.get(key)?.before?.id ?? model.backendId(key);
      if (id === undefined) throw new RangeError(`frontend named unknown backend ${key}`);
      return id;
    };
    const idAfter: BackendIdOf = (ep, protocol) => {
      const id = model.backendId(`${ep}/${protocol}`);
      if (id === undefined) throw new RangeError(`frontend names unknown backend ${ep}/${protocol}`);
      return id;
    };

    const frontends = new Map<string, FrontendChange>();
    const sourceRanges = new Map<string, Entry | null>();
    const flipped = new Set<number>();
    const nodePortsBefore = this.nodePorts;
    for (const [key, { before, after }] of delta.frontends) {
      if (served(before)) {
        for (const id of this.count(before, idBefore, -1)) flipped.add(id);
        for (const e of sourceRangeEntries(before)) sourceRanges.set(bin(e.key), null);
      }
      if (served(after)) {
        for (const id of this.count(after, idAfter, +1)) flipped.add(id);
        for (const e of sourceRangeEntries(after)) sourceRanges.set(bin(e.key), e);
        frontends.set(key, { masterKey: frontendMasterKey(after), entries: frontendEntries(after, idAfter) });
      } else if (served(before)) {
        frontends.set(key, { masterKey: frontendMasterKey(before), entries: null });
      }
    }

    // The winner of one address:port/protocol can change kind (ClusterIP → ExternalIP): one
    // frontend goes and one comes under the same master key, which is then only rewritten.
    const written = new Set([...frontends.values()].filter((c) => c.entries !== null).map((c) => bin(c.masterKey)));
    for (const [key, change] of frontends) {
      if (change.entries === null && written.has(bin(change.masterKey))) frontends.delete(key);
    }

    const backends = new Map<number, Entry | null>();
    const write = (b: DesiredBackend): void => {
      if (b.protocol !== 'SCTP') backends.set(b.id, backendEntry(b, this.pickable.has(b.id)));
    };
    for (const { before, after } of delta.backends.values()) {
      if (before !== undefined && before.protocol !== 'SCTP' && before.id !== after?.id) backends.set(before.id, null);
      if (after !== undefined) write(after);
    }
    for (const id of flipped) {
      const b = model.backendById(id);
      if (b !== undefined) write(b);
    }

    const maglev = new Map<number, Uint32Array | null>();
    for (const { before, after } of delta.services.values()) {
      const had = hasTable(before);
      const has = hasTable(after);
      if (had && (!has || before.id !== after.id)) maglev.set(before.id, null);
      // A table depends on the backend ids alone (and their keys, fixed per id).
      if (has && (!had || before.id !== after.id || !sameIds(before.backends, after.backends))) {
        maglev.set(after.id, maglevTableFor(after, { get: (id) => model.backendById(id) }, this.maglevTableSize)!);
      }
    }

    const nodeAddresses =
      (nodePortsBefore > 0) !== (this.nodePorts > 0) ? nodeAddressEntries(this.nodePorts > 0 ? model.getNodePortAddresses() : []) : null;
    return { frontends, backends, sourceRanges, nodeAddresses, maglev };
  }

  /** Adds (or takes away) one served frontend; returns the backend ids that became (un)pickable. */
  private count(f: DesiredFrontend, idOf: BackendIdOf, by: 1 | -1): number[] {
    if (!served(f)) return [];
    if (f.kind === 'NodePort') this.nodePorts += by;
    const flipped: number[] = [];
    for (const id of selectableIds(f, idOf)) {
      const n = (this.pickable.get(id) ?? 0) + by;
      if (n === 0) {
        this.pickable.delete(id);
        flipped.push(id);
      } else {
        if (n === 1 && by === 1) flipped.push(id);
        this.pickable.set(id, n);
      }
    }
    return flipped;
  }
}
