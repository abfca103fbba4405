import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';

import { BoundedFrequencyRunner, type SyncReason } from '../../ts/agent/runner.js';

test('requests that arrive while a run is in progress are coalesced into one more run', async (t) => {
  const reasons: SyncReason[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const runner = new BoundedFrequencyRunner(
    async (reason) => {
      reasons.push(reason);
      if (reasons.length === 1) await gate;
    },
    { minIntervalMs: 10, maxIntervalMs: 60_000, retryIntervalMs: 60_000 },
  );
  t.teardown(() => runner.stop());
  runner.start();
  await sleep(20);
  for (let i = 0; i < 50; i++) runner.run();
  release();
  await sleep(150);
  t.deepEqual(reasons, ['requested', 'requested']);
});

test('runs are never closer than the minimum interval', async (t) => {
  const at: number[] = [];
  const runner = new BoundedFrequencyRunner(async () => void at.push(Date.now()), { minIntervalMs: 80, maxIntervalMs: 60_000, retryIntervalMs: 60_000 });
  t.teardown(() => runner.stop());
  runner.start();
  for (let i = 0; i < 5; i++) {
    await sleep(20);
    runner.run();
  }
  await sleep(250);
  t.true(at.length >= 2);
  for (let i = 1; i < at.length; i++) t.true(at[i]! - at[i - 1]! >= 75, `gap ${at[i]! - at[i - 1]!} ms`);
});

test('a failed run is retried, and the periodic resync runs without requests', async (t) => {
  const reasons: SyncReason[] = [];
  const runner = new BoundedFrequencyRunner(
    async (reason) => {
      reasons.push(reason);
      if (reasons.length === 1) throw new Error('map full');
    },
    { minIntervalMs: 5, maxIntervalMs: 100, retryIntervalMs: 20 },
  );
  t.teardown(() => runner.stop());
  runner.start();
  await sleep(400);
  t.is(reasons[0], 'requested');
  t.is(reasons[1], 'retry');
  t.true(reasons.slice(2).length >= 1 && reasons.slice(2).every((r) => r === 'periodic'), reasons.join(','));
});

test('stop() waits for the run in progress and prevents further runs', async (t) => {
  let runs = 0;
  let finished = false;
  const runner = new BoundedFrequencyRunner(
    async () => {
      runs++;
      await sleep(50);
      finished = true;
    },
    { minIntervalMs: 1, maxIntervalMs: 10, retryIntervalMs: 10 },
  );
  runner.start();
  await sleep(10);
  await runner.stop();
  t.true(finished);
  const after = runs;
  await sleep(60);
  t.is(runs, after);
});

test('failures in a row back off: the retry delay doubles up to its cap, and resets after a success', async (t) => {
  const at: number[] = [];
  let failUntil = 5;
  const runner = new BoundedFrequencyRunner(
    async () => {
      at.push(Date.now());
      if (at.length < failUntil) throw new Error('map full');
    },
    { minIntervalMs: 0, maxIntervalMs: 60_000, retryIntervalMs: 40, retryMaxIntervalMs: 160 },
  );
  t.teardown(() => runner.stop());
  runner.start();
  await sleep(900);
  t.is(at.length, 5, 'four failures, then the success; no run after it without a request');
  const gaps = at.slice(1).map((x, i) => x - at[i]!);
  // 40, 80, 160, 160 (capped), each ± timer slack
  for (const [i, want] of [40, 80, 160, 160].entries()) t.true(gaps[i]! >= want - 5 && gaps[i]! < want + 60, `gap ${i}: ${gaps[i]} ms, want ~${want}`);
  failUntil = 7;
  runner.run();
  await sleep(120);
  t.true(at.length >= 7, 'after a success the first retry waits the base interval again');
  t.true(at[6]! - at[5]! < 100);
});
