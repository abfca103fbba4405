// Pins removed under a running agent (maps, the uplink's links, a pod's link) do not turn the next
// restart into an outage: the agent's watchdog pins them again from its open handles and says so,
// and a restart then adopts the same maps and links — while streams run through a ClusterIP and a
// NodePort of the node and new connections keep being made, none fails.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { privilegedSerial } from '../helpers/env.js';
import { agentLabFor, hostnamesManifest, hostnamesService, liveService } from './_fixture.js';
import { eventually } from '../helpers/wait.js';

import { applyManifests } from '../../ts/lab/file-api/apply.js';
import { tally, type Answer } from '../../ts/lab/net/traffic.js';

privilegedSerial('pins removed under a running agent are pinned again and reported; the restart after loses no connection', async (t) => {
  t.timeout(300_000);
  const { lab, agents } = await agentLabFor(t, { nodes: 2, clients: 1 });
  await applyManifests(lab, [hostnamesManifest(3), hostnamesService({ type: 'NodePort' })]);
  await lab.addPod({ name: 'client', node: 'node-2', ports: [{ port: 8080, protocol: 'TCP' }] });
  const svc = liveService(lab);
  const node2 = lab.node('node-2');
  const paths = [
    { from: 'client', address: svc.spec!.clusterIP!, port: 80 },
    { from: 'client-1', address: node2.address, port: svc.spec!.ports![0]!.nodePort! },
  ];
  for (const p of paths) {
    const ready = await eventually(`${p.from} → ${p.address}:${p.port} answered by all three pods`, () => lab.request(p.from, { ...p, count: 30, timeoutMs: 2000 }), (a) => Object.keys(tally(a).byAnswer).length === 3 && a.every((x) => x.ok));
    t.deepEqual(Object.keys(tally(ready).byAnswer).sort(), ['hostnames-1', 'hostnames-2', 'hostnames-3'], `${p.from} → ${p.address}:${p.port}`);
  }
  const streams = [...paths, ...paths].map((p) => lab.stream(p.from, { ...p, intervalMs: 20 }));
  t.teardown(() => Promise.all(streams.map((s) => s.stop().catch(() => undefined))).then(() => undefined));
  await Promise.all(streams.map((s) => s.connected));
  const answers: Answer[] = [];
  let stop = false;
  const traffic = (async () => {
    for (let round = 0; round < 400 && !stop; round++) {
      for (const p of paths) answers.push(...(await lab.request(p.from, { ...p, count: 10, concurrency: 10, timeoutMs: 3000 })));
    }
  })();
  t.teardown(async () => {
    stop = true;
    await traffic.catch(() => {});
  });

  // What a careless operator or a node cleanup script removes: two maps, the uplink's links, a pod's.
  const pinDir = agents.pinDir('node-2');
  const links = readdirSync(join(pinDir, 'links'));
  const removed = ['svc4_v1', 'be_v1', 'maglev_v1', ...links.filter((l) => l.startsWith('eth0_') || l.startsWith('client_')).map((l) => join('links', l))];
  t.true(removed.length >= 6, removed.join(', '));
  for (const pin of removed) rmSync(join(pinDir, pin));
  const log = agents.agent('node-2').log;
  const reported = await eventually('the watchdog to report the removal', async () => readFileSync(log, 'utf8'), (text) => text.includes('pins were removed under the running agent'), 30_000);
  t.true(reported.includes('pins were removed under the running agent'), 'the watchdog reported the removal');
  for (const pin of removed) t.true(existsSync(join(pinDir, pin)), `${pin} pinned again`);

  const atRestart = answers.length;
  await agents.kill('node-2', 'SIGKILL');
  await agents.restart('node-2');
  const target = answers.length + 60;
  for (const deadline = Date.now() + 60_000; answers.length < target && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
  stop = true;
  await traffic;
  const results = await Promise.all(streams.map((s) => s.stop()));
  for (const [i, r] of results.entries()) {
    t.is(r.error, null, `stream ${i}: ${JSON.stringify(r.error)}`);
    t.true(r.intact, `stream ${i} echoed what it sent`);
  }
  const { byAnswer, byError } = tally(answers);
  t.deepEqual(byError, {}, 'no refused, reset or timed-out connection');
  t.deepEqual(Object.keys(byAnswer).sort(), ['hostnames-1', 'hostnames-2', 'hostnames-3']);
  t.log(`${removed.length} pins removed (${removed.join(', ')}); ${answers.length} connections (${answers.length - atRestart} after the restart), ${results.length} streams: 0 lost`);
});
