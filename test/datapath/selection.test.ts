/**
 * Which backend a new flow gets: uniform spread, internalTrafficPolicy Local, ClientIP session
 * affinity and its timeout, terminating backends (never for new flows, kept by established ones),
 * vanished backends.
 */
import { DropReason, IPPROTO, SvcFlags } from '../../ts/abi/index.js';
import { bumpBackendGeneration } from '../../ts/dataplane/backend-generation.js';
import { parsePacket } from '../../ts/packet/index.js';
import { NET, TC, drops, expectPacket, rootTest, setup, spread, writeBackend, writeService } from './_fixture.js';
import { rewrite, tcp, udp } from './_packets.js';

const pods = [NET.pod1a, NET.pod1b, NET.pod2a, NET.pod2b];

rootTest('random pick spreads new flows over every backend', async (t) => {
  const env = await setup(t);
  pods.slice(0, 3).forEach((addr, i) => writeBackend(env.dp, { id: i + 1, addr, port: 8080 }));
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1, 2, 3] });
  const seen = spread(env, 'tcPodIngress', (p) => tcp(NET.pod1a, p, NET.clusterIp, 80), 600);
  const counts = new Map<string, number>();
  for (const s of seen) counts.set(s, (counts.get(s) ?? 0) + 1);
  t.deepEqual([...counts.keys()].sort(), pods.slice(0, 3).sort());
  // Binomial(600, 1/3): mean 200, sd 11.5; 140..260 is over 5 sd either way.
  for (const [addr, n] of counts) t.true(n > 140 && n < 260, `${addr}: ${n} of 600`);
});

rootTest('ITP Local: ClusterIP traffic only to endpoints of this node; none here: dropped; none anywhere: rejected', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeBackend(env.dp, { id: 2, addr: NET.pod1b, port: 8080, local: true });
  // As the control plane writes it: a ClusterIP under ITP Local has local slots only.
  for (const backends of [[1, 2], []]) {
    writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, flags: SvcFlags.ITP_LOCAL, backends, localBackends: [2] });
    const seen = spread(env, 'tcPodIngress', (p) => tcp(NET.pod1a, p, NET.clusterIp, 80), 30, 20000 + 100 * backends.length);
    t.deepEqual([...new Set(seen)], [NET.pod1b], `scope ALL slots: ${JSON.stringify(backends)}`);
  }

  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, flags: SvcFlags.ITP_LOCAL, backends: [], localBackends: [] });
  const r = env.send('tcPodIngress', tcp(NET.pod1a, 41000, NET.clusterIp, 80));
  t.is(r.verdict, TC.SHOT);
  t.is(drops(env.dp, DropReason.NO_LOCAL_ENDPOINTS), 1n);

  // No endpoint anywhere: the control plane asks for a reject, which wins over the policy.
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, flags: SvcFlags.ITP_LOCAL | SvcFlags.REJECT, backends: [], localBackends: [] });
  const syn = tcp(NET.pod1a, 41001, NET.clusterIp, 80);
  const rej = env.send('tcPodIngress', syn);
  t.is(rej.verdict, TC.REDIRECT);
  t.deepEqual(parsePacket(rej.out).tcp?.flagNames.sort(), ['ACK', 'RST']);
  t.is(drops(env.dp, DropReason.NO_ENDPOINTS), 1n);
  t.is(drops(env.dp, DropReason.NO_LOCAL_ENDPOINTS), 1n);
});

rootTest('session affinity: one backend per client until the timeout, then a fresh pick', async (t) => {
  const env = await setup(t);
  pods.forEach((addr, i) => writeBackend(env.dp, { id: i + 1, addr, port: 8080 }));
  writeService(env.dp, { svcId: 5, addr: NET.clusterIp, port: 80, flags: SvcFlags.AFFINITY, affinityTimeout: 5, backends: [1, 2, 3, 4] });

  const a = spread(env, 'tcPodIngress', (p) => tcp(NET.pod1a, p, NET.clusterIp, 80), 20);
  t.is(new Set(a).size, 1, 'every connection of a client to the same backend');
  const entry = env.dp.maps.aff4.get({ client: NET.pod1a, svc_id: 5 });
  t.is(pods[entry!.backend_id - 1], a[0] as (typeof pods)[number] | undefined);
  // Just inside the timeout, the entry still holds.
  env.dp.maps.aff4.set({ client: NET.pod1a, svc_id: 5 }, { backend_id: entry!.backend_id, pad: 0, last_seen_ns: process.hrtime.bigint() - 4_000_000_000n });
  t.deepEqual(spread(env, 'tcPodIngress', (p) => tcp(NET.pod1a, p, NET.clusterIp, 80), 10, 21000), Array(10).fill(a[0]));

  // Once the entry is older than the timeout, the client is picked for afresh. Aging it by hand
  // (last seen 6 s ago, the timeout is 5 s); over 20 aged picks of 4 backends, more than one shows.
  const picks = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const aged = process.hrtime.bigint() - 6_000_000_000n; // CLOCK_MONOTONIC, as bpf_ktime_get_ns
    env.dp.maps.aff4.set({ client: NET.pod1a, svc_id: 5 }, { backend_id: entry!.backend_id, pad: 0, last_seen_ns: aged });
    const { out } = env.send('tcPodIngress', tcp(NET.pod1a, 30000 + i, NET.clusterIp, 80));
    picks.add(parsePacket(out).ip!.dst);
    const now = process.hrtime.bigint();
    const fresh = env.dp.maps.aff4.get({ client: NET.pod1a, svc_id: 5 })!;
    t.true(fresh.last_seen_ns > now - 10_000_000_000n && fresh.last_seen_ns <= now, 'last_seen refreshed to now');
  }
  t.true(picks.size > 1, `after the timeout: ${[...picks].join(', ')}`);
});

