// `bpfproxy cleanup --force` while the agent runs: found by the objects it holds alone (its metrics
// server is off here), refused without --force; with it, every link is detached although the agent
// still holds them — including one whose pin was removed by hand — and a foreign pin in the pin
// directory is kept, with the directory.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { privilegedSerial } from '../helpers/env.js';
import {
  cleanupCli,
  cleanupJson,
  existingPrograms,
  linkAttachment,
  linksOfPrograms,
  nodeWithServiceDevice,
  pinnedLinks,
  xdpProgram,
} from './_fixture.js';
import { eventually } from '../helpers/wait.js';

import { PROBE_COUNTERS_MAP, Probe } from '../fixtures/probe.js';

privilegedSerial('--force detaches every link of a running agent, pinned or not; foreign pins are kept', async (t) => {
  const node = await nodeWithServiceDevice(t, ['pod-a'], { metricsBindAddress: '' });
  const bpffsRoot = dirname(node.bpffsDir);
  await node.start();
  const agentLinks = pinnedLinks(node.bpffsDir);
  t.is(agentLinks.size, 7);
  const agentProgs = new Set([...agentLinks.values()].map((l) => l.progId));

  // Without --force: refused, on the strength of the held links alone.
  const refused = await cleanupCli(node, []);
  t.is(refused.code, 1, refused.stdout + refused.stderr);
  t.regex(refused.stderr, /pid \d+ \(.*bpfproxy\.js agent.*\) holds 7 of its links/);
  t.notRegex(refused.stderr, /proxyMode/);

  // A pin removed by hand (the old manual rollback): the agent still holds that link, attached.
  // The agent is frozen meanwhile (SIGSTOP: it holds its handles, runs nothing), or its pin
  // watchdog would pin it again before cleanup looks.
  node.signal('SIGSTOP');
  let frozen = true;
  t.teardown(() => {
    if (frozen) node.signal('SIGCONT');
  });
  const unpinned = agentLinks.get('pod-a_ingress')!;
  await node.ns.exec('rm', [join(node.bpffsDir, 'links', 'pod-a_ingress')]);
  t.not((await linkAttachment(bpffsRoot, unpinned.id))?.ifindex, 0);
  // Someone else's pin in the same directory.
  const probe = await Probe.load({ pinDir: node.bpffsDir });
  node.s.cleanup.add('probe', () => probe.close());

  const report = await cleanupJson(t, node, ['--force']);
  t.true(report.forced);
  t.true(report.agent.running);
  const links = report.removed.filter((r) => r.kind === 'link');
  t.is(links.length, 7);
  t.true(links.some((l) => l.name === `link ${unpinned.id}` && /tc_pod_ingress, ingress on pod-a \(not pinned\)/.test(l.detail)), JSON.stringify(links));
  t.deepEqual(report.kept, [{ name: join(node.bpffsDir, PROBE_COUNTERS_MAP), reason: 'not a bpfproxy pin' }]);
  t.deepEqual(report.removed.filter((r) => r.kind === 'directory').map((r) => r.name), [join(node.bpffsDir, 'links')], 'the pin directory stays: it is not empty');

  // Woken, the agent sees every link detached: an uninstall, not an accident; it pins nothing again.
  node.signal('SIGCONT');
  frozen = false;
  await node.waitForLog((l) => l.msg.startsWith('the datapath was uninstalled under the running agent'), 20_000);

  // The agent still holds its links, but none is attached any more.
  const held = await linksOfPrograms(agentProgs);
  t.true(held.length >= 5, 'the running agent still holds its links');
  for (const id of held) t.is((await linkAttachment(bpffsRoot, id))?.ifindex, 0, `link ${id} detached`);
  t.is(await xdpProgram(node, 'eth0'), undefined);
  t.deepEqual(readdirSync(node.bpffsDir), [PROBE_COUNTERS_MAP]);

  // Once the agent is gone, its programs are freed; a second run only finds the foreign pin again.
  t.is(await node.stop('SIGTERM'), 0);
  await eventually('the agent\'s programs to be freed', () => existingPrograms(agentProgs), (ids) => ids.length === 0);
  const again = await cleanupJson(t, node);
  t.false(again.agent.running);
  t.deepEqual(again.removed, []);
  t.deepEqual(again.kept, report.kept);
});

privilegedSerial('--keep-service-device detaches from the device and leaves it and its route', async (t) => {
  const node = await nodeWithServiceDevice(t, []);
  await node.start();
  t.is(await node.stop('SIGTERM'), 0);
  const report = await cleanupJson(t, node, ['--keep-service-device']);
  t.true(report.removed.some((r) => r.kind === 'link' && r.name.endsWith('/svc0_egress')));
  t.false(report.removed.some((r) => r.kind === 'service-device' || r.kind === 'route'));
  t.deepEqual(report.kept, [{ name: 'svc0', reason: 'service device kept (--keep-service-device)' }]);
  t.regex(await node.ns.exec('ip', ['route', 'show', 'dev', 'svc0']), /198\.19\.0\.0\/17/);
});
