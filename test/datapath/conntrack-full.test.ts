/**
 * A full conntrack table refuses new flows and keeps the ones it has, as netfilter's does ("table
 * full, dropping packet"): ct4_v4 is a plain hash, so the insert of a new flow fails (-E2BIG) and its
 * packet is dropped as CT_FULL, where an LRU hash evicted some live flow's entry to make room (the
 * flow then broke: its segments met no entry, or its replies went out untranslated). A SNAT port
 * that is free but has no room is the table's shortage, not the port range's: CT_FULL too.
 */
import { CtDir, DropReason, IPPROTO, SvcFlags, type Ct4Key, type Ct4Value } from '../../ts/abi/index.js';
import { monotonicNs } from '../../ts/abi/clock.js';
import { NET, TC, drops, expectPacket, rootTest, setup, writeBackend, writeService, type Env } from './_fixture.js';
import { rewrite, tcp } from './_packets.js';
import { wireNode1 } from './_node1.js';

const CAPACITY = 1024;

/** Fills ct4 to capacity with live flows of other clients (an hour to live; they belong to no service here). */
function fill(env: Env): void {
  const room = CAPACITY - env.dp.countEntries()!.ct4!;
  const live = monotonicNs() + 3_600_000_000_000n;
  const value: Ct4Value = {
    nat_saddr: NET.pod1b, nat_daddr: NET.pod2b, nat_sport: 0, nat_dport: 8080, backend_id: 9, svc_id: 9, flags: 0, tcp_seen: 0x10, pad: 0,
    expires_ns: live, be_gen: 0, pad2: 0, state: 1n,
  };
  for (let i = 0; i < room; i++) {
    const key: Ct4Key = { saddr: NET.pod1b, daddr: NET.clusterIp, sport: 1 + i, dport: 9999, proto: IPPROTO.TCP, dir: CtDir.FWD, pad: 0 };
    env.dp.maps.ct4.set(key, { ...value, nat_sport: 1 + i });
  }
}

rootTest('conntrack full: established flows carry on, a new flow is dropped as CT_FULL and nothing is evicted; room again, it is made', async (t) => {
  const env = await setup(t, {}, { ct4: CAPACITY });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  const toBackend = (p: ReturnType<typeof tcp>) => rewrite(p, { dst: NET.pod2a, dport: 8080 });

  // An established flow, made before the table filled.
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN'], { seq: 1000 });
  expectPacket(t, env.send('tcPodIngress', syn).out, toBackend(syn));
  const synack = tcp(NET.pod2a, 8080, NET.pod1a, 40000, ['SYN', 'ACK'], { seq: 5000, ack: 1001 });
  expectPacket(t, env.send('tcPodEgress', synack).out, rewrite(synack, { src: NET.clusterIp, sport: 80 }));
  fill(env);
  t.is(env.dp.countEntries()!.ct4, CAPACITY, 'full');
  const before = new Set(env.dp.maps.ct4.raw.keys().keys.toString('hex').match(/.{32}/g));

  // New flows: dropped, counted, and no entry made or lost.
  for (let i = 0; i < 5; i++) {
    const r = env.send('tcPodIngress', tcp(NET.pod1a, 41000 + i, NET.clusterIp, 80, ['SYN']));
    t.is(r.verdict, TC.SHOT, `new flow ${i} dropped`);
  }
  t.is(drops(env.dp, DropReason.CT_FULL), 5n);
  t.is(drops(env.dp, DropReason.CT_CREATE), 0n);
  const after = new Set(env.dp.maps.ct4.raw.keys().keys.toString('hex').match(/.{32}/g));
  t.deepEqual(after, before, 'the same entries: none evicted, none added');

  // The established flow, both ways.
  const ack = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['ACK'], { seq: 1001, ack: 5001 });
  expectPacket(t, env.send('tcPodIngress', ack).out, toBackend(ack), 'established: forward');
  const data = tcp(NET.pod2a, 8080, NET.pod1a, 40000, ['ACK', 'PSH'], { seq: 5001, ack: 1001 });
  expectPacket(t, env.send('tcPodEgress', data).out, rewrite(data, { src: NET.clusterIp, sport: 80 }), 'established: reply');

  // Room for one flow (two entries): the next new flow is made.
  const { keys } = env.dp.maps.ct4.raw.keys();
  let freed = 0;
  for (let i = 0; i < keys.length / 16 && freed < 2; i++) {
    const k = keys.subarray(i * 16, (i + 1) * 16);
    if (k.readUInt16BE(10) === 9999) freed += env.dp.maps.ct4.raw.delete(k) ? 1 : 0; // ct4_key.dport: a filler
  }
  const next = tcp(NET.pod1a, 42000, NET.clusterIp, 80, ['SYN']);
  expectPacket(t, env.send('tcPodIngress', next).out, toBackend(next), 'room again: a new flow');
  t.is(env.dp.countEntries()!.ct4, CAPACITY);
  t.is(drops(env.dp, DropReason.CT_FULL), 5n);
});

rootTest('conntrack full, masqueraded: a free SNAT port with no room is CT_FULL, not SNAT_EXHAUSTED', async (t) => {
  const env = await setup(t, {}, { ct4: CAPACITY });
  wireNode1(env);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, flags: SvcFlags.MASQUERADE | SvcFlags.DETECT_LOCAL, backends: [1] });
  fill(env);
  const r = env.send('tcPodIngress', tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN']));
  t.is(r.verdict, TC.SHOT);
  t.is(drops(env.dp, DropReason.CT_FULL), 1n);
  t.is(drops(env.dp, DropReason.SNAT_EXHAUSTED), 0n);
  t.is(env.dp.countEntries()!.ct4, CAPACITY);
});
