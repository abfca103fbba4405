// The map pressure warnings (ts/agent/map-pressure.ts): one per crossing of 80 % and one on
// filling, a note when back under 75 % (not at every check while a map hovers at the threshold),
// each naming the map, its count and capacity, what a full map costs and the field to raise.
import test from 'ava';

import { MapPressure, pressureLevel } from '../../ts/agent/map-pressure.js';
import type { MapOccupancy } from '../../ts/dataplane/occupancy.js';

const ct = (entries: number): MapOccupancy => ({ key: 'ct4', map: 'ct4_v4', entries, capacity: 1000 });

test('levels: 80 % is high, full is full, back to ok only under 75 %', (t) => {
  t.is(pressureLevel(ct(799)), 'ok');
  t.is(pressureLevel(ct(800)), 'high');
  t.is(pressureLevel(ct(1000)), 'full');
  t.is(pressureLevel(ct(760), 'high'), 'high', 'between 75 and 80 % a high map stays high');
  t.is(pressureLevel(ct(749), 'high'), 'ok');
});

test('a warning per crossing, not per check; a note when back under', (t) => {
  const p = new MapPressure();
  const seen = (entries: number) => p.update([ct(entries)]).map((c) => `${c.previous}→${c.level}: ${c.message}`);
  t.deepEqual(seen(100), []);
  t.deepEqual(seen(850), ['ok→high: map ct4_v4 is 85 % full (850/1000 entries); when full, new flows are dropped (drop reason CT_FULL); established flows are kept; raise mapSizes.conntrack']);
  t.deepEqual(seen(900), [], 'still high: no second warning');
  t.deepEqual(seen(790), [], 'hovering under 80 %: no note yet');
  t.deepEqual(seen(1000), ['high→full: map ct4_v4 is full (1000/1000 entries): new flows are dropped (drop reason CT_FULL); established flows are kept; raise mapSizes.conntrack']);
  t.deepEqual(seen(1000), []);
  t.deepEqual(seen(950), [], 'full → high is no news');
  t.is(seen(1000).length, 1, 'full again: a new crossing, a new warning');
  t.deepEqual(seen(10), ['full→ok: map ct4_v4 is back under 80 % (10/1000 entries)']);
  t.is(seen(850).length, 1, 'and the next crossing warns again');
});

test('maps without a size field say so; maps only the agent writes name what fails', (t) => {
  const [c] = new MapPressure().update([{ key: 'nodeaddr4', map: 'nodeaddr4_v1', entries: 64, capacity: 64 }]);
  t.is(c!.message, 'map nodeaddr4_v1 is full (64/64 entries): the agent\'s writes fail (bpfproxy_map_write_errors_total): Services are not programmed; its size is fixed');
  const [s] = new MapPressure().update([{ key: 'svc4', map: 'svc4_v1', entries: 900, capacity: 1000 }]);
  t.regex(s!.message, /raise mapSizes\.services$/);
});
