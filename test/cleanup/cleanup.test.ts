// `bpfproxy cleanup` on a node a real agent set up: refused while the agent runs, a dry run changes
// nothing, the real run leaves nothing of bpfproxy's (links, XDP, pins, the service device and its
// route) and nothing else disturbed (a foreign tcx program and XDP program, a tc filter running a
// program of bpfproxy's name from another datapath, another node's whole datapath, a foreign pin),
// and a second run finds nothing to do.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { privilegedSerial } from '../helpers/env.js';
import { serviceYaml, sliceYaml } from '../agent/_fixture.js';
import {
  SERVICE_ROUTE,
  cleanupCli,
  cleanupJson,
  existingPrograms,
  linkAttachment,
  linksOfPrograms,
  nodeWithServiceDevice,
  pinnedLinks,
  tcFilters,
  xdpProgram,
} from './_fixture.js';
import { eventually } from '../helpers/wait.js';

import { native } from '../../ts/addon/index.js';
import { legacyMapNames, mapSpecs } from '../../ts/abi/maps.js';
import { attachDatapath } from '../../ts/dataplane/attach.js';
import { loadDatapath } from '../../ts/dataplane/loader.js';
import { Probe } from '../fixtures/probe.js';

const SMALL_MAPS = { svc4: 1024, backends: 1024, ct4: 4096, aff4: 1024 };
const AGENT_LINKS = ['eth0_egress', 'eth0_ingress', 'eth0_xdp', 'lo_egress', 'pod-a_egress', 'pod-a_ingress', 'pod-b_egress', 'pod-b_ingress', 'svc0_egress'];

