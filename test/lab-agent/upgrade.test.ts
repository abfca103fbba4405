// Upgrade and downgrade under traffic, as a DaemonSet rollout does them: node-2 runs the previous
// release (hack/previous-release.txt, built from this repository), which is replaced by this
// checkout's agent (TERM, then the new one on the same pins), then back, then forward again, then
// restarted — while long-lived TCP streams run through a ClusterIP and a NodePort and new
// connections keep being made. The conntrack layouts differ (the previous release's ct4_v2, our
// ct4_v4): flows move forward by the migration (copied before and after our programs take the
// hooks) and back by the stopping agent's downgrade snapshot, which a successor of this release
// drops (ts/dataplane/release-handover.ts). Nothing may be lost at any switch.
import { readFileSync } from 'node:fs';

import { privilegedSerial } from '../helpers/env.js';
import { agentLabFor, hostnamesManifest, hostnamesService, liveService } from './_fixture.js';
import { eventually } from '../helpers/wait.js';
import { previousRelease } from './_previous-release.js';

import type { AgentRelease } from '../../ts/lab/agents.js';
import { applyManifests } from '../../ts/lab/file-api/apply.js';
import { tally, type Answer } from '../../ts/lab/net/traffic.js';

privilegedSerial('the previous release → this one → the previous → this one → restarted, under streams and new connections: nothing lost', async (t) => {
  t.timeout(900_000);
  const previous = await previousRelease();
  const { lab, agents } = await agentLabFor(t, { nodes: 2, clients: 1 }, { release: previous });
  await applyManifests(lab, [hostnamesManifest(3), hostnamesService({ type: 'NodePort' })]);
  await lab.addPod({ name: 'client', node: 'node-2', ports: [{ port: 8080, protocol: 'TCP' }] });
  const svc = liveService(lab);
  const node2 = lab.node('node-2');
  // Both on node-2, the node whose agent is replaced: pod → ClusterIP is translated by tc on the
  // client's veth; client-1 → node-2's NodePort by XDP on its uplink (SNAT: reverse NAT needs conntrack).
  const paths = [
    { from: 'client', address: svc.spec!.clusterIP!, port: 80 },
    { from: 'client-1', address: node2.address, port: svc.spec!.ports![0]!.nodePort! },
  ];
  for (const p of paths) {
    const ready = await eventually(`${p.from} → ${p.address}:${p.port} answered by all three pods`, () => lab.request(p.from, { ...p, count: 30, timeoutMs: 2000 }), (a) => Object.keys(tally(a).byAnswer).length === 3 && a.every((x) => x.ok), 60_000);
    t.deepEqual(Object.keys(tally(ready).byAnswer).sort(), ['hostnames-1', 'hostnames-2', 'hostnames-3'], `${p.from} → ${p.address}:${p.port} under the previous release`);
  }

  const streams = [
    ...[1, 2, 3].map(() => lab.stream('client', { ...paths[0]!, intervalMs: 20 })),
    ...[1, 2].map(() => lab.stream('client-1', { ...paths[1]!, intervalMs: 20 })),
  ];
  t.teardown(() => Promise.all(streams.map((s) => s.stop().catch(() => undefined))).then(() => undefined));
  await Promise.all(streams.map((s) => s.connected));

  // New connections, in rounds, each labelled with the phase it began in (bounded: 600 rounds).
  let phase = 'previous';
  const answers: { phase: string; answer: Answer; at: string }[] = [];
  let stop = false;
  const traffic = (async () => {
    for (let round = 0; round < 600 && !stop; round++) {
      for (const p of paths) {
        const began = `${phase}, ${p.from} → ${p.address}:${p.port}`;
        const at = new Date().toISOString();
        for (const answer of await lab.request(p.from, { ...p, count: 10, concurrency: 10, timeoutMs: 3000 })) answers.push({ phase: began, answer, at });
      }
    }
  })();
  t.teardown(async () => {
    stop = true;
    await traffic.catch(() => {});
  });
  const moreConnections = async (n: number) => {
    const target = answers.length + n;
    for (const deadline = Date.now() + 60_000; answers.length < target && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
  };

  await moreConnections(40);
  const switches: [string, AgentRelease | undefined][] = [
    ['upgrade', undefined],
    ['downgrade', previous],
    ['upgrade again', undefined],
    ['restart', undefined],
  ];
  const log = agents.agent('node-2').log;
  // Which switch a stream stopped in, if one does: its echoes stop growing.
  const stalledIn: (string | undefined)[] = streams.map(() => undefined);
  let echoed = streams.map((s) => s.progress.echoedBytes);
  for (const [name, release] of switches) {
    phase = name;
    await agents.replace('node-2', release, { readyTimeoutMs: 90_000 });
    t.is((await agents.health('node-2')).status, 200, `${name}: /healthz`);
    await moreConnections(60);
    const now = streams.map((s) => s.progress.echoedBytes);
    now.forEach((n, i) => {
      if (n === echoed[i] && stalledIn[i] === undefined) stalledIn[i] = name;
    });
    echoed = now;
  }
  stop = true;
  await traffic;

  const results = await Promise.all(streams.map((s) => s.stop()));
  if (results.some((r) => r.error)) t.log(agents.logTail('node-2', 80));
  for (const [i, r] of results.entries()) {
    t.is(r.error, null, `stream ${i} (${i < 3 ? 'ClusterIP' : 'NodePort'}; stopped in: ${stalledIn[i] ?? '-'}): ${JSON.stringify(r.error)}`);
    t.true(r.intact, `stream ${i} echoed what it sent`);
    t.is(r.echoedBytes, r.sentBytes, `stream ${i}`);
  }
  const byPhase = new Map<string, Answer[]>();
  for (const { phase: p, answer } of answers) byPhase.set(p, [...(byPhase.get(p) ?? []), answer]);
  const failed = answers.filter((a) => !a.answer.ok);
  if (failed.length > 0) t.log(`failed: ${[...new Set(failed.map((a) => `${a.at} ${a.phase}`))].join('; ')}\n${agents.logTail('node-2', 60)}`);
  for (const [p, list] of byPhase) {
    const { byAnswer, byError } = tally(list);
    t.deepEqual(byError, {}, `${p}: no refused, reset or timed-out connection`);
    t.deepEqual(Object.keys(byAnswer).sort(), ['hostnames-1', 'hostnames-2', 'hostnames-3'], `${p}: every backend answers`);
  }

  // The handover happened as designed, not by luck: flows moved forward and back.
  const text = readFileSync(log, 'utf8');
  t.regex(text, /migrated ct4_v2 to ct4_v4/, 'the upgrade migrated the previous release\'s conntrack');
  t.regex(text, /conntrack left in the previous layout too/, 'the stopping agent left a downgrade snapshot');
  t.regex(text, /an older release ran since/, 'the second upgrade dropped its own stale conntrack');
  t.regex(text, /our downgrade snapshot was not taken over: unpinned/, 'the restarted agent kept its live conntrack and dropped the snapshot');
  t.log(
    `${answers.length} connections (${[...byPhase].map(([p, l]) => `${p}: ${l.length}`).join(', ')}), ${results.length} streams ` +
      `(${results.map((r) => r.sentLines).join('/')} lines), 0 lost`,
  );
});

