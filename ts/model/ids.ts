/**
 * Plain-data form of an allocator, passed from one sync to the next (and rebuildable from the
 * pinned maps on restart: assigned ids are in the maps, `next` is max + 1).
 */
export interface IdAllocatorSnapshot {
  /** [key, id] pairs sorted by key. */
  readonly assigned: readonly (readonly [string, number])[];
  /** Freed ids in the order they were freed: reused oldest first. */
  readonly released: readonly number[];
  /** Next never-used id. */
  readonly next: number;
  /** Inclusive id range; 0 stays free to mean "none" in map values. */
  readonly first: number;
  readonly last: number;
}

export interface IdSyncResult {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Keys that got no id because the range is used up. */
  readonly exhausted: readonly string[];
}

const U32_MAX = 0xffffffff;

/**
 * Stable u32 ids for keys. Live keys keep their id across syncs; new keys take never-used ids
 * first and reuse freed ids (oldest first) only once the range is exhausted, like PIDs. Delaying
 * reuse this way keeps a stale reference (a conntrack entry naming a removed backend or rev-NAT
 * id) from silently landing on a new owner. Given the same history, ids are the same.
 */
export class IdAllocator {
  private readonly byKey: Map<string, number>;
  private released: number[];
  private next: number;
  private readonly first: number;
  private readonly last: number;

  private constructor(snapshot: IdAllocatorSnapshot) {
    this.byKey = new Map(snapshot.assigned.map(([key, id]) => [key, id]));
    this.released = [...snapshot.released];
    this.next = snapshot.next;
    this.first = snapshot.first;
    this.last = snapshot.last;
  }

  static empty(range: { first?: number; last?: number } = {}): IdAllocator {
    const first = range.first ?? 1;
    const last = range.last ?? U32_MAX;
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first < 1 || last > U32_MAX || first > last) {
      throw new RangeError(`invalid id range ${first}…${last}`);
    }
    return new IdAllocator({ assigned: [], released: [], next: first, first, last });
  }

  static from(snapshot: IdAllocatorSnapshot | undefined): IdAllocator {
    return snapshot === undefined ? IdAllocator.empty() : new IdAllocator(snapshot);
  }

  get(key: string): number | undefined {
    return this.byKey.get(key);
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Makes `liveKeys` exactly the assigned keys. */
  sync(liveKeys: Iterable<string>): IdSyncResult {
    const live = new Set(liveKeys);
    const added = [...live].filter((key) => !this.byKey.has(key));
    const removed = [...this.byKey.keys()].filter((key) => !live.has(key));
    return this.update(added, removed);
  }

  /**
   * The same step as sync() when only some keys changed: `added` become assigned, `removed` stop
   * being (keys already in that state are ignored). sync(live) ≡ update(live − assigned,
   * assigned − live), which is what lets the incremental model keep the ids a full computation
   * would give.
   */
  update(addedKeys: Iterable<string>, removedKeys: Iterable<string>): IdSyncResult {
    const added = [...new Set(addedKeys)].filter((key) => !this.byKey.has(key)).sort(compareKeys);
    const removed = [...new Set(removedKeys)].filter((key) => this.byKey.has(key)).sort(compareKeys);
    const exhausted: string[] = [];
    // Allocate before releasing: an id freed in this sync is never handed out in the same sync.
    for (const key of added) {
      const id = this.take();
      if (id === undefined) exhausted.push(key);
      else this.byKey.set(key, id);
    }
    for (const key of removed) {
      this.released.push(this.byKey.get(key)!);
      this.byKey.delete(key);
    }
    return { added: added.filter((key) => this.byKey.has(key)), removed, exhausted };
  }

  snapshot(): IdAllocatorSnapshot {
    return {
      assigned: [...this.byKey].sort(([a], [b]) => compareKeys(a, b)),
      released: [...this.released],
      next: this.next,
      first: this.first,
      last: this.last,
    };
  }

  private take(): number | undefined {
    if (this.next <= this.last) return this.next++;
    return this.released.shift();
  }
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
