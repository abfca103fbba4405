/**
 * The backend generation (begen_v1): an established packet skips the be_v1 lookup while the
 * generation its conntrack entry remembers is current; after a bump it checks its backend once
 * (exists, same address) and either carries on (learning the new generation) or takes the
 * "backend gone" path: TCP reset, UDP re-picked. A deletion without a bump goes unnoticed by
 * established flows until the bump (the control plane bumps right after its deletions).
 */
import { CtDir, DropReason, IPPROTO, type Ct4Key } from '../../ts/abi/index.js';
import { backendGeneration, bumpBackendGeneration } from '../../ts/dataplane/backend-generation.js';
import { NET, TC, drops, expectPacket, rootTest, setup, writeBackend, writeService, type Env } from './_fixture.js';
import { rewrite, tcp, udp } from './_packets.js';

const fwdKey = (sport: number, dport: number, proto: number = IPPROTO.TCP): Ct4Key =>
  ({ saddr: NET.pod1a, daddr: NET.clusterIp, sport, dport, proto, dir: CtDir.FWD, pad: 0 });

/** The RST the datapath answers a segment of a flow whose backend is gone with (see selection.test.ts). */
function expectReset(t: Parameters<typeof expectPacket>[0], env: Env, sport: number, ack: number) {
  const r = env.send('tcPodIngress', tcp(NET.pod1a, sport, NET.clusterIp, 80, ['ACK'], { seq: 5001, ack }));
  t.is(r.verdict, TC.REDIRECT, 'the RST goes back to the pod');
  expectPacket(t, r.out, {
    eth: { src: '02:00:00:00:01:02', dst: '02:00:00:00:01:01' },
    ip: { src: NET.clusterIp, dst: NET.pod1a, ttl: 64 },
    tcp: { sport: 80, dport: sport, seq: ack, ack: 0, flags: ['RST'], window: 0 },
  });
}

/** A TCP flow to the ClusterIP through backend 1 (pod2a), and a UDP one through backend 2. */
async function established(t: Parameters<typeof setup>[0]) {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeBackend(env.dp, { id: 2, addr: NET.pod2a, port: 5353, proto: IPPROTO.UDP });
  writeBackend(env.dp, { id: 3, addr: NET.pod2b, port: 5353, proto: IPPROTO.UDP });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  writeService(env.dp, { svcId: 2, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [2] });
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN'], { seq: 5000 });
  expectPacket(t, env.send('tcPodIngress', syn).out, rewrite(syn, { dst: NET.pod2a, dport: 8080 }));
  const q = udp(NET.pod1a, 33333, NET.clusterIp, 53);
  expectPacket(t, env.send('tcPodIngress', q).out, rewrite(q, { dst: NET.pod2a, dport: 5353 }));
  // The UDP service moves to backend 3 (slots rewritten); backend 2 stays in be_v1 for now.
  writeService(env.dp, { svcId: 2, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [3] });
  return { env, q };
}

rootTest('new flows record the generation read before their pick, in both entries', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  t.is(backendGeneration(env.dp), 0, 'a fresh begen_v1 holds 0');
  env.dp.maps.begen.set(0, { generation: 41 });
  t.is(bumpBackendGeneration(env.dp), 42);
  env.send('tcPodIngress', tcp(NET.pod1a, 40000, NET.clusterIp, 80));
  t.like(env.dp.maps.ct4.get(fwdKey(40000, 80)), { backend_id: 1, nat_daddr: NET.pod2a, be_gen: 42 });
  t.like(env.dp.maps.ct4.get({ saddr: NET.pod2a, daddr: NET.pod1a, sport: 8080, dport: 40000, proto: IPPROTO.TCP, dir: CtDir.REPLY, pad: 0 }),
    { backend_id: 1, be_gen: 42 });
  env.dp.maps.begen.set(0, { generation: 0xffffffff });
  t.is(bumpBackendGeneration(env.dp), 0, 'the generation wraps');
});

