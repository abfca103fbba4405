/**
 * Flow creation is atomic across CPUs: two threads (two CPUs) run the same new-flow SYNs through
 * tc_uplink_ingress, each packet started by both at once, so that both often miss conntrack and
 * create the flow together. Both entries go in with BPF_NOEXIST and the loser adopts the winner's
 * flow: both copies of a packet leave with the same SNAT port, each flow has exactly its two
 * entries, and each flow is counted new once. (With the forward entry written with BPF_ANY, the
 * two copies take two ports, the last write wins, and the other port is held by an orphan.)
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

import { CtDir, DROP_REASON_SLOTS, SvcKind, dropReasonName } from '../../ts/abi/index.js';
import { buildPacket } from '../../ts/packet/index.js';
import { sumPerCpu } from '../../ts/dataplane/typed-map.js';
import { NET, rootTest, setup, writeBackend, writeService, type Env } from './_fixture.js';
import { fromPeer, tcp } from './_packets.js';

const FLOWS = 1500;

/** Runs each CPU's rounds on tc_uplink_ingress, in two threads meeting at every round; the ports out, CPU 0's then CPU 1's. */
async function race(env: Env, perCpu: [Buffer[][], Buffer[][]]): Promise<Int32Array> {
  const barrier = new SharedArrayBuffer(4);
  const out = new SharedArrayBuffer(4 * 2 * perCpu[0].length);
  const progId = env.dp.programs.tcUplinkIngress.info.id;
  await Promise.all([0, 1].map((me) => new Promise<void>((resolve, reject) => {
    const w = new Worker(new URL('./_race-worker.mjs', import.meta.url), { workerData: { addonPath, progId, netns: env.netns, rounds: perCpu[me], barrier, out, me } });
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker ${me} exited with ${code}`))));
  })));
  return new Int32Array(out);
}

function nodePortTo(env: Env) {
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 10, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1] });
}
const addonPath = new URL('../../build/native/Release/bpfproxy.node', import.meta.url).pathname;

rootTest('two CPUs creating the same flows at once: one creates, the other adopts; no port taken twice, no orphan entry', async (t) => {
  t.timeout(120_000);
  if (availableParallelism() < 2) return t.fail('needs two CPUs');
  const env = await setup(t);
  nodePortTo(env);
  const syn = (sport: number) => buildPacket(tcp(NET.client, sport, NET.node1, 30080, ['SYN'], { seq: 1000, eth: fromPeer }));
  const rounds = Array.from({ length: FLOWS }, (_, i) => [syn(20000 + i)]);
  const ports = await race(env, [rounds, rounds]);

  const differ = [];
  for (let i = 0; i < FLOWS; i++) if (ports[i] !== ports[FLOWS + i]) differ.push(i);
  const untranslated = ports.filter((p) => p < 61000).length;
  const drops: Record<string, number> = {};
  for (let r = 0; r < DROP_REASON_SLOTS; r++) {
    const n = Number(sumPerCpu(env.dp.maps.drops.getPerCpu(r))?.packets ?? 0n);
    if (n > 0) drops[dropReasonName(r)] = n;
  }
  if (untranslated) t.log(`untranslated: ${[...ports].map((p, i) => [i, p]).filter(([, p]) => p! < 61000).map(([i, p]) => `${i}:${p}`).join(' ')}; drops ${JSON.stringify(drops)}`);
  t.is(untranslated, 0, `every copy translated (${untranslated} not)`);
  t.is(differ.length, 0, `both copies of a packet leave with the same SNAT port (${differ.length} differ)`);
  const entries = env.dp.maps.ct4.entries();
  const fwd = entries.filter(([k]) => k.dir === CtDir.FWD);
  const reply = entries.filter(([k]) => k.dir === CtDir.REPLY);
  t.is(fwd.length, FLOWS, 'one forward entry per flow');
  t.is(reply.length, FLOWS, 'one reply entry per flow: no orphan holds a port');
  const replyPorts = new Set(reply.map(([k]) => k.dport));
  t.true(fwd.every(([, v]) => replyPorts.has(v.nat_sport)), 'each flow\'s port is its reply entry\'s');
  t.is(sumPerCpu(env.dp.maps.svcstat.getPerCpu(10))!.new_flows, BigInt(FLOWS), 'each flow counted new once');
  t.log(`${FLOWS} flows created by two CPUs at once`);
});

rootTest('two CPUs taking over the one SNAT port of a closed flow at once: one gets it, the other is refused', async (t) => {
  t.timeout(120_000);
  const env = await setup(t, { snatPortMin: 61000, snatPortMax: 61000 });
  nodePortTo(env);
  const ROUNDS = 1000;
  const packet = (sport: number, flags: Parameters<typeof tcp>[4]) => buildPacket(tcp(NET.client, sport, NET.node1, 30080, flags, { seq: 1000, eth: fromPeer }));
  // Each round both CPUs open a flow from their own client port; whoever got the port resets its
  // flow (CLOSE: the port may be taken over), and the next round races for it again.
  const rounds = (me: number) => Array.from({ length: ROUNDS }, (_, i) => [packet(20000 + 2 * i + me, ['SYN']), packet(20000 + 2 * i + me, ['RST'])]);
  const ports = await race(env, [rounds(0), rounds(1)]);
  let both = 0;
  let none = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const got = [ports[i]! >= 61000, ports[ROUNDS + i]! >= 61000];
    if (got[0] && got[1]) both++;
    if (!got[0] && !got[1]) none++;
  }
  t.is(both, 0, `never both CPUs on the one port (${both} rounds)`);
  t.is(none, 0, `always one (${none} rounds without)`);
  t.log(`${ROUNDS} rounds of two CPUs racing for one port`);
});