rootTest('terminating backends: never for new flows, kept by established ones', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80);
  expectPacket(t, env.send('tcPodIngress', syn).out, rewrite(syn, { dst: NET.pod2a, dport: 8080 }));

  // Backend 1 starts terminating while the control plane has not yet rewritten the slots.
  writeBackend(env.dp, { id: 2, addr: NET.pod2b, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1, 2] });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080, terminating: true });

  const ack = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['ACK'], { seq: 1001, ack: 1 });
  expectPacket(t, env.send('tcPodIngress', ack).out, rewrite(ack, { dst: NET.pod2a, dport: 8080 }), 'established flow stays');
  const seen = spread(env, 'tcPodIngress', (p) => tcp(NET.pod1a, p, NET.clusterIp, 80), 50);
  t.deepEqual([...new Set(seen)], [NET.pod2b], 'new flows avoid the terminating backend');

  // Only terminating endpoints, on purpose (kube-proxy's fallback): then they serve.
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, flags: SvcFlags.TERM_FALLBACK, backends: [1] });
  const last = tcp(NET.pod1a, 45000, NET.clusterIp, 80);
  expectPacket(t, env.send('tcPodIngress', last).out, rewrite(last, { dst: NET.pod2a, dport: 8080 }));
  // Without the fallback flag, a slot list of terminating backends only is a drop, not a pick.
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  t.is(env.send('tcPodIngress', tcp(NET.pod1a, 45001, NET.clusterIp, 80)).verdict, TC.SHOT);
  t.is(drops(env.dp, DropReason.NO_ELIGIBLE_BACKEND), 1n);
});

rootTest('a vanished backend: UDP flows pick again, TCP flows are reset', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 5353, proto: IPPROTO.UDP });
  writeBackend(env.dp, { id: 3, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [1] });
  writeService(env.dp, { svcId: 2, addr: NET.clusterIp, port: 80, backends: [3] });
  const q = udp(NET.pod1a, 33333, NET.clusterIp, 53);
  expectPacket(t, env.send('tcPodIngress', q).out, rewrite(q, { dst: NET.pod2a, dport: 5353 }));
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN'], { seq: 5000 });
  env.send('tcPodIngress', syn);

  // The endpoints move: new backends, the old ones deleted (slots first, then backends), then the
  // backend generation bumped (established flows check their backend again).
  writeBackend(env.dp, { id: 2, addr: NET.pod2b, port: 5353, proto: IPPROTO.UDP });
  writeBackend(env.dp, { id: 4, addr: NET.pod2b, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [2] });
  writeService(env.dp, { svcId: 2, addr: NET.clusterIp, port: 80, backends: [4] });
  env.dp.maps.backends.delete(1);
  env.dp.maps.backends.delete(3);
  bumpBackendGeneration(env.dp);

  expectPacket(t, env.send('tcPodIngress', q).out, rewrite(q, { dst: NET.pod2b, dport: 5353 }), 'no stale UDP flow');
  const ack = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['ACK'], { seq: 5001, ack: 77 });
  const r = env.send('tcPodIngress', ack);
  t.is(r.verdict, TC.REDIRECT, 'the RST goes back to the pod');
  expectPacket(t, r.out, {
    eth: { src: '02:00:00:00:01:02', dst: '02:00:00:00:01:01' },
    ip: { src: NET.clusterIp, dst: NET.pod1a, ttl: 64 },
    tcp: { sport: 80, dport: 40000, seq: 77, ack: 0, flags: ['RST'], window: 0 },
  });
  t.is(drops(env.dp, DropReason.BACKEND_MISSING), 1n);
});