privilegedSerial('cleanup removes what the agent installed and nothing else; refused while it runs; a second run is a no-op', async (t) => {
  const node = await nodeWithServiceDevice(t, ['pod-a', 'pod-b']);
  const { s, ns } = node;
  const bpffsRoot = dirname(node.bpffsDir);
  node.writeSource('web.yaml', serviceYaml('web', 'clusterIP: 198.19.0.10\nports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP }]') + sliceYaml('web', { name: 'http', port: 8080 }, [{ ip: '198.18.129.5', node: 'node-1' }]));
  await node.start();
  await node.waitForDump((d) => d.some((l) => l.includes('198.19.0.10:80')), 'web programmed');

  // Another node's datapath (same program and map names, its own pins and namespace).
  const other = await s.netns('node2');
  await other.ipBatch(['link add eth0 type veth peer name x0', 'link set eth0 up', 'link set x0 up']);
  const dp2 = await loadDatapath({ pinDir: join(bpffsRoot, 'node-2'), config: { nodeIp: '198.18.0.12' }, mapSizes: SMALL_MAPS });
  const att2 = attachDatapath(dp2, { netnsPath: other.path, uplink: 'eth0', xdpMode: 'generic' });
  s.cleanup.add('node-2 datapath', () => {
    att2.detachAll();
    dp2.close();
  });
  const xdp2 = await other.exec('ip', ['-j', 'link', 'show', 'eth0']);

  // Foreign programs on node-1's own interfaces.
  const probe = await Probe.load();
  s.cleanup.add('probe', () => probe.close());
  const ifindex = (name: string) => native.netnsRun(ns.path, () => native.ifNameToIndex(name));
  const foreignTcx = native.netnsRun(ns.path, () => probe.attachTcx(ifindex('eth0'), 'ingress'));
  const foreignXdp = native.netnsRun(ns.path, () => probe.attachXdp(ifindex('pod-b'), 'generic'));
  s.cleanup.add('foreign links', () => {
    foreignTcx.close();
    foreignXdp.close();
  });
  // A classic tc filter running node-2's tc_pod_egress: bpfproxy's name, not this node's datapath.
  native.netnsRun(ns.path, () => native.tcAttach(dp2.programs.tcPodEgress, ifindex('pod-a'), 'egress', 7, 7));
  const foreignTcBefore = await tcFilters(node, 'pod-a', 'egress');
  t.regex(foreignTcBefore, /tc_pod_egress/);

  const agentLinks = pinnedLinks(node.bpffsDir);
  t.deepEqual([...agentLinks.keys()].sort(), AGENT_LINKS);
  const agentProgs = new Set([...agentLinks.values()].map((l) => l.progId));
  t.is((await xdpProgram(node, 'eth0'))?.name, 'xdp_uplink');

  // 1. Refused while the agent runs: both signs, exit 1, nothing touched.
  const refused = await cleanupCli(node, []);
  t.is(refused.code, 1, refused.stdout + refused.stderr);
  t.regex(refused.stderr, /a bpfproxy agent is running for .*node-1/);
  t.regex(refused.stderr, /pid \d+ \(.*bpfproxy\.js agent.*\) holds 9 of its links/);
  t.regex(refused.stderr, /answers \/proxyMode with 'bpfproxy'/);
  t.regex(refused.stderr, /--force/);
  const refusedJson = await cleanupCli(node, ['--json']);
  t.is(refusedJson.code, 1);
  t.like(JSON.parse(refusedJson.stdout), { refused: true, agent: { running: true } });
  t.deepEqual([...pinnedLinks(node.bpffsDir).keys()].sort(), AGENT_LINKS, 'refused: nothing removed');

  t.is(await node.stop('SIGTERM'), 0);

  // This datapath's programs attached the classic ways too (by hand, say): a clsact tc filter and
  // netlink XDP. Not what the agent does, but cleanup finds its programs wherever they hang here.
  const podIngress = native.BpfProgram.fromId(agentLinks.get('pod-a_ingress')!.progId);
  native.netnsRun(ns.path, () => native.tcAttach(podIngress, ifindex('pod-b'), 'egress', 9, 9));
  podIngress.close();
  const xdpPin = join(bpffsRoot, 'test_xdp_prog');
  const xdpProg = native.BpfProgram.fromId(agentLinks.get('eth0_xdp')!.progId);
  xdpProg.pin(xdpPin);
  xdpProg.close();
  await node.ns.ip('link', 'set', 'dev', 'pod-a', 'xdpgeneric', 'pinned', xdpPin);
  await node.ns.exec('rm', [xdpPin]);
  t.regex(await tcFilters(node, 'pod-b', 'egress'), /tc_pod_ingress/);
  t.is((await xdpProgram(node, 'pod-a'))?.name, 'xdp_uplink');

  // 2. A dry run says what it would remove and removes nothing.
  const dry = await cleanupJson(t, node, ['--dry-run']);
  t.true(dry.dryRun);
  t.false(dry.agent.running);
  t.is(dry.removed.filter((r) => r.kind === 'link').length, 9);
  t.is(dry.removed.filter((r) => r.kind === 'tc-filter' || r.kind === 'xdp').length, 2);
  t.deepEqual([...pinnedLinks(node.bpffsDir).keys()].sort(), AGENT_LINKS, 'dry run: links still pinned');
  t.is((await xdpProgram(node, 'eth0'))?.name, 'xdp_uplink', 'dry run: XDP still attached');
  t.true((await node.ns.ip('link', 'show', 'svc0')).includes('svc0'), 'dry run: service device still there');
  const dryText = await cleanupCli(node, ['--dry-run']);
  t.is(dryText.code, 0);
  t.regex(dryText.stdout, /^would remove link .*\/links\/eth0_xdp: xdp_uplink \(link \d+, xdp\), xdp on eth0$/m);
  t.regex(dryText.stdout, /^would remove service-device svc0: (dummy|ifb) device$/m);
  t.regex(dryText.stdout, new RegExp(`^dry run: would remove ${dry.removed.length} object\\(s\\) of bpfproxy's`, 'm'));

  // 3. The real run.
  const report = await cleanupJson(t, node);
  t.false(report.dryRun);
  const removed = (kind: string) => report.removed.filter((r) => r.kind === kind).map((r) => r.name);
  t.deepEqual(removed('link').map((p) => p.slice(p.lastIndexOf('/') + 1)).sort(), AGENT_LINKS);
  // The agent stopped gracefully: its downgrade snapshot (ct4_v2, release-handover.ts) is ours too.
  t.deepEqual(removed('map').map((p) => p.slice(p.lastIndexOf('/') + 1)).sort(), [...Object.values(mapSpecs).map((m) => m.name), legacyMapNames.ct4V2].sort());
  t.deepEqual(removed('directory'), [join(node.bpffsDir, 'links'), node.bpffsDir]);
  t.deepEqual(removed('service-device'), ['svc0']);
  t.deepEqual(removed('route'), [`${SERVICE_ROUTE} dev svc0`]);
  t.deepEqual(removed('sysctl'), ['net.ipv4.conf.lo.accept_local']);
  t.deepEqual(removed('tc-filter'), ['pod-b egress'], 'the tc filter of node-2\'s program on pod-a is not ours');
  t.deepEqual(removed('xdp'), ['pod-a']);
  t.deepEqual(report.kept, []);

  // Nothing of node-1's bpfproxy remains: no pin, no XDP, no link, no program, no device, no route.
  t.false(existsSync(node.bpffsDir), 'pin directory gone');
  t.is(await xdpProgram(node, 'eth0'), undefined, 'no XDP on the uplink');
  t.is(await xdpProgram(node, 'pod-a'), undefined, 'no netlink XDP on pod-a');
  t.is(await tcFilters(node, 'pod-b', 'egress'), '', 'no tc filter of ours on pod-b');
  t.deepEqual(await linksOfPrograms(agentProgs), [], 'no link of the agent\'s programs anywhere');
  await eventually('the agent\'s programs to be freed', () => existingPrograms(agentProgs), (ids) => ids.length === 0);
  t.false((await node.ns.exec('ip', ['-o', 'link', 'show'])).includes('svc0'));
  t.false((await node.ns.exec('ip', ['route', 'show'])).includes('198.19.0.0/17'));

  // Everything else is still there.
  t.is((await linkAttachment(bpffsRoot, foreignTcx.info.id))?.ifindex, ifindex('eth0'), 'foreign tcx on eth0 still attached');
  t.is((await xdpProgram(node, 'pod-b'))?.name, 'probe_xdp', 'foreign XDP on pod-b still attached');
  t.is(await tcFilters(node, 'pod-a', 'egress'), foreignTcBefore, 'the foreign tc filter is untouched');
  t.deepEqual(readdirSync(join(bpffsRoot, 'node-2', 'links')).sort(), ['eth0_egress', 'eth0_ingress', 'eth0_xdp', 'lo_egress'], 'node-2 keeps its pins');
  t.is(await other.exec('ip', ['-j', 'link', 'show', 'eth0']), xdp2, 'node-2 keeps its XDP program');
  for (const l of att2.links()) t.not(l.link.info.ifindex, 0, `node-2's ${l.pin} still attached`);

  // 4. A second run finds nothing and succeeds.
  const again = await cleanupJson(t, node);
  t.deepEqual(again.removed, []);
  t.deepEqual(again.kept, []);
  const text = await cleanupCli(node, []);
  t.is(text.code, 0);
  t.regex(text.stdout, /nothing of bpfproxy's found for .*node-1: nothing to remove/);
  t.is(await tcFilters(node, 'pod-a', 'egress'), foreignTcBefore, 'still untouched after the second run');
});
