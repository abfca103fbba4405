/**
 * The stand-in agent of scenario 6 (run as its own process by scenarios/memory.ts): holds a
 * cluster of N Services × k endpoints as the agent would (the objects, the model's state, the
 * reconciler's shadow of the maps) after one full sync into real maps pinned under PIN_DIR.
 * Prints one JSON line when synced, then waits until its standard input closes.
 *
 *   node --import tsx ts/bench/memory-child.ts SERVICES ENDPOINTS PIN_DIR
 */
import { generateScale } from '../baselines/index.js';
import { computeEntries } from '../dataplane/entries.js';
import { loadDatapath } from '../dataplane/loader.js';
import { Reconciler } from '../dataplane/reconciler.js';
import { computeDesiredState, splitClusterCIDR } from '../model/index.js';
import { mapSizesFor } from './bpfproxy.js';

const [services, endpoints, pinDir] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]!];
const input = generateScale(services, endpoints);
const start = performance.now();
const state = computeDesiredState(input);
const entries = computeEntries(state, input.config.maglevTableSize);
const dp = await loadDatapath({
  pinDir,
  mapSizes: mapSizesFor(entries),
  config: { nodeIp: input.node.addresses[0]!, clusterCidrs: splitClusterCIDR(input.config.clusterCIDR), hairpinIp: '198.18.129.1', maglevM: input.config.maglevTableSize },
});
const reconciler = new Reconciler(dp);
const result = reconciler.apply(entries);
const syncMs = performance.now() - start;
// What a running agent keeps: the objects (its informers' caches), the last state (ids, for the
// next sync) and the reconciler's shadow. The entries are a per-sync temporary.
const kept = { input, ids: state.ids, reconciler };
process.stdout.write(JSON.stringify({ ready: true, syncMs, written: result.written, failures: result.failures.length, services: kept.input.services.length }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => {
  dp.close();
  process.exit(0);
});
