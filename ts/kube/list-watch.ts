/**
 * A level-triggered cache of one resource for the lab's controllers (kubelet, cloud controller):
 * list, then watch from the list's resourceVersion; any error or 410 Gone → back off and relist.
 * Consumers never look at individual events: they are told "something changed" (coalesced) and
 * reconcile from the whole store, so a missed event or a relist can never leave them wrong.
 *
 * (The agent's own source, ts/sources/kube-source.ts, is the full reflector with previous objects,
 * stall detection and health; the lab's controllers need none of that.)
 */
import { createInterface } from 'node:readline';

import { KubeApiError, type KubeRest } from './rest.js';

export interface KObject {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export interface ListWatchOptions {
  rest: KubeRest;
  /** Collection path, e.g. /api/v1/pods. */
  path: string;
  /** Called (coalesced, asynchronously) after the store changed. */
  onChange: () => void;
  log?: (message: string) => void;
  /** Backoff cap after errors (default 2 s: the lab wants to recover fast). */
  backoffMaxMs?: number;
}

export const keyOf = (o: KObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export class ListWatch<T extends KObject> {
  readonly store = new Map<string, T>();
  private resourceVersion = '';
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  private changeQueued = false;
  private listedOnce = false;
  private listedWaiters: Array<() => void> = [];
  /** The last error, until a list or watch works again. */
  lastError: string | undefined;

  constructor(private readonly opts: ListWatchOptions) {}

  start(): void {
    if (this.loop) throw new Error(`list-watch of ${this.opts.path} already started`);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  get synced(): boolean {
    return this.listedOnce;
  }

  /** Resolves after the first complete list. */
  whenSynced(): Promise<void> {
    if (this.listedOnce) return Promise.resolve();
    return new Promise((resolve) => this.listedWaiters.push(resolve));
  }

  private changed(): void {
    if (this.changeQueued) return;
    this.changeQueued = true;
    setImmediate(() => {
      this.changeQueued = false;
      if (!this.abort.signal.aborted) this.opts.onChange();
    });
  }

  private async run(): Promise<void> {
    let failures = 0;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        if (!this.resourceVersion) await this.list();
        await this.watch();
        failures = 0;
      } catch (e) {
        if (signal.aborted) break;
        const err = e as KubeApiError;
        if (err.status === 410) {
          this.resourceVersion = '';
          continue;
        }
        failures++;
        this.resourceVersion = '';
        if (this.lastError !== err.message) this.opts.log?.(`${this.opts.path}: ${err.message}; retrying`);
        this.lastError = err.message;
        const delay = Math.random() * Math.min(this.opts.backoffMaxMs ?? 2000, 100 * 2 ** Math.min(failures, 10));
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            resolve();
          };
          const timer = setTimeout(done, delay);
          signal.addEventListener('abort', done);
        });
      }
    }
  }

  private async list(): Promise<void> {
    const list = await this.opts.rest.get<{ metadata?: { resourceVersion?: string }; items?: T[] }>(this.opts.path, this.abort.signal);
    const fresh = new Map((list.items ?? []).map((o) => [keyOf(o), o]));
    this.store.clear();
    for (const [k, o] of fresh) this.store.set(k, o);
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    this.lastError = undefined;
    if (!this.listedOnce) {
      this.listedOnce = true;
      for (const w of this.listedWaiters.splice(0)) w();
    }
    this.changed();
  }

  private async watch(): Promise<void> {
    // The server ends the watch after timeoutSeconds; a dead connection is caught by that bound.
    const q = new URLSearchParams({ watch: 'true', resourceVersion: this.resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: String(30 + Math.floor(Math.random() * 15)) });
    const local = new AbortController();
    const onStop = () => local.abort();
    this.abort.signal.addEventListener('abort', onStop);
    const guard = setTimeout(() => local.abort(), 60_000);
    try {
      const res = await this.opts.rest.stream(`${this.opts.path}?${q.toString()}`, local.signal);
      this.lastError = undefined;
      const lines = createInterface({ input: res, crlfDelay: Infinity });
      let streamError: Error | undefined;
      const onError = (e: Error) => {
        streamError = e;
        lines.close();
      };
      res.on('error', onError);
      lines.on('error', onError);
      for await (const line of lines) {
        if (!line.trim()) continue;
        const ev = JSON.parse(line) as { type?: string; object?: T & { code?: number; message?: string } };
        const obj = ev.object ?? ({} as T & { code?: number; message?: string });
        if (ev.type === 'ERROR') throw new KubeApiError(`watch ${this.opts.path}: ${obj.message ?? 'error'}`, obj.code ?? 500);
        if (ev.type === 'ADDED' || ev.type === 'MODIFIED') this.store.set(keyOf(obj), obj);
        else if (ev.type === 'DELETED') this.store.delete(keyOf(obj));
        if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
        if (ev.type !== 'BOOKMARK') this.changed();
      }
      if (streamError && !this.abort.signal.aborted) throw new KubeApiError(`watch ${this.opts.path}: ${streamError.message}`, 0);
    } catch (e) {
      if (this.abort.signal.aborted) return;
      if (local.signal.aborted) return; // our own bound: just watch again
      throw e;
    } finally {
      clearTimeout(guard);
      this.abort.signal.removeEventListener('abort', onStop);
      local.abort();
    }
  }
}
