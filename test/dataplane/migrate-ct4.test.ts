// Upgrading the agent keeps live flows: a ct4_v1 (value without be_gen), ct4_v2 (without state) or
// ct4_v3 (an LRU hash) pinned by an older agent is copied into ct4_v4 at load (ct4_v1's with be_gen =
// the current backend generation; v1 and v2 flows with the state their two entries' tcp_seen tell;
// v3 entries as they are), then unpinned.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { CtDir, CtFlags, CtState, IPPROTO, ct4Key, ct4Value, ct4ValueV1Size, ct4ValueV2Size, ctStateName, type Ct4Key, type Ct4Value } from '../../ts/abi/index.js';
import { native } from '../../ts/addon/index.js';
import { bumpBackendGeneration } from '../../ts/dataplane/backend-generation.js';
import { monotonicNs } from '../../ts/abi/clock.js';
import { loadDatapath, migrateLegacyMaps, type Datapath } from '../../ts/dataplane/loader.js';
import { NET, TC, defaultConfig, expectPacket, rootTest, setup, writeBackend, writeService } from '../datapath/_fixture.js';
import { rewrite, tcp } from '../datapath/_packets.js';
import { scope } from '../helpers/scope.js';
import { buildPacket } from '../../ts/packet/index.js';

const buildOf = buildPacket;

const fwdKey: Ct4Key = { saddr: NET.pod1a, daddr: NET.clusterIp, sport: 40000, dport: 80, proto: IPPROTO.TCP, dir: CtDir.FWD, pad: 0 };
const repKey: Ct4Key = { saddr: NET.pod2a, daddr: NET.pod1a, sport: 8080, dport: 40000, proto: IPPROTO.TCP, dir: CtDir.REPLY, pad: 0 };
const expiredKey: Ct4Key = { ...fwdKey, sport: 40001 };

/** An established flow pod1a:40000 → ClusterIP:80 → pod2a:8080 (backend 1) as an older agent stored it. */
type V1Value = Omit<Ct4Value, 'be_gen' | 'pad2' | 'state'>;
const asV1 = (v: V1Value) => ct4Value.encode({ ...v, be_gen: 0, pad2: 0, state: 0n }).subarray(0, ct4ValueV1Size);

function v1Entries(): [Ct4Key, V1Value][] {
  const live = monotonicNs() + 3_600_000_000_000n;
  const common = { backend_id: 1, svc_id: 1, flags: 0, tcp_seen: 0x10, pad: 0, expires_ns: live };
  return [
    [fwdKey, { ...common, nat_saddr: NET.pod1a, nat_sport: 40000, nat_daddr: NET.pod2a, nat_dport: 8080 }],
    [repKey, { ...common, nat_saddr: NET.clusterIp, nat_sport: 80, nat_daddr: NET.pod1a, nat_dport: 40000 }],
    [expiredKey, { ...common, nat_saddr: NET.pod1a, nat_sport: 40001, nat_daddr: NET.pod2a, nat_dport: 8080, expires_ns: monotonicNs() - 1n }],
  ];
}

/** ct4_v1 as the previous release created and pinned it (BpfObject would have: same type and sizes). */
function pinCt4V1(pinDir: string, entries = v1Entries()): void {
  const m = native.BpfMap.create({ type: 'lru_hash', name: 'ct4_v1', keySize: ct4Key.size, valueSize: ct4ValueV1Size, maxEntries: 4096 });
  try {
    for (const [k, v] of entries) m.update(ct4Key.encode(k), asV1(v));
    m.pin(join(pinDir, 'ct4_v1'));
  } finally {
    m.close();
  }
}

