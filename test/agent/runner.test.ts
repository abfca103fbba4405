/**
 * The bounded-frequency runner on a fake clock (test/helpers/fake-clock.ts), as kube-proxy's
 * runner tests inject one: every time below is exact, in milliseconds since the runner started.
 */
import test from 'ava';

import { BoundedFrequencyRunner, type SyncReason } from '../../ts/agent/runner.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** A runner on a fake clock that records when (relative to its start) and why it ran. */
function recordingRunner(opts: ConstructorParameters<typeof BoundedFrequencyRunner>[1], body: (n: number, clock: FakeClock) => Promise<void> = async () => {}) {
  const clock = new FakeClock();
  const t0 = clock.now();
  const runs: { at: number; reason: SyncReason }[] = [];
  const runner = new BoundedFrequencyRunner(
    async (reason) => {
      runs.push({ at: clock.now() - t0, reason });
      await body(runs.length, clock);
    },
    opts,
    clock,
  );
  return { clock, runner, runs, at: () => runs.map((r) => r.at), reasons: () => runs.map((r) => r.reason) };
}

test('requests that arrive while a run is in progress are coalesced into one more run', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { clock, runner, reasons, at } = recordingRunner({ minIntervalMs: 10, maxIntervalMs: 60_000, retryIntervalMs: 60_000 }, async (n) => {
    if (n === 1) await gate;
  });
  t.teardown(() => runner.stop());
  runner.start();
  await clock.advance(20);
  for (let i = 0; i < 50; i++) runner.run();
  release();
  await clock.advance(1000);
  t.deepEqual(reasons(), ['requested', 'requested']);
  t.deepEqual(at(), [0, 20], 'the second run starts as soon as the first ends: 20 ms is past the minimum interval');
});

test('runs are never closer than the minimum interval', async (t) => {
  const { clock, runner, at } = recordingRunner({ minIntervalMs: 80, maxIntervalMs: 60_000, retryIntervalMs: 60_000 });
  t.teardown(() => runner.stop());
  runner.start();
  for (let i = 0; i < 5; i++) {
    await clock.advance(20);
    runner.run();
  }
  await clock.advance(250);
  // Requests at 20, 40, 60, 80 and 100 ms: the first three wait for 80, the last two for 160.
  t.deepEqual(at(), [0, 80, 160]);
});

test('a failed run is retried, and the periodic resync runs without requests', async (t) => {
  const { clock, runner, reasons, at } = recordingRunner({ minIntervalMs: 5, maxIntervalMs: 100, retryIntervalMs: 20 }, async (n) => {
    if (n === 1) throw new Error('map full');
  });
  t.teardown(() => runner.stop());
  runner.start();
  await clock.advance(400);
  t.deepEqual(reasons(), ['requested', 'retry', 'periodic', 'periodic', 'periodic']);
  t.deepEqual(at(), [0, 20, 120, 220, 320]);
});

test('stop() waits for the run in progress and prevents further runs', async (t) => {
  let finished = false;
  const { clock, runner, runs } = recordingRunner({ minIntervalMs: 1, maxIntervalMs: 10, retryIntervalMs: 10 }, async (_n, c) => {
    await c.sleep(50);
    finished = true;
  });
  runner.start();
  await clock.advance(10);
  let stopped = false;
  const stopping = runner.stop().then(() => (stopped = true));
  await clock.advance(39);
  t.false(stopped, 'stop() is still waiting for the run, 49 ms into its 50');
  await clock.advance(1);
  await stopping;
  t.true(finished);
  await clock.advance(1000);
  t.is(runs.length, 1, 'no run after stop(), although the periodic interval is 10 ms');
});

test('failures in a row back off: the retry delay doubles up to its cap, and resets after a success', async (t) => {
  let failUntil = 5;
  const { clock, runner, at } = recordingRunner({ minIntervalMs: 0, maxIntervalMs: 60_000, retryIntervalMs: 40, retryMaxIntervalMs: 160 }, async (n) => {
    if (n < failUntil) throw new Error('map full');
  });
  t.teardown(() => runner.stop());
  runner.start();
  await clock.advance(900);
  // Gaps of 40, 80, 160 and 160 (capped); the fifth run succeeds and nothing runs after it unasked.
  t.deepEqual(at(), [0, 40, 120, 280, 440]);
  failUntil = 7;
  runner.run();
  await clock.advance(120);
  t.deepEqual(at().slice(5), [900, 940], 'after a success the first retry waits the base interval again');
});
