import { createHash } from 'node:crypto';

import test from 'ava';

import { MaglevError, buildMaglevTable, maglevStats, permutationOf, resolveSlots } from '../../ts/maglev/index.js';

const backendNames = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `198.18.${(i >> 8) & 255}.${i & 255}:9376/TCP`);

function sha256(slots: Uint32Array): string {
  return createHash('sha256').update(Buffer.from(slots.buffer, slots.byteOffset, slots.byteLength)).digest('hex');
}

test('golden table: the same input gives the same table on every node, forever', (t) => {
  // If this changes, every node in a rolling upgrade disagrees on backends: treat as a breaking change.
  const table = buildMaglevTable(['198.18.128.11:80/TCP', '198.18.129.11:80/TCP', '198.18.130.11:80/TCP'], 251);
  t.deepEqual([...table.slots.subarray(0, 12)], GOLDEN_FIRST_SLOTS);
  t.is(sha256(table.slots), GOLDEN_SHA256);
});

test('permutation: offset = h1 mod M, skip in 1…M−1', (t) => {
  for (const name of backendNames(50)) {
    const { offset, skip } = permutationOf(name, 251);
    t.true(offset >= 0 && offset < 251);
    t.true(skip >= 1 && skip <= 250);
  }
});

test('input order and duplicates of the sort key do not matter: backends are sorted by name', (t) => {
  const names = backendNames(20);
  const a = buildMaglevTable(names, 1009);
  const b = buildMaglevTable([...names].reverse(), 1009);
  t.deepEqual(a.backends, [...names].sort());
  t.deepEqual(b.backends, a.backends);
  t.deepEqual(b.slots, a.slots);
});

test('every slot is filled with a valid backend index', (t) => {
  for (const n of [1, 2, 7, 100, 300]) {
    const table = buildMaglevTable(backendNames(n), 251);
    t.is(table.slots.length, 251);
    t.true(table.slots.every((owner) => owner < Math.min(n, 251)), `n=${n}`);
  }
});

test('one backend owns the whole table', (t) => {
  const table = buildMaglevTable(['only:1/TCP'], 251);
  t.true(table.slots.every((owner) => owner === 0));
});

test('balance: with equal weights shares differ by at most one slot, so ≤1% when M > 100·N', (t) => {
  for (const [size, n] of [
    [16381, 10],
    [16381, 160],
    [65537, 100],
    [65537, 650],
  ] as const) {
    const stats = maglevStats(buildMaglevTable(backendNames(n), size).slots, n);
    t.true(stats.max - stats.min <= 1, `M=${size} N=${n}: ${stats.min}…${stats.max}`);
    t.true(stats.imbalance < 0.01, `M=${size} N=${n}: imbalance ${stats.imbalance}`);
  }
});

test('removing one of N backends moves its own slots and less than 1% of the others', (t) => {
  const size = 65537;
  for (const n of [10, 100, 1000]) {
    const names = backendNames(n);
    const removed = names[Math.floor(n / 3)]!;
    const before = buildMaglevTable(names, size);
    const after = buildMaglevTable(names.filter((name) => name !== removed), size);
    let own = 0;
    let othersMoved = 0;
    for (let i = 0; i < size; i++) {
      const was = before.backends[before.slots[i]!];
      const now = after.backends[after.slots[i]!];
      if (was === removed) own++;
      else if (was !== now) othersMoved++;
    }
    t.true(Math.abs(own - size / n) <= 1, `N=${n}: removed backend owned ${own} slots`);
    t.true(othersMoved / (size - own) < 0.01, `N=${n}: ${othersMoved} other slots moved`);
  }
});

