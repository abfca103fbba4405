/**
 * kube-proxy's BoundedFrequencyRunner: runs one function (the sync) when asked, but never more
 * often than every `minInterval`, at least every `maxInterval` (the periodic full resync), and
 * again after `retryInterval` when it fails, doubling with each failure in a row up to
 * `retryMaxInterval` (backoff: a sync that keeps failing, say on a full map, does not spin). Requests that arrive while it runs or waits are
 * coalesced into one run. The function never runs concurrently with itself.
 */
export interface RunnerOptions {
  minIntervalMs: number;
  maxIntervalMs: number;
  retryIntervalMs: number;
  /** Cap of the doubling retry delay (default: retryIntervalMs, i.e. no backoff). */
  retryMaxIntervalMs?: number;
}

export type SyncReason = 'requested' | 'periodic' | 'retry';

/** The runner's sense of time: the real one, or a test's fake (kube-proxy's runner tests inject one too). */
export interface RunnerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: RunnerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class BoundedFrequencyRunner {
  private timer: unknown;
  private running = false;
  private stopped = true;
  private lastRun = 0;
  private requested = false;
  private retrying = false;
  private failures = 0;
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly fn: (reason: SyncReason) => Promise<void>,
    private readonly opts: RunnerOptions,
    private readonly clock: RunnerClock = realClock,
  ) {}

  start(): void {
    this.stopped = false;
    this.requested = true;
    this.schedule();
  }

  /** Asks for a run as soon as the minimum interval allows. */
  run(): void {
    if (this.stopped) return;
    this.requested = true;
    this.schedule();
  }

  /** Stops scheduling and waits for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.idle;
  }

  private schedule(): void {
    if (this.stopped || this.running) return;
    const since = this.clock.now() - this.lastRun;
    let delay: number;
    if (this.requested) delay = Math.max(0, this.opts.minIntervalMs - since);
    else if (this.retrying) delay = Math.max(0, Math.min(this.retryDelay(), this.opts.maxIntervalMs) - since);
    else delay = Math.max(0, this.opts.maxIntervalMs - since);
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => void this.tick(), delay);
  }

  private retryDelay(): number {
    const cap = Math.max(this.opts.retryIntervalMs, this.opts.retryMaxIntervalMs ?? this.opts.retryIntervalMs);
    return Math.min(cap, this.opts.retryIntervalMs * 2 ** Math.min(Math.max(this.failures - 1, 0), 30));
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    if (this.stopped || this.running) return;
    const reason: SyncReason = this.requested ? 'requested' : this.retrying ? 'retry' : 'periodic';
    this.requested = false;
    this.running = true;
    this.lastRun = this.clock.now();
    let done!: () => void;
    this.idle = new Promise((r) => (done = r));
    try {
      await this.fn(reason);
      this.retrying = false;
      this.failures = 0;
    } catch {
      // The sync reports its own failure; the runner only makes sure it is tried again.
      this.retrying = true;
      this.failures++;
    } finally {
      this.running = false;
      done();
    }
    this.schedule();
  }
}
