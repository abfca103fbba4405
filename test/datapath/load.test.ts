/** The loader: three objects, one set of pinned maps, state that survives a reload. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { mapSpecs } from '../../ts/abi/index.js';
import { datapathObjects, loadDatapath } from '../../ts/dataplane/loader.js';
import { NET, defaultConfig, rootTest, setup, writeBackend } from './_fixture.js';

rootTest('the datapath objects load and share one set of maps, pinned by name', async (t) => {
  const { dp } = await setup(t);
  for (const spec of Object.values(mapSpecs)) {
    t.true(existsSync(join(dp.pinDir, spec.name)), `${spec.name} pinned`);
    const ids = datapathObjects.map((o) => dp.objects[o].map(spec.name).info.id);
    t.is(new Set(ids).size, 1, `${spec.name}: one map for ${datapathObjects.join(', ')}`);
  }
  t.is(dp.maps.ct4.raw.info.maxEntries, 262144);
});

rootTest('a reload adopts the pinned maps and their contents; sizes come from the loader', async (t) => {
  const env = await setup(t, {}, { ct4: 4096 });
  t.is(env.dp.maps.ct4.raw.info.maxEntries, 4096);
  writeBackend(env.dp, { id: 9, addr: NET.pod2a, port: 8080 });
  const again = await loadDatapath({ pinDir: env.dp.pinDir, config: defaultConfig, mapSizes: { ct4: 4096 } });
  t.teardown(() => again.close());
  t.like(again.maps.backends.get(9), { addr: NET.pod2a, port: 8080 });
  // A different size is a different map: the pin is refused, never silently replaced.
  await t.throwsAsync(loadDatapath({ pinDir: env.dp.pinDir, config: defaultConfig, mapSizes: { ct4: 8192 } }), { message: /incompatible/ });
});
