/**
 * A fake clock for code that takes one (ts/agent/runner.ts's RunnerClock): time moves only when a
 * test says so, and timers fire in order of their due time, each run's promises settling before the
 * next, so a test states exact times instead of sleeping on real timers and allowing slack.
 */
import type { RunnerClock } from '../../ts/agent/runner.js';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Lets every pending promise callback and I/O callback run (setImmediate follows the microtasks). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

export class FakeClock implements RunnerClock {
  private time: number;
  private seq = 0;
  private timers: Timer[] = [];

  /** Starts far from 0, as Date.now() does, so that "long since the last run" holds at first. */
  constructor(start = 1_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer: Timer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t !== handle);
  }

  /** A promise that resolves when the clock has been advanced by `ms`. */
  sleep(ms: number): Promise<void> {
    return new Promise((r) => void this.setTimeout(r, ms));
  }

  /** Moves time forward by `ms`, firing what falls due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await settle();
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = Math.max(this.time, due.at);
      due.fn();
    }
    this.time = end;
    await settle();
  }
}
