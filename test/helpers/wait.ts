/**
 * The one way tests wait for something to become true: poll, bounded, then fail naming what was
 * awaited and the last thing seen.
 *
 *   await eventually('synced', () => r.synced);                                  // a condition
 *   await eventually('the pod', async () => (await get()) ? true : 'not yet');   // or a reason why not
 *   const a = await eventually('3 answers', () => ask(), (a) => a.length === 3); // a value, once it is right
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** Give up (throw) after this long; default 30 s. */
  timeoutMs?: number;
  /** Between tries; default 100 ms. */
  intervalMs?: number;
}

/** `check` until it returns true; anything else (false, or a string saying why not) is "not yet". */
export function eventually(what: string, check: () => unknown, opts?: WaitOptions | number): Promise<void>;
/** `get` until `done` holds for what it returns; resolves to that value. */
export function eventually<T>(what: string, get: () => T | Promise<T>, done: (v: T) => boolean, opts?: WaitOptions | number): Promise<T>;
export async function eventually<T>(
  what: string,
  get: () => T | Promise<T>,
  doneOrOpts?: ((v: T) => boolean) | WaitOptions | number,
  maybeOpts?: WaitOptions | number,
): Promise<T | void> {
  const done = typeof doneOrOpts === 'function' ? doneOrOpts : (v: T) => v === true;
  const given = typeof doneOrOpts === 'function' ? maybeOpts : doneOrOpts;
  const opts = typeof given === 'number' ? { timeoutMs: given } : (given ?? {});
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (done(v)) return typeof doneOrOpts === 'function' ? v : undefined;
    if (Date.now() > deadline) {
      const last = typeof v === 'string' ? v : JSON.stringify(v);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last?.slice(0, 2000)}`);
    }
    await sleep(opts.intervalMs ?? 100);
  }
}
