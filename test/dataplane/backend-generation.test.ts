// bumpBackendGeneration: the control plane's half of the backend generation (begen_v1).
import test from 'ava';

import { begenValue } from '../../ts/abi/index.js';
import { backendGeneration, bumpBackendGeneration } from '../../ts/dataplane/backend-generation.js';
import type { DatapathMaps } from '../../ts/dataplane/typed-map.js';
import { rootTest, setup } from '../datapath/_fixture.js';

/** A begen map in memory: what TypedMap does with one ARRAY element. */
function fakeDp(start?: number) {
  let stored: Buffer | null = start === undefined ? null : begenValue.encode({ generation: start });
  const writes: number[] = [];
  const begen = {
    get: (k: number) => (k === 0 && stored ? begenValue.decode(stored) : null),
    set: (k: number, v: { generation: number }) => {
      if (k !== 0) throw new RangeError('begen_v1 has one element');
      stored = begenValue.encode(v);
      writes.push(v.generation);
    },
  } as unknown as DatapathMaps['begen'];
  return { dp: { maps: { begen } }, writes };
}

test('a bump increments, writes once and returns the new generation', (t) => {
  const { dp, writes } = fakeDp(7);
  t.is(backendGeneration(dp), 7);
  t.is(bumpBackendGeneration(dp), 8);
  t.is(backendGeneration(dp), 8);
  t.deepEqual(writes, [8]);
});

test('the generation wraps at 2^32 (only a change matters) and an unreadable map counts as 0', (t) => {
  t.is(bumpBackendGeneration(fakeDp(0xffffffff).dp), 0);
  t.is(bumpBackendGeneration(fakeDp().dp), 1);
});

rootTest('on a loaded datapath: begen_v1 starts at 0, bumps are seen by the map', async (t) => {
  const env = await setup(t);
  t.is(env.dp.maps.begen.raw.info.type, 'array');
  t.is(env.dp.maps.begen.raw.info.maxEntries, 1);
  t.is(backendGeneration(env.dp), 0);
  t.is(bumpBackendGeneration(env.dp), 1);
  t.is(bumpBackendGeneration(env.dp), 2);
  t.deepEqual(env.dp.maps.begen.get(0), { generation: 2 });
});
