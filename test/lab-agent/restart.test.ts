// An agent killed with SIGKILL and started again disturbs nothing: long-lived TCP connections keep
// streaming, new connections keep being answered the whole time, and the maps are never flushed —
// the pinned maps and links stay the same objects, never drop to zero entries, and hold the same
// entries afterwards.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { privilegedSerial } from '../helpers/env.js';
import { agentLabFor, hostnamesManifest, hostnamesService, liveService } from './_fixture.js';
import { eventually } from '../helpers/wait.js';

import { native } from '../../ts/addon/index.js';
import { applyManifests } from '../../ts/lab/file-api/apply.js';
import { tally, type Answer } from '../../ts/lab/net/traffic.js';

const WATCHED_MAPS = ['svc4_v1', 'be_v1', 'maglev_v1', 'nodeaddr4_v1'];

/** Every entry of a pinned map, as sorted hex lines: equal dumps mean equal contents. */
function dumpPinned(path: string): string[] {
  const map = native.BpfMap.fromPin(path);
  try {
    const { keys, values, count } = map.dump();
    const k = keys.length / Math.max(count, 1);
    const v = values.length / Math.max(count, 1);
    return Array.from({ length: count }, (_, i) => `${keys.subarray(i * k, (i + 1) * k).toString('hex')}=${values.subarray(i * v, (i + 1) * v).toString('hex')}`).sort();
  } finally {
    map.close();
  }
}

function pinnedIds(dir: string): Record<string, number> {
  const ids: Record<string, number> = {};
  for (const name of WATCHED_MAPS) {
    const m = native.BpfMap.fromPin(join(dir, name));
    ids[name] = m.info.id;
    m.close();
  }
  for (const name of readdirSync(join(dir, 'links'))) {
    const l = native.BpfLink.fromPin(join(dir, 'links', name));
    ids[`links/${name}`] = l.info.id;
    l.close();
  }
  return ids;
}

privilegedSerial('SIGKILL and restart of an agent: no reset, no failed connect, no map flush', async (t) => {
  t.timeout(300_000);
  const { lab, agents } = await agentLabFor(t, { nodes: 2, clients: 1 });
  await applyManifests(lab, [hostnamesManifest(3), hostnamesService({ type: 'NodePort' })]);
  const client = await lab.addPod({ name: 'client', node: 'node-2', ports: [{ port: 8080, protocol: 'TCP' }] });
  const svc = liveService(lab);
  const clusterIP = svc.spec!.clusterIP!;
  const nodePort = svc.spec!.ports![0]!.nodePort!;
  const node2 = lab.node('node-2');
  // Pod → ClusterIP is translated by tc on the client's veth on node-2; client-1 → node-2's NodePort by
  // XDP on node-2's uplink: both on the node whose agent is killed.
  const paths = [
    { from: 'client', address: clusterIP, port: 80 },
    { from: 'client-1', address: node2.address, port: nodePort },
  ];
  for (const p of paths) {
    const ready = await eventually(`${p.from} → ${p.address}:${p.port} answered by all three pods`, () => lab.request(p.from, { ...p, count: 30, timeoutMs: 2000 }), (a) => Object.keys(tally(a).byAnswer).length === 3 && a.every((x) => x.ok));
    t.deepEqual(Object.keys(tally(ready).byAnswer).sort(), ['hostnames-1', 'hostnames-2', 'hostnames-3'], `${p.from} → ${p.address}:${p.port} before`);
  }
  t.true(client.address.startsWith('198.18.130.'));

  const pinDir = agents.pinDir('node-2');
  const idsBefore = pinnedIds(pinDir);
  const dumpsBefore = Object.fromEntries(['svc4_v1', 'be_v1', 'nodeaddr4_v1'].map((m) => [m, dumpPinned(join(pinDir, m))]));
  t.true(dumpsBefore.svc4_v1!.length > 0 && dumpsBefore.be_v1!.length >= 3);

  // Sample the entry counts every few milliseconds for the whole time the agent is down and starting.
  const lowest: Record<string, number> = Object.fromEntries(WATCHED_MAPS.map((m) => [m, Infinity]));
  let samples = 0;
  const maps = WATCHED_MAPS.map((m) => [m, native.BpfMap.fromPin(join(pinDir, m))] as const);
  t.teardown(() => maps.forEach(([, m]) => m.close()));
  const sampler = setInterval(() => {
    samples++;
    for (const [name, m] of maps) lowest[name] = Math.min(lowest[name]!, m.keys().count);
  }, 5);
  t.teardown(() => clearInterval(sampler));

  const streams = [
    ...[1, 2, 3].map(() => lab.stream('client', { address: clusterIP, port: 80, intervalMs: 20 })),
    ...[1, 2].map(() => lab.stream('client-1', { address: node2.address, port: nodePort, intervalMs: 20 })),
  ];
  t.teardown(() => Promise.all(streams.map((s) => s.stop().catch(() => undefined))).then(() => undefined));
  await Promise.all(streams.map((s) => s.connected));

  // New connections, in rounds, until told to stop (bounded: at most 400 rounds).
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
  /** Waits until `n` more connections have completed (bounded: on a loaded machine a round takes a while). */
  const moreConnections = async (n: number) => {
    const target = answers.length + n;
    for (const deadline = Date.now() + 60_000; answers.length < target && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
  };

  await moreConnections(20);
  const killedPid = agents.agent('node-2').pid;
  await agents.kill('node-2', 'SIGKILL');
  t.false(agents.isRunning('node-2'));
  const atKill = answers.length;
  await moreConnections(40);
  const atRestart = answers.length;
  const restarted = await agents.restart('node-2');
  const atReady = answers.length;
  t.true(atRestart - atKill >= 40, `${atRestart - atKill} connections while the agent was down`);
  t.not(restarted.pid, killedPid);
  t.is((await agents.health('node-2')).status, 200);
  await moreConnections(40);
  stop = true;
  await traffic;
  clearInterval(sampler);

  const results = await Promise.all(streams.map((s) => s.stop()));
  for (const [i, r] of results.entries()) {
    t.is(r.error, null, `stream ${i}: ${JSON.stringify(r.error)}`);
    t.true(r.intact, `stream ${i} echoed what it sent`);
    t.is(r.echoedBytes, r.sentBytes, `stream ${i}`);
    t.true(r.sentLines > 50, `stream ${i} sent ${r.sentLines} lines`);
  }
  const { byAnswer, byError } = tally(answers);
  t.deepEqual(byError, {}, 'no refused, reset or timed-out connection');
  t.deepEqual(Object.keys(byAnswer).sort(), ['hostnames-1', 'hostnames-2', 'hostnames-3']);

  t.true(samples > 100, `${samples} samples of the maps`);
  for (const [name, n] of Object.entries(lowest)) t.true(n > 0, `${name} never empty (lowest ${n} entries)`);
  t.deepEqual(pinnedIds(pinDir), idsBefore, 'the same maps and links: adopted, not re-created');
  for (const [name, before] of Object.entries(dumpsBefore)) t.deepEqual(dumpPinned(join(pinDir, name)), before, `${name} holds the same entries`);
  t.log(`${answers.length} connections (${atRestart - atKill} while down, ${atReady - atRestart} while starting), ${results.length} streams, ${samples} map samples; lowest entry counts ${JSON.stringify(lowest)}`);
});