function writeServiceOfFlow(dp: Datapath) {
  writeBackend(dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
}

rootTest('a fresh load migrates ct4_v1: live entries arrive with be_gen 0, the old pin is gone, the flow carries on', async (t) => {
  const s = scope(t);
  const pinDir = await s.bpffs();
  const ns = await s.netns('migrate');
  let dp: Datapath | undefined;
  s.cleanup.add('datapath', () => dp?.close());
  const entries = v1Entries();
  pinCt4V1(pinDir, entries);

  const logged: string[] = [];
  dp = await loadDatapath({ pinDir, config: defaultConfig, log: (m) => logged.push(m) });
  t.deepEqual(dp.migration, { ct4: [{ from: 'ct4_v1', copied: 2, expired: 1, present: 0, noRoom: 0, generation: 0 }] });
  t.is(logged.length, 1);
  t.regex(logged[0]!, /ct4_v1 to ct4_v4: 2 entries copied/);
  t.false(existsSync(join(pinDir, 'ct4_v1')), 'ct4_v1 unpinned');
  t.true(existsSync(join(pinDir, 'ct4_v4')));
  const [fwd, rep] = entries.map(([, v]) => v);
  // Both entries saw ACKs: established, both ways.
  t.deepEqual(dp.maps.ct4.get(fwdKey), { ...fwd!, be_gen: 0, pad2: 0, state: BigInt(CtState.REPLIED) });
  t.deepEqual(dp.maps.ct4.get(repKey), { ...rep!, flags: CtFlags.REPLY, be_gen: 0, pad2: 0, state: BigInt(CtState.REPLIED) });
  t.is(dp.maps.ct4.get(expiredKey), null, 'expired entries are left behind');
  t.is(dp.maps.ct4.entries().length, 2);

  // The migrated flow is established: its next segment goes to its backend (no SYN, no new pick).
  writeServiceOfFlow(dp);
  const d = dp;
  const send = (spec: ReturnType<typeof tcp>) => native.netnsRun(ns.path, () => d.programs.tcPodIngress.testRun({ data: buildOf(spec) }));
  const ack = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['ACK'], { seq: 5001, ack: 77 });
  const r = send(ack);
  t.is(r.retval, TC.OK);
  expectPacket(t, r.data, rewrite(ack, { dst: NET.pod2a, dport: 8080 }));
  // And it is checked like any flow after a bump: backend gone → reset.
  dp.maps.backends.delete(1);
  bumpBackendGeneration(dp);
  t.is(send(ack).retval, TC.REDIRECT, 'reset');

  // Loading again finds nothing to migrate.
  const again = await loadDatapath({ pinDir, config: defaultConfig });
  t.is(again.migration, null);
  again.close();
});

rootTest('an upgrade over a datapath that has ct4_v4 already: the current generation, ct4_v4 entries win', async (t) => {
  const env = await setup(t);
  writeServiceOfFlow(env.dp);
  env.dp.maps.begen.set(0, { generation: 5 });
  // ct4_v4 already holds the reply entry (a migration interrupted after its copy): it is kept.
  const mine: Ct4Value = { ...v1Entries()[1]![1], svc_id: 99, be_gen: 3, pad2: 0, state: 1n };
  env.dp.maps.ct4.set(repKey, mine);
  pinCt4V1(env.dp.pinDir);
  const again = await loadDatapath({ pinDir: env.dp.pinDir, config: defaultConfig });
  t.teardown(() => again.close());
  t.deepEqual(again.migration, { ct4: [{ from: 'ct4_v1', copied: 1, expired: 1, present: 1, noRoom: 0, generation: 5 }] });
  t.like(again.maps.ct4.get(fwdKey), { be_gen: 5, backend_id: 1 });
  t.deepEqual(again.maps.ct4.get(repKey), mine);
  t.false(existsSync(join(env.dp.pinDir, 'ct4_v1')));
});

rootTest('a ct4_v1 pin of another layout is refused, not migrated nor removed', async (t) => {
  const env = await setup(t);
  const m = native.BpfMap.create({ type: 'hash', name: 'ct4_v1', keySize: 16, valueSize: 24, maxEntries: 16 });
  m.pin(join(env.dp.pinDir, 'ct4_v1'));
  m.close();
  await t.throwsAsync(loadDatapath({ pinDir: env.dp.pinDir, config: defaultConfig }), { message: /not migrated/ });
  t.true(existsSync(join(env.dp.pinDir, 'ct4_v1')));
});

rootTest('deferred (the agent: after attach): the load leaves ct4_v1 alone; migrateLegacyMaps then copies what the old programs wrote until then', async (t) => {
  const env = await setup(t);
  const [first, second] = v1Entries();
  pinCt4V1(env.dp.pinDir, [first!]);
  const upgraded = await loadDatapath({ pinDir: env.dp.pinDir, config: defaultConfig, deferMigration: true });
  t.teardown(() => upgraded.close());
  t.is(upgraded.migration, null);
  t.true(existsSync(join(env.dp.pinDir, 'ct4_v1')), 'still pinned: the old programs may still be writing it');
  // The old programs, still on the hooks, track one more entry before the new ones replace them.
  const old = native.BpfMap.fromPin(join(env.dp.pinDir, 'ct4_v1'));
  old.update(ct4Key.encode(second![0]), asV1(second![1]));
  old.close();
  t.deepEqual(migrateLegacyMaps(upgraded.pinDir, upgraded.maps), { ct4: [{ from: 'ct4_v1', copied: 2, expired: 0, present: 0, noRoom: 0, generation: 0 }] });
  t.like(upgraded.maps.ct4.get(repKey), { be_gen: 0, backend_id: 1 });
  t.false(existsSync(join(env.dp.pinDir, 'ct4_v1')));
  t.is(migrateLegacyMaps(upgraded.pinDir, upgraded.maps), null, 'nothing left to migrate');
});

