/**
 * kube-proxy's ServiceChangeTracker and EndpointsChangeTracker, reduced to what they are for:
 * informer handlers record, per object, the state before the first unsynced change and the
 * latest state; the sync loop drains that record. Handlers never compute anything, so they stay
 * cheap however fast events arrive, and the sync loop sees one net change per object.
 *
 * A tracker given an admission check (ts/sources/admit.ts) is the source boundary: an object that
 * fails it is recorded as absent (a valid version it replaces is removed, as the model would have
 * dropped it) and as a rejection, until a valid version or its deletion arrives. Nothing
 * downstream ever sees it.
 */
import type { Problem } from '../model/index.js';
import type { Admission } from '../sources/admit.js';

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
  private readonly rejections = new Map<string, Problem>();
  private rejectionsChanged = false;
  private total = 0;

  constructor(
    private readonly keyOf: (o: T) => string,
    private readonly admit?: (o: T) => Admission<T>,
  ) {}

  /** Records one event (an informer's add, update or delete). */
  record(previous: T | undefined, current: T | undefined): void {
    const obj = current ?? previous;
    if (obj === undefined) return;
    const key = this.keyOf(obj);
    let admitted = current;
    if (current !== undefined && this.admit !== undefined) {
      const admission = this.admit(current);
      if (admission.ok) admitted = admission.object;
      else {
        admitted = undefined;
        if (JSON.stringify(this.rejections.get(key)) !== JSON.stringify(admission.problem)) this.rejectionsChanged = true;
        this.rejections.set(key, admission.problem);
      }
    }
    if (admitted !== undefined || current === undefined) {
      if (this.rejections.delete(key)) this.rejectionsChanged = true;
    }
    const change = this.pending.get(key);
    if (change) change.current = admitted;
    else if (admitted !== undefined || this.state.has(key)) this.pending.set(key, { key, previous: this.state.get(key), current: admitted });
    if (admitted === undefined) this.state.delete(key);
    else this.state.set(key, admitted);
    this.total++;
    // A change that ends where it started is no change at all.
    const net = this.pending.get(key);
    if (net !== undefined && net.previous === undefined && net.current === undefined) this.pending.delete(key);
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

  /** Objects set aside by the admission check, by key, with why. */
  rejected(): Problem[] {
    return [...this.rejections.values()];
  }

  /** Whether the rejections changed since the last call (the sync loop reports them then). */
  takeRejectionsChanged(): boolean {
    const changed = this.rejectionsChanged;
    this.rejectionsChanged = false;
    return changed;
  }
}
