/**
 * kube-proxy's ServiceChangeTracker and EndpointsChangeTracker, reduced to what they are for:
 * informer handlers record, per object, the state before the first unsynced change and the
 * latest state; the sync loop drains that record. Handlers never compute anything, so they stay
 * cheap however fast events arrive, and the sync loop sees one net change per object.
 */
export interface Change<T> {
  key: string;
  /** The object as the last sync saw it (undefined: it did not exist). */
  previous: T | undefined;
  /** The object now (undefined: deleted). */
  current: T | undefined;
}

export class ChangeTracker<T> {
  private readonly state = new Map<string, T>();
  private readonly pending = new Map<string, Change<T>>();
  private total = 0;

  constructor(private readonly keyOf: (o: T) => string) {}

  /** Records one event (an informer's add, update or delete). */
  record(previous: T | undefined, current: T | undefined): void {
    const obj = current ?? previous;
    if (obj === undefined) return;
    const key = this.keyOf(obj);
    const change = this.pending.get(key);
    if (change) change.current = current;
    else this.pending.set(key, { key, previous: this.state.get(key), current });
    if (current === undefined) this.state.delete(key);
    else this.state.set(key, current);
    this.total++;
    // A change that ends where it started is no change at all.
    const net = this.pending.get(key)!;
    if (net.previous === undefined && net.current === undefined) this.pending.delete(key);
  }

  /** Objects changed since the last drain. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Events recorded since start (kube-proxy's *_changes_total). */
  get totalCount(): number {
    return this.total;
  }

  /** Hands the pending changes to the sync loop and forgets them. */
  drain(): Change<T>[] {
    const out = [...this.pending.values()];
    this.pending.clear();
    return out;
  }

  /** Every object as it is now: the input of a full computation of the desired state. */
  current(): T[] {
    return [...this.state.values()];
  }
}