rootTest('a fresh load migrates ct4_v2: each flow gets the state both its entries saw (FINs both ways: TIME_WAIT), be_gen is kept', async (t) => {
  const env = await setup(t);
  writeServiceOfFlow(env.dp);
  const live = monotonicNs() + 3_600_000_000_000n;
  const FIN_ACK = 0x11;
  const v2 = (v: V1Value) => ct4Value.encode({ ...v, be_gen: 7, pad2: 0, state: 0n }).subarray(0, ct4ValueV2Size);
  const common = { backend_id: 1, svc_id: 1, flags: CtFlags.CLOSING_V2, tcp_seen: FIN_ACK, pad: 0, expires_ns: live };
  const udpFwd: Ct4Key = { ...fwdKey, dport: 53, proto: IPPROTO.UDP };
  const m = native.BpfMap.create({ type: 'lru_hash', name: 'ct4_v2', keySize: ct4Key.size, valueSize: ct4ValueV2Size, maxEntries: 4096 });
  try {
    m.update(ct4Key.encode(fwdKey), v2({ ...common, nat_saddr: NET.pod1a, nat_sport: 40000, nat_daddr: NET.pod2a, nat_dport: 8080 }));
    m.update(ct4Key.encode(repKey), v2({ ...common, nat_saddr: NET.clusterIp, nat_sport: 80, nat_daddr: NET.pod1a, nat_dport: 40000 }));
    m.update(ct4Key.encode(udpFwd), v2({ ...common, flags: 0, tcp_seen: 0, nat_saddr: NET.pod1a, nat_sport: 40000, nat_daddr: NET.pod2a, nat_dport: 53 }));
    m.pin(join(env.dp.pinDir, 'ct4_v2'));
  } finally {
    m.close();
  }
  const upgraded = await loadDatapath({ pinDir: env.dp.pinDir, config: defaultConfig });
  t.teardown(() => upgraded.close());
  t.deepEqual(upgraded.migration, { ct4: [{ from: 'ct4_v2', copied: 3, expired: 0, present: 0, noRoom: 0 }] });
  t.false(existsSync(join(env.dp.pinDir, 'ct4_v2')), 'ct4_v2 unpinned');
  const fwd = upgraded.maps.ct4.get(fwdKey)!;
  const rep = upgraded.maps.ct4.get(repKey)!;
  t.is(ctStateName(IPPROTO.TCP, fwd.state), 'TIME_WAIT');
  t.is(rep.state, fwd.state, 'one state for the flow');
  t.like(fwd, { flags: 0, be_gen: 7, expires_ns: live });
  t.like(rep, { flags: CtFlags.REPLY, be_gen: 7 });
  t.is(ctStateName(IPPROTO.UDP, upgraded.maps.ct4.get(udpFwd)!.state), 'REPLIED', 'older UDP flows keep the stream lifetime');
  // The migrated flow's last ACK is still translated.
  const ack = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['ACK'], { seq: 5002, ack: 78 });
  const r = env.send('tcPodIngress', ack);
  t.is(r.verdict, TC.OK);
  expectPacket(t, r.out, rewrite(ack, { dst: NET.pod2a, dport: 8080 }));
});

