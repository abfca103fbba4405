// Real packets between two namespaces cross an attached XDP program and an attached tc program;
// the counters are read back from the pinned map, as another process would.
import { join } from 'node:path';

import { privileged } from '../helpers/env.js';
import { scope } from '../helpers/scope.js';

import { native } from '../../ts/addon/index.js';
import { vethPair } from '../../ts/lab/net/netns.js';
import { PROBE_COUNTERS_MAP, Probe, ProbeHook, readProbeCounts } from '../fixtures/probe.js';

const ICMP = 1;

privileged('pings from namespace A to B cross tc egress on A and XDP on B', async (t) => {
  const s = scope(t);
  const pinDir = await s.bpffs();
  const [a, b] = [await s.netns('a'), await s.netns('b')];
  await vethPair({ ns: a, name: 'veth-a', address: '198.18.0.1/30' }, { ns: b, name: 'veth-b', address: '198.18.0.2/30' });

  const probe = await Probe.load({ pinDir });
  s.cleanup.add('probe', () => probe.close());
  const ifA = native.netnsRun(a.path, () => native.ifNameToIndex('veth-a'));
  const ifB = native.netnsRun(b.path, () => native.ifNameToIndex('veth-b'));
  const tc = native.netnsRun(a.path, () => probe.attachTcx(ifA, 'egress'));
  const xdp = native.netnsRun(b.path, () => probe.attachXdp(ifB, 'native'));
  s.cleanup.add('links', () => {
    tc.close();
    xdp.close();
  });
  t.like(xdp.info, { type: 'xdp', ifindex: ifB, attachType: 'xdp' });
  t.like(tc.info, { type: 'tcx', ifindex: ifA, attachType: 'egress' });

  await a.exec('ping', ['-c', '5', '-i', '0.05', '-W', '1', '198.18.0.2']);

  const pinned = native.BpfMap.fromPin(join(pinDir, PROBE_COUNTERS_MAP));
  s.cleanup.add('pinned map', () => pinned.close());
  const counts = readProbeCounts(pinned);
  const icmp = (ifindex: number, hook: ProbeHook) =>
    counts.find((c) => c.ifindex === ifindex && c.hook === hook && c.proto === ICMP)?.packets ?? 0n;
  t.is(icmp(ifA, ProbeHook.TcEgress), 5n, 'five echo requests left A through tc egress');
  t.is(icmp(ifB, ProbeHook.Xdp), 5n, 'five echo requests reached B through XDP');
});

privileged('XDP programs are replaced atomically through their link', async (t) => {
  const s = scope(t);
  const ns = await s.netns('x');
  const peer = await s.netns('y');
  await vethPair({ ns, name: 'veth-x' }, { ns: peer, name: 'veth-y' });
  const first = await Probe.load();
  const second = await Probe.load({ dropProto: 17 });
  s.cleanup.add('probes', () => {
    first.close();
    second.close();
  });
  const ifindex = native.netnsRun(ns.path, () => native.ifNameToIndex('veth-x'));
  const link = native.netnsRun(ns.path, () => first.attachXdp(ifindex));
  s.cleanup.add('link', () => link.close());
  const before = link.info;
  t.is(native.netnsRun(ns.path, () => native.xdpQuery(ifindex)).progId, first.object.program('probe_xdp').info.id);

  link.update(second.object.program('probe_xdp'));

  const after = link.info;
  t.is(after.id, before.id, 'same link');
  t.is(after.progId, second.object.program('probe_xdp').info.id, 'new program');
  t.is(native.netnsRun(ns.path, () => native.xdpQuery(ifindex)).progId, after.progId);
});

privileged('a pinned link keeps its program attached after every handle is closed', async (t) => {
  const s = scope(t);
  const pinDir = await s.bpffs();
  const ns = await s.netns('p');
  const peer = await s.netns('q');
  await vethPair({ ns, name: 'veth-p' }, { ns: peer, name: 'veth-q' });
  const probe = await Probe.load();
  const ifindex = native.netnsRun(ns.path, () => native.ifNameToIndex('veth-p'));
  const link = native.netnsRun(ns.path, () => probe.attachTcx(ifindex, 'ingress'));
  const progId = link.info.progId;
  link.pin(join(pinDir, 'link_tc_ingress'));
  link.close();
  probe.close();

  const adopted = native.BpfLink.fromPin(join(pinDir, 'link_tc_ingress'));
  s.cleanup.add('adopted link', () => adopted.close());
  t.like(adopted.info, { type: 'tcx', progId, ifindex, attachType: 'ingress' });
});

privileged('legacy tc (clsact + cls_bpf) attaches, replaces in place and detaches', async (t) => {
  const s = scope(t);
  const ns = await s.netns('c');
  const peer = await s.netns('d');
  await vethPair({ ns, name: 'veth-c' }, { ns: peer, name: 'veth-d' });
  const first = await Probe.load();
  const second = await Probe.load();
  s.cleanup.add('probes', () => {
    first.close();
    second.close();
  });
  native.netnsRun(ns.path, () => {
    const ifindex = native.ifNameToIndex('veth-c');
    const firstId = first.object.program('probe_tc_ingress').info.id;
    const secondId = second.object.program('probe_tc_ingress').info.id;
    t.is(native.tcAttach(first.object.program('probe_tc_ingress'), ifindex, 'ingress', 1, 1), firstId);
    t.is(native.tcQuery(ifindex, 'ingress', 1, 1), firstId);
    native.tcAttach(second.object.program('probe_tc_ingress'), ifindex, 'ingress', 1, 1);
    t.is(native.tcQuery(ifindex, 'ingress', 1, 1), secondId, 'same filter, new program');
    native.tcDetach(ifindex, 'ingress', 1, 1);
    t.is(native.tcQuery(ifindex, 'ingress', 1, 1), 0);
  });
});
