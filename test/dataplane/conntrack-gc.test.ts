// Conntrack garbage collection: flows made by real packets (BPF_PROG_TEST_RUN) with short
// lifetimes, then collected; both directions of an expired flow go, the SNAT reservation with
// them, live flows stay.
import test from 'ava';

import { CtDir, CtFlags, IPPROTO, SvcKind, ct4Key, ct4Value, type Ct4Key, type Ct4Value } from '../../ts/abi/index.js';
import type { BpfMapNative } from '../../ts/addon/index.js';
import { monotonicNs } from '../../ts/abi/clock.js';
import { collectConntrack, partnerKey } from '../../ts/dataplane/conntrack-gc.js';
import { NET, rootTest, setup, writeBackend, writeService } from '../datapath/_fixture.js';
import { fromPeer, tcp, udp } from '../datapath/_packets.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function flows(entries: [Ct4Key, Ct4Value][]): string[] {
  return entries
    .map(([k, v]) => `${k.dir === CtDir.FWD ? 'fwd' : 'rep'} ${k.saddr}:${k.sport}→${k.daddr}:${k.dport}/${k.proto}${v.flags & CtFlags.SNAT ? ' snat' : ''}`)
    .sort();
}

rootTest('expired flows are deleted in both directions with their SNAT port; live flows stay', async (t) => {
  const env = await setup(t, { ctTcpSynSeconds: 1, ctUdpSeconds: 60 });
  const dp = env.dp;
  writeBackend(dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeBackend(dp, { id: 2, addr: NET.pod2b, port: 5353, proto: IPPROTO.UDP });
  writeService(dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  writeService(dp, { svcId: 2, addr: NET.lbIp, port: 80, kind: SvcKind.LOAD_BALANCER, backends: [1] });
  writeService(dp, { svcId: 3, addr: NET.clusterIp2, port: 53, proto: IPPROTO.UDP, backends: [2] });

  env.send('tcPodIngress', tcp(NET.pod1a, 40000, NET.clusterIp, 80)); // pod → ClusterIP: no SNAT
  env.send('tcUplinkIngress', tcp(NET.client, 40001, NET.lbIp, 80, ['SYN'], { eth: fromPeer })); // outside → LB, remote backend: SNAT
  env.send('tcPodIngress', udp(NET.pod1a, 5000, NET.clusterIp2, 53)); // lives 60 s
  const before = dp.maps.ct4.entries();
  t.is(before.length, 6);
  t.is(flows(before).filter((f) => f.endsWith('snat')).length, 2, 'the masqueraded flow carries CT_F_SNAT in both entries');

  const early = collectConntrack(dp.maps.ct4.raw);
  t.like(early, { scanned: 6, live: 6, deleted: 0 });

  await sleep(1300);
  const r = collectConntrack(dp.maps.ct4.raw);
  t.like(r, { scanned: 6, live: 2, deleted: 4, flows: 2, snatReleased: 1, raced: 0 });
  t.deepEqual(flows(dp.maps.ct4.entries()), [
    `fwd ${NET.pod1a}:5000→${NET.clusterIp2}:53/17`,
    `rep ${NET.pod2b}:5353→${NET.pod1a}:5000/17`,
  ]);

  // Every remaining entry's partner is there: no flow was cut in half.
  for (const [k, v] of dp.maps.ct4.entries()) t.truthy(dp.maps.ct4.get(partnerKey(k, v)));
});

/** A ct4 map in memory, for the race rule: an entry that changed since the dump is kept. */
function fakeCt(entries: [Ct4Key, Ct4Value][], onLookup: (key: Buffer) => void = () => {}): BpfMapNative & { store: Map<string, Buffer> } {
  const store = new Map(entries.map(([k, v]) => [ct4Key.encode(k).toString('hex'), ct4Value.encode(v)]));
  return {
    store,
    dump: () => ({
      keys: Buffer.concat([...store.keys()].map((k) => Buffer.from(k, 'hex'))),
      values: Buffer.concat([...store.values()]),
      count: store.size,
    }),
    lookup: (key: Buffer) => {
      onLookup(key);
      return store.get(key.toString('hex')) ?? null;
    },
    delete: (key: Buffer) => store.delete(key.toString('hex')),
  } as unknown as BpfMapNative & { store: Map<string, Buffer> };
}

test('an expired entry replaced between the scan and the delete (a new flow) is kept', (t) => {
  const now = monotonicNs();
  const key: Ct4Key = { saddr: NET.pod1a, daddr: NET.clusterIp, sport: 40000, dport: 80, proto: IPPROTO.UDP, dir: CtDir.FWD, pad: 0 };
  const old: Ct4Value = { nat_saddr: NET.pod1a, nat_daddr: NET.pod2a, nat_sport: 40000, nat_dport: 8080, backend_id: 1, svc_id: 1, flags: 0, tcp_seen: 0, pad: 0, expires_ns: now - 1n, be_gen: 0, pad2: 0, state: 0n };
  const other: Ct4Key = { ...key, sport: 40001 };
  const map = fakeCt([[key, old], [other, { ...old, nat_sport: 40001 }]], (k) => {
    // The datapath makes a new flow with the first tuple just as the collector looks again.
    if (k.equals(ct4Key.encode(key))) map.store.set(k.toString('hex'), ct4Value.encode({ ...old, expires_ns: now + 60_000_000_000n }));
  });
  const r = collectConntrack(map, { now });
  t.like(r, { scanned: 2, deleted: 1, raced: 1 });
  t.true(map.store.has(ct4Key.encode(key).toString('hex')), 'the new flow survives');
  t.false(map.store.has(ct4Key.encode(other).toString('hex')));
});

rootTest('under pressure (reclaimClosed), closed flows go before their deadline, both entries; established and half-closed ones stay', async (t) => {
  const env = await setup(t);
  const dp = env.dp;
  writeBackend(dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  // Four flows through real packets: established, TIME_WAIT, CLOSE (RST), CLOSE_WAIT (one FIN).
  const open = (sport: number) => {
    env.send('tcPodIngress', tcp(NET.pod1a, sport, NET.clusterIp, 80, ['SYN'], { seq: 1000 }));
    env.send('tcPodEgress', tcp(NET.pod2a, 8080, NET.pod1a, sport, ['SYN', 'ACK'], { seq: 5000, ack: 1001 }));
  };
  for (const sport of [40000, 40001, 40002, 40003]) open(sport);
  env.send('tcPodIngress', tcp(NET.pod1a, 40001, NET.clusterIp, 80, ['FIN', 'ACK'], { seq: 1001, ack: 5001 }));
  env.send('tcPodEgress', tcp(NET.pod2a, 8080, NET.pod1a, 40001, ['FIN', 'ACK'], { seq: 5001, ack: 1002 }));
  env.send('tcPodIngress', tcp(NET.pod1a, 40002, NET.clusterIp, 80, ['RST'], { seq: 1001 }));
  env.send('tcPodIngress', tcp(NET.pod1a, 40003, NET.clusterIp, 80, ['FIN', 'ACK'], { seq: 1001, ack: 5001 }));
  t.is(dp.maps.ct4.entries().length, 8);

  t.like(collectConntrack(dp.maps.ct4.raw), { deleted: 0, live: 8 }, 'not under pressure: nothing has expired');
  const r = collectConntrack(dp.maps.ct4.raw, { reclaimClosed: true });
  t.like(r, { scanned: 8, live: 4, deleted: 4, closed: 4, flows: 2, raced: 0 });
  t.deepEqual(flows(dp.maps.ct4.entries()).filter((f) => f.startsWith('fwd')), [
    `fwd ${NET.pod1a}:40000→${NET.clusterIp}:80/6`,
    `fwd ${NET.pod1a}:40003→${NET.clusterIp}:80/6`,
  ]);
  for (const [k, v] of dp.maps.ct4.entries()) t.truthy(dp.maps.ct4.get(partnerKey(k, v)));
});