test('adding a backend takes ~1/(N+1) of the slots and disturbs few others', (t) => {
  const names = backendNames(101);
  // Disruption shrinks as M/N grows; at M = 16381 (≈160·N here) it is ~1.3%, at 65537 well under 1%.
  const before = buildMaglevTable(names.slice(0, 100), 65537);
  const after = buildMaglevTable(names, 65537);
  let taken = 0;
  let othersMoved = 0;
  for (let i = 0; i < 65537; i++) {
    const was = before.backends[before.slots[i]!];
    const now = after.backends[after.slots[i]!];
    if (now === names[100]) taken++;
    else if (was !== now) othersMoved++;
  }
  t.true(Math.abs(taken - 65537 / 101) <= 1);
  t.true(othersMoved / 65537 < 0.01, `${othersMoved} moved`);
});

test('weights: shares are proportional to integer weights', (t) => {
  const table = buildMaglevTable(
    [
      { name: 'a:1/TCP', weight: 1 },
      { name: 'b:1/TCP', weight: 2 },
      { name: 'c:1/TCP', weight: 5 },
    ],
    16381,
  );
  const { counts } = maglevStats(table.slots, 3);
  const unit = 16381 / 8;
  t.deepEqual(table.weights, [1, 2, 5]);
  for (const [i, weight] of [1, 2, 5].entries()) {
    t.true(Math.abs(counts[i]! - weight * unit) <= weight + 1, `backend ${i}: ${counts[i]}`);
  }
});

test('weights: equal weights give exactly the unweighted table; weight 0 leaves a backend out', (t) => {
  const names = backendNames(5);
  const plain = buildMaglevTable(names, 1009);
  t.deepEqual(buildMaglevTable(names.map((name) => ({ name, weight: 3 })), 1009).slots, plain.slots);
  const withDrained = buildMaglevTable([...names.map((name) => ({ name })), { name: 'zz:1/TCP', weight: 0 }], 1009);
  t.deepEqual(withDrained.backends, plain.backends);
  t.deepEqual(withDrained.slots, plain.slots);
});

test('bad backend lists are programming errors and throw', (t) => {
  t.throws(() => buildMaglevTable([], 251), { instanceOf: MaglevError, message: /at least one backend/ });
  t.throws(() => buildMaglevTable([{ name: 'a', weight: 0 }], 251), { instanceOf: MaglevError });
  t.throws(() => buildMaglevTable(['a', 'a'], 251), { instanceOf: MaglevError, message: /twice/ });
  t.throws(() => buildMaglevTable([''], 251), { instanceOf: MaglevError, message: /empty/ });
  t.throws(() => buildMaglevTable([{ name: 'a', weight: 1.5 }], 251), { instanceOf: MaglevError, message: /weight/ });
  t.throws(() => buildMaglevTable([{ name: 'a', weight: -1 }], 251), { instanceOf: MaglevError, message: /weight/ });
});

test('resolveSlots maps indices to stable ids', (t) => {
  const table = buildMaglevTable(['b:1/TCP', 'a:1/TCP'], 251);
  const ids = resolveSlots(table, (name) => (name === 'a:1/TCP' ? 70 : 90));
  for (let i = 0; i < 251; i++) t.is(ids[i], table.slots[i] === 0 ? 70 : 90);
});

test('build for M=65537, N=1000 takes a few milliseconds', (t) => {
  const names = backendNames(1000);
  buildMaglevTable(names, 65537);
  const start = performance.now();
  const runs = 5;
  for (let i = 0; i < runs; i++) buildMaglevTable(names, 65537);
  const perBuild = (performance.now() - start) / runs;
  t.log(`M=65537 N=1000: ${perBuild.toFixed(2)} ms per build`);
  // Generous bound for a loaded CI machine; the point is "milliseconds, not seconds".
  t.true(perBuild < 50, `${perBuild} ms`);
});

const GOLDEN_FIRST_SLOTS = [1, 0, 2, 0, 2, 1, 2, 1, 2, 1, 1, 1];
const GOLDEN_SHA256 = '34c924c4e928d68ce2b3259795db90ce38d993b954099d648cc5e5af3272a566';