rootTest('a backend deleted WITH a bump: TCP flows are reset, UDP flows pick again', async (t) => {
  const { env, q } = await established(t);
  env.dp.maps.backends.delete(1);
  env.dp.maps.backends.delete(2);
  bumpBackendGeneration(env.dp);
  expectPacket(t, env.send('tcPodIngress', q).out, rewrite(q, { dst: NET.pod2b, dport: 5353 }), 'UDP picks again');
  t.like(env.dp.maps.ct4.get(fwdKey(33333, 53, IPPROTO.UDP)), { backend_id: 3, be_gen: 1 });
  expectReset(t, env, 40000, 77);
  t.is(drops(env.dp, DropReason.BACKEND_MISSING), 1n);
});

rootTest('a backend deleted WITHOUT a bump: established flows keep going until the bump (the window)', async (t) => {
  const { env, q } = await established(t);
  env.dp.maps.backends.delete(1);
  env.dp.maps.backends.delete(2);
  const ack = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['ACK'], { seq: 5001, ack: 77 });
  const r = env.send('tcPodIngress', ack);
  t.is(r.verdict, TC.OK);
  expectPacket(t, r.out, rewrite(ack, { dst: NET.pod2a, dport: 8080 }), 'TCP still to the deleted backend');
  expectPacket(t, env.send('tcPodIngress', q).out, rewrite(q, { dst: NET.pod2a, dport: 5353 }), 'UDP still to the deleted backend');
  t.is(drops(env.dp, DropReason.BACKEND_MISSING), 0n);
  // The bump closes the window.
  bumpBackendGeneration(env.dp);
  expectPacket(t, env.send('tcPodIngress', q).out, rewrite(q, { dst: NET.pod2b, dport: 5353 }), 'UDP picks again after the bump');
  expectReset(t, env, 40000, 77);
});

rootTest('a backend id reused for another address (overwritten + bump): the flow is reset', async (t) => {
  const { env, q } = await established(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod1b, port: 8080 }); // same id, another endpoint
  writeBackend(env.dp, { id: 2, addr: NET.pod2b, port: 5353, proto: IPPROTO.UDP });
  bumpBackendGeneration(env.dp);
  expectReset(t, env, 40000, 77);
  t.is(drops(env.dp, DropReason.BACKEND_MISSING), 1n);
  // UDP: the flow picks again (the service's slot names backend 3 now).
  expectPacket(t, env.send('tcPodIngress', q).out, rewrite(q, { dst: NET.pod2b, dport: 5353 }), 'UDP picks again');
  t.like(env.dp.maps.ct4.get(fwdKey(33333, 53, IPPROTO.UDP)), { backend_id: 3 });
});

rootTest('after a bump, a flow whose backend still exists continues and learns the generation', async (t) => {
  const { env, q } = await established(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080, terminating: true }); // overwritten, same endpoint
  env.dp.maps.backends.delete(3); // some other backend goes
  bumpBackendGeneration(env.dp);
  bumpBackendGeneration(env.dp);
  t.like(env.dp.maps.ct4.get(fwdKey(40000, 80)), { be_gen: 0 });
  const ack = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['ACK'], { seq: 5001, ack: 77 });
  const r = env.send('tcPodIngress', ack);
  t.is(r.verdict, TC.OK);
  expectPacket(t, r.out, rewrite(ack, { dst: NET.pod2a, dport: 8080 }));
  t.like(env.dp.maps.ct4.get(fwdKey(40000, 80)), { backend_id: 1, be_gen: 2 });
  expectPacket(t, env.send('tcPodIngress', q).out, rewrite(q, { dst: NET.pod2a, dport: 5353 }), 'UDP keeps backend 2');
  t.like(env.dp.maps.ct4.get(fwdKey(33333, 53, IPPROTO.UDP)), { backend_id: 2, be_gen: 2 });
  // The entry now skips the lookup: deleting backend 1 without a bump goes unnoticed.
  env.dp.maps.backends.delete(1);
  t.is(env.send('tcPodIngress', ack).verdict, TC.OK);
  t.is(drops(env.dp, DropReason.BACKEND_MISSING), 0n);
});
