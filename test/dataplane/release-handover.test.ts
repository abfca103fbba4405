// A stopping agent leaves its flows in ct4_v2's layout as well (the downgrade snapshot), for the
// previous release to adopt as its own conntrack: the same keys, each value ct4_v4's first 40
// bytes with the flags ct4_v2 had (CLOSING for a flow that saw FIN or RST, no REPLY), live flows
// only, in a map libbpf reuses for that release's ct4_v2 (LRU hash, same size).
// test/lab-agent/upgrade.test.ts plays the whole handover under traffic.
import { join } from 'node:path';

import { CtDir, CtFlags, CtState, IPPROTO, ct4Key, ct4Value, ct4ValueV2Size, type Ct4Key, type Ct4Value } from '../../ts/abi/index.js';
import { native } from '../../ts/addon/index.js';
import { monotonicNs } from '../../ts/abi/clock.js';
import { writeDowngradeSnapshot } from '../../ts/dataplane/release-handover.js';
import { NET, rootTest, setup } from '../datapath/_fixture.js';

const key = (sport: number, dir: number): Ct4Key => ({ saddr: NET.pod1a, daddr: NET.clusterIp, sport, dport: 80, proto: IPPROTO.TCP, dir, pad: 0 });

rootTest('the downgrade snapshot: ct4_v2 entries of the live flows, CLOSING where the flow saw FIN or RST, no REPLY flag', async (t) => {
  const env = await setup(t);
  const now = monotonicNs();
  const live = now + 3_600_000_000_000n;
  const base: Ct4Value = { nat_saddr: NET.pod1a, nat_daddr: NET.pod2a, nat_sport: 40000, nat_dport: 8080, backend_id: 1, svc_id: 1, flags: CtFlags.SNAT, tcp_seen: 0x10, pad: 0, expires_ns: live, be_gen: 5, pad2: 0, state: 0n };
  const entries: [Ct4Key, Ct4Value][] = [
    [key(40000, CtDir.FWD), { ...base, state: BigInt(CtState.REPLIED) }],
    [key(40000, CtDir.REPLY), { ...base, flags: CtFlags.SNAT | CtFlags.REPLY, state: BigInt(CtState.REPLIED) }],
    [key(40001, CtDir.FWD), { ...base, state: BigInt(CtState.REPLIED | CtState.FIN_REPLY) }],
    [key(40002, CtDir.FWD), { ...base, expires_ns: now - 1n, state: BigInt(CtState.REPLIED) }],
  ];
  for (const [k, v] of entries) env.dp.maps.ct4.set(k, v);

  t.is(writeDowngradeSnapshot(env.dp.pinDir, env.dp.maps), 3, 'the expired flow is left out');
  const snap = native.BpfMap.fromPin(join(env.dp.pinDir, 'ct4_v2'));
  t.teardown(() => snap.close());
  t.like(snap.info, { type: 'lru_hash', keySize: ct4Key.size, valueSize: ct4ValueV2Size, maxEntries: env.dp.maps.ct4.raw.info.maxEntries, flags: 0 });
  const v2Of = (k: Ct4Key) => {
    const raw = snap.lookup(ct4Key.encode(k));
    return raw && ct4Value.decode(Buffer.concat([raw, Buffer.alloc(ct4Value.size - ct4ValueV2Size)]));
  };
  const prefix = (v: Ct4Value, flags: number): Ct4Value => ({ ...v, flags, state: 0n });
  t.deepEqual(v2Of(entries[0]![0]), prefix(entries[0]![1], CtFlags.SNAT));
  t.deepEqual(v2Of(entries[1]![0]), prefix(entries[1]![1], CtFlags.SNAT), 'ct4_v2 had no REPLY flag');
  t.deepEqual(v2Of(entries[2]![0]), prefix(entries[2]![1], CtFlags.SNAT | CtFlags.CLOSING_V2), 'a closing flow is CLOSING in ct4_v2');
  t.is(v2Of(entries[3]![0]), null);

  // A second stop replaces it (the pin is ours: ct4_v4 was live while we ran).
  env.dp.maps.ct4.delete(entries[2]![0]);
  t.is(writeDowngradeSnapshot(env.dp.pinDir, env.dp.maps), 2);
});
