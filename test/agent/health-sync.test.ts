// /healthz while syncs cannot write, as kube-proxy's ProxierHealthServer: an update queued and not
// applied within 2 × syncPeriod fails it, and the first sync that applies everything brings it back.
// The fault is real: the backends map is frozen under the running agent (BPF_MAP_FREEZE, bpftool),
// so that every write to it fails with EPERM, as a datapath that cannot take updates would.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { privilegedSerial } from '../helpers/env.js';
import { AgentNode, HEALTHZ_PORT, serviceYaml, sliceYaml } from './_fixture.js';

import { run } from '../../ts/util/exec.js';

const SYNC_PERIOD_MS = 2000;
const web = serviceYaml('web', 'clusterIP: 198.19.0.10\nports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP }]');
const webSlice = (ips: string[]) => sliceYaml('web', { name: 'http', port: 8080 }, ips.map((ip) => ({ ip, node: 'node-2' })));

privilegedSerial('/healthz fails once an update has waited 2 × syncPeriod behind failing writes, and recovers with the first sync that applies', async (t) => {
  const node = await AgentNode.create(t, { config: { syncPeriod: `${SYNC_PERIOD_MS}ms` } });
  node.writeSource('web.yaml', web + webSlice(['198.18.130.5']));
  await node.start();
  t.is((await node.http(HEALTHZ_PORT, '/healthz')).code, 200);

  await run('bpftool', ['map', 'freeze', 'pinned', join(node.bpffsDir, 'be_v1')]);
  const from = node.logs.length;
  const queuedAt = Date.now();
  node.writeSource('web.yaml', web + webSlice(['198.18.130.5', '198.18.130.6']));
  const failure = await node.waitForLog((l) => l.level === 'error' && l.map === 'be_v1', 15_000, from);
  t.is(failure.code, 'EPERM');

  // Still healthy while the update is younger than 2 × syncPeriod, unhealthy after.
  let firstUnhealthy: number | undefined;
  const answers: number[] = [];
  while (Date.now() - queuedAt < 4 * SYNC_PERIOD_MS) {
    const { code } = await node.http(HEALTHZ_PORT, '/healthz');
    answers.push(code);
    if (code === 503 && firstUnhealthy === undefined) firstUnhealthy = Date.now() - queuedAt;
    await sleep(200);
  }
  t.log(`/healthz answers after the failing update (every 200 ms): ${answers.join(' ')}; first 503 after ${firstUnhealthy} ms`);
  t.not(firstUnhealthy, undefined, 'the update never applied fails /healthz');
  t.true(firstUnhealthy! >= 2 * SYNC_PERIOD_MS - 500, `not before 2 × syncPeriod (${firstUnhealthy} ms)`);
  t.is(answers.at(-1), 503, 'and keeps failing while writes fail');
  t.is((await node.http(HEALTHZ_PORT, '/livez')).code, 503, "/livez too, as kube-proxy's");

  // Back to what the map holds: the next sync writes nothing to the frozen map, applies, recovers.
  node.writeSource('web.yaml', web + webSlice(['198.18.130.5']));
  const deadline = Date.now() + 15_000;
  let code = 0;
  while (Date.now() < deadline && (code = (await node.http(HEALTHZ_PORT, '/healthz')).code) !== 200) await sleep(200);
  t.is(code, 200, 'the first sync that applies everything brings /healthz back');
});