rootTest('ct4_v2 flows its agent carried on as established stay established, whatever tcp_seen holds (RST without CLOSING)', async (t) => {
  const env = await setup(t);
  writeServiceOfFlow(env.dp);
  const live = monotonicNs() + 3_600_000_000_000n;
  const RST_PSH_ACK = 0x1c;
  const v2 = (v: V1Value) => ct4Value.encode({ ...v, be_gen: 7, pad2: 0, state: 0n }).subarray(0, ct4ValueV2Size);
  const common = { backend_id: 1, svc_id: 1, flags: 0, pad: 0, expires_ns: live };
  const m = native.BpfMap.create({ type: 'lru_hash', name: 'ct4_v2', keySize: ct4Key.size, valueSize: ct4ValueV2Size, maxEntries: 4096 });
  try {
    m.update(ct4Key.encode(fwdKey), v2({ ...common, tcp_seen: RST_PSH_ACK, nat_saddr: NET.pod1a, nat_sport: 40000, nat_daddr: NET.pod2a, nat_dport: 8080 }));
    m.update(ct4Key.encode(repKey), v2({ ...common, tcp_seen: 0x18, nat_saddr: NET.clusterIp, nat_sport: 80, nat_daddr: NET.pod1a, nat_dport: 40000 }));
    m.pin(join(env.dp.pinDir, 'ct4_v2'));
  } finally {
    m.close();
  }
  const upgraded = await loadDatapath({ pinDir: env.dp.pinDir, config: defaultConfig });
  t.teardown(() => upgraded.close());
  t.is(ctStateName(IPPROTO.TCP, upgraded.maps.ct4.get(fwdKey)!.state), 'ESTABLISHED');
  t.is(ctStateName(IPPROTO.TCP, upgraded.maps.ct4.get(repKey)!.state), 'ESTABLISHED');
});

/** ct4_v3 as the previous release pinned it: an LRU hash with ct4_v4's value. */
function pinCt4V3(pinDir: string, entries: [Ct4Key, Ct4Value][]): void {
  const m = native.BpfMap.create({ type: 'lru_hash', name: 'ct4_v3', keySize: ct4Key.size, valueSize: ct4Value.size, maxEntries: 4096 });
  try {
    for (const [k, v] of entries) m.update(ct4Key.encode(k), ct4Value.encode(v));
    m.pin(join(pinDir, 'ct4_v3'));
  } finally {
    m.close();
  }
}

rootTest('a fresh load migrates ct4_v3 (an LRU hash) into ct4_v4 (a hash): entries as they were, state and all; what does not fit is counted', async (t) => {
  const env = await setup(t, {}, { ct4: 1024 });
  writeServiceOfFlow(env.dp);
  const live = monotonicNs() + 3_600_000_000_000n;
  const state = BigInt(CtState.REPLIED | CtState.FIN_FWD);
  const [fwd, rep, expired] = v1Entries().map(([k, v]): [Ct4Key, Ct4Value] => [k, { ...v, be_gen: 4, pad2: 0, state, expires_ns: v.expires_ns < live ? v.expires_ns : live }]);
  rep![1].flags = CtFlags.REPLY;
  pinCt4V3(env.dp.pinDir, [fwd!, rep!, expired!]);
  const upgraded = await loadDatapath({ pinDir: env.dp.pinDir, config: defaultConfig, mapSizes: { ct4: 1024 } });
  t.teardown(() => upgraded.close());
  t.deepEqual(upgraded.migration, { ct4: [{ from: 'ct4_v3', copied: 2, expired: 1, present: 0, noRoom: 0 }] });
  t.false(existsSync(join(env.dp.pinDir, 'ct4_v3')), 'ct4_v3 unpinned');
  t.is(upgraded.maps.ct4.raw.info.type, 'hash');
  t.deepEqual(upgraded.maps.ct4.get(fwdKey), fwd![1]);
  t.deepEqual(upgraded.maps.ct4.get(repKey), rep![1]);
  const ack = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['ACK'], { seq: 5002, ack: 78 });
  const r = env.send('tcPodIngress', ack);
  t.is(r.verdict, TC.OK);
  expectPacket(t, r.out, rewrite(ack, { dst: NET.pod2a, dport: 8080 }));

  // A ct4_v3 with more live entries than the new table holds: it fills, the rest is counted.
  const many: [Ct4Key, Ct4Value][] = [];
  for (let i = 0; i < 1100; i++) many.push([{ ...fwdKey, sport: 10000 + i }, { ...fwd![1], nat_sport: 10000 + i }]);
  pinCt4V3(env.dp.pinDir, many);
  const m = migrateLegacyMaps(env.dp.pinDir, upgraded.maps)!;
  t.deepEqual(m, { ct4: [{ from: 'ct4_v3', copied: 1024 - 2, expired: 0, present: 0, noRoom: 1100 - 1022 }] });
  t.is(upgraded.countEntries()?.ct4, 1024, 'full, and counted exactly');
});
