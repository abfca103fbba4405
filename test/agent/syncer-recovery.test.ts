// A sync that throws after the trackers were drained (a bug in the model, or input no check
// foresaw) must not lose the drained changes: the next sync rebuilds from every object and takes
// the ids back from the maps, and ends with the maps a from-scratch sync writes.
import { privilegedSerial } from '../helpers/env.js';
import { scope } from '../helpers/scope.js';

import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import { Syncer } from '../../ts/agent/syncer.js';
import { canonicalServiceDump, dumpServiceMaps } from '../../ts/dataplane/dump.js';
import { loadDatapath } from '../../ts/dataplane/loader.js';
import { Reconciler } from '../../ts/dataplane/reconciler.js';
import { IncrementalModel, resolveProxyConfig } from '../../ts/model/index.js';
import { GOOD_ENDPOINTS, GOOD_ENDPOINTS_AFTER, GOOD_SERVICE, goodSlice } from '../sources/_bad-input-cases.js';

const M = 251;
const proxy = resolveProxyConfig({ clusterCIDR: '198.18.128.0/17', maglevTableSize: M, minSyncPeriod: 0 });
const NODE = { name: 'node-a', addresses: ['198.18.0.11'] };

privilegedSerial('a sync that throws after draining loses no change: the next one rebuilds and programs it', async (t) => {
  const s = scope(t);
  const bpffs = await s.bpffs();
  const load = async (name: string) => {
    const dp = await loadDatapath({ pinDir: `${bpffs}/${name}`, config: { nodeIp: '198.18.0.11', clusterCidrs: ['198.18.128.0/17'], maglevM: M }, mapSizes: { svc4: 1024, backends: 256, ct4: 256, aff4: 64 } });
    s.cleanup.add(`datapath ${name}`, () => dp.close());
    return dp;
  };
  const dp = await load('node');
  const syncerOf = (d: typeof dp) => {
    const reconciler = new Reconciler(d);
    reconciler.adopt();
    return new Syncer(d, reconciler, { proxy, nodeName: NODE.name, fallbackAddresses: () => NODE.addresses });
  };
  const syncer = syncerOf(dp);
  syncer.services.record(undefined, GOOD_SERVICE as V1Service);
  syncer.endpointSlices.record(undefined, goodSlice(GOOD_ENDPOINTS) as V1EndpointSlice);
  syncer.sync();
  t.true(dumpServiceMaps(dp).some((l) => l.includes('198.18.130.5:8080')));

  // The next batch makes the model throw once.
  const update = IncrementalModel.prototype.update;
  IncrementalModel.prototype.update = function () {
    IncrementalModel.prototype.update = update;
    throw new TypeError('a bug');
  };
  t.teardown(() => (IncrementalModel.prototype.update = update));
  syncer.endpointSlices.record(goodSlice(GOOD_ENDPOINTS) as V1EndpointSlice, goodSlice(GOOD_ENDPOINTS_AFTER) as V1EndpointSlice);
  t.throws(() => syncer.sync(), { message: 'a bug' });

  const outcome = syncer.sync();
  t.true(outcome.full);
  t.true(outcome.recoveredIds, 'ids are taken back from the maps');
  t.true(dumpServiceMaps(dp).some((l) => l.includes('198.18.131.5:8080')), 'the change of the failed sync is programmed');

  // The same maps as a fresh node syncing the final objects.
  const scratch = await load('scratch');
  const fresh = syncerOf(scratch);
  fresh.services.record(undefined, GOOD_SERVICE as V1Service);
  fresh.endpointSlices.record(undefined, goodSlice(GOOD_ENDPOINTS_AFTER) as V1EndpointSlice);
  fresh.sync();
  t.deepEqual(canonicalServiceDump(dp), canonicalServiceDump(scratch));
});
