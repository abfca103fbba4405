import test from 'ava';

import { MaglevError, buildMaglevTable, diffTables, maglevStats, resolveSlots } from '../../ts/maglev/index.js';

test('diffTables: only changed slots, ascending, with their new values', (t) => {
  const delta = diffTables(Uint32Array.of(1, 2, 3, 4), Uint32Array.of(1, 9, 3, 7));
  t.deepEqual([...delta.indices], [1, 3]);
  t.deepEqual([...delta.values], [9, 7]);
});

test('diffTables: identical tables need no writes', (t) => {
  const delta = diffTables(Uint32Array.of(5, 5), Uint32Array.of(5, 5));
  t.is(delta.indices.length, 0);
  t.is(delta.values.length, 0);
});

test('diffTables: without a previous table, or after a resize, every slot is written', (t) => {
  for (const previous of [undefined, Uint32Array.of(1, 2)]) {
    const delta = diffTables(previous, Uint32Array.of(4, 5, 6));
    t.deepEqual([...delta.indices], [0, 1, 2]);
    t.deepEqual([...delta.values], [4, 5, 6]);
  }
});

test('diffTables: removing one of 100 backends rewrites its ~1% share plus a little of a 16381-slot table', (t) => {
  const names = Array.from({ length: 100 }, (_, i) => `10.0.${i}.1:80/TCP`);
  const ids = new Map(names.map((name, i) => [name, 1000 + i]));
  const idOf = (name: string): number => ids.get(name)!;
  const before = resolveSlots(buildMaglevTable(names, 16381), idOf);
  const after = resolveSlots(buildMaglevTable(names.slice(1), 16381), idOf);
  const delta = diffTables(before, after);
  t.true(delta.indices.length > 16381 / 100 - 2);
  // Its own 164 slots plus the few others Maglev reshuffles at M ≈ 160·N (~1–2% of the table).
  t.true(delta.indices.length < 16381 / 100 + 16381 * 0.02, `${delta.indices.length} writes`);
  t.false(delta.values.includes(1000));
  const patched = Uint32Array.from(before);
  delta.indices.forEach((slot, i) => (patched[slot] = delta.values[i]!));
  t.deepEqual(patched, after);
});

test('maglevStats: counts, shares and imbalance', (t) => {
  const stats = maglevStats([0, 1, 1, 0, 1, 2], 3);
  t.deepEqual(stats.counts, [2, 3, 1]);
  t.is(stats.min, 1);
  t.is(stats.max, 3);
  t.is(stats.minShare, 1 / 6);
  t.is(stats.maxShare, 3 / 6);
  t.is(stats.imbalance, (3 - 1) / 2);
});

test('maglevStats: a backend with no slot counts as 0; bad owners are errors', (t) => {
  t.is(maglevStats([0, 0], 2).min, 0);
  t.throws(() => maglevStats([0, 3], 3), { instanceOf: MaglevError });
  t.throws(() => maglevStats([0], 0), { instanceOf: MaglevError });
});
