/**
 * Conntrack follows netfilter's state table, flow-wide (bpf/lib/conntrack.h): SYN_SENT until the
 * backend answers, ESTABLISHED, CLOSE_WAIT after one FIN, TIME_WAIT after both, CLOSE after an RST
 * from either side; UDP unreplied, then stream. Both entries of a flow carry the same state and
 * deadline at every step. A flow that is over (TIME_WAIT, CLOSE, expired) gives up its SNAT port at
 * once; entries are created with BPF_NOEXIST and never overwrite a live flow's.
 */
import type { ExecutionContext } from 'ava';

import { CtDir, CtState, DropReason, IPPROTO, SvcFlags, SvcKind, ctStateName, type Ct4Key } from '../../ts/abi/index.js';
import { parsePacket } from '../../ts/packet/index.js';
import { NET, TC, drops, expectPacket, rootTest, setup, writeBackend, writeService, type Env } from './_fixture.js';
import { fromPeer, rewrite, tcp, udp } from './_packets.js';

/** netfilter's lifetimes, as bpf/lib/config.h defaults them (kube-proxy's for established/CLOSE_WAIT). */
const SYN_SENT = 120;
const ESTABLISHED = 86400;
const CLOSE_WAIT = 3600;
const TIME_WAIT = 120;
const CLOSE = 10;
const UDP_UNREPLIED = 30;
const UDP_STREAM = 120;

const key = (saddr: string, sport: number, daddr: string, dport: number, dir: number, proto: number = IPPROTO.TCP): Ct4Key =>
  ({ saddr, daddr, sport, dport, proto, dir, pad: 0 });

/** Both entries of a flow: same state, same deadline (within a tick), the lifetime wanted. */
function expectFlow(t: ExecutionContext, env: Env, fwd: Ct4Key, reply: Ct4Key, want: { state: string; seconds: number }, what: string) {
  const f = env.dp.maps.ct4.get(fwd);
  const r = env.dp.maps.ct4.get(reply);
  if (!f || !r) return t.fail(`${what}: entries missing (forward ${!!f}, reply ${!!r})`);
  const now = process.hrtime.bigint();
  const left = (ns: bigint) => Number(ns - now) / 1e9;
  t.is(ctStateName(fwd.proto, f.state), want.state, `${what}: forward entry state`);
  t.is(f.state, r.state, `${what}: the reply entry has the flow's state`);
  t.true(Math.abs(left(f.expires_ns) - want.seconds) < 3, `${what}: forward entry lives ${left(f.expires_ns).toFixed(1)} s, want ${want.seconds} s`);
  t.true(Math.abs(left(r.expires_ns) - want.seconds) < 3, `${what}: reply entry lives ${left(r.expires_ns).toFixed(1)} s, want ${want.seconds} s`);
}

async function clusterIpFlow(t: ExecutionContext) {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  const fwd = key(NET.pod1a, 40000, NET.clusterIp, 80, CtDir.FWD);
  const reply = key(NET.pod2a, 8080, NET.pod1a, 40000, CtDir.REPLY);
  const client = (flags: Parameters<typeof tcp>[4], seq = 1001) => {
    const p = tcp(NET.pod1a, 40000, NET.clusterIp, 80, flags, { seq, ack: 5001 });
    expectPacket(t, env.send('tcPodIngress', p).out, rewrite(p, { dst: NET.pod2a, dport: 8080 }), `client ${flags!.join('+')}`);
  };
  const backend = (flags: Parameters<typeof tcp>[4], seq = 5001) => {
    const p = tcp(NET.pod2a, 8080, NET.pod1a, 40000, flags, { seq, ack: 1001 });
    expectPacket(t, env.send('tcPodEgress', p).out, rewrite(p, { src: NET.clusterIp, sport: 80 }), `backend ${flags!.join('+')}`);
  };
  const open = () => {
    client(['SYN'], 1000);
    backend(['SYN', 'ACK'], 5000);
    client(['ACK']);
  };
  return { env, fwd, reply, client, backend, open };
}

rootTest('TCP: SYN_SENT until the backend answers, ESTABLISHED, CLOSE_WAIT after one FIN, TIME_WAIT after both: both entries alike', async (t) => {
  const { env, fwd, reply, client, backend } = await clusterIpFlow(t);
  client(['SYN'], 1000);
  expectFlow(t, env, fwd, reply, { state: 'SYN_SENT', seconds: SYN_SENT }, 'after the SYN');
  client(['SYN'], 1000); // a retransmission answers nothing
  expectFlow(t, env, fwd, reply, { state: 'SYN_SENT', seconds: SYN_SENT }, 'after a retransmitted SYN');
  backend(['SYN', 'ACK'], 5000);
  expectFlow(t, env, fwd, reply, { state: 'ESTABLISHED', seconds: ESTABLISHED }, 'after the SYN-ACK');
  client(['ACK']);
  expectFlow(t, env, fwd, reply, { state: 'ESTABLISHED', seconds: ESTABLISHED }, 'after the ACK');
  client(['FIN', 'ACK']);
  expectFlow(t, env, fwd, reply, { state: 'CLOSE_WAIT', seconds: CLOSE_WAIT }, 'after the client\'s FIN');
  backend(['ACK']);
  expectFlow(t, env, fwd, reply, { state: 'CLOSE_WAIT', seconds: CLOSE_WAIT }, 'half-closed: the backend still sends');
  backend(['FIN', 'ACK']);
  expectFlow(t, env, fwd, reply, { state: 'TIME_WAIT', seconds: TIME_WAIT }, 'after FINs both ways');
  client(['ACK'], 1002);
  expectFlow(t, env, fwd, reply, { state: 'TIME_WAIT', seconds: TIME_WAIT }, 'after the last ACK');
});

rootTest('TCP: the backend closes first: CLOSE_WAIT, then TIME_WAIT on the client\'s FIN', async (t) => {
  const { env, fwd, reply, client, backend, open } = await clusterIpFlow(t);
  open();
  backend(['FIN', 'ACK']);
  expectFlow(t, env, fwd, reply, { state: 'CLOSE_WAIT', seconds: CLOSE_WAIT }, 'after the backend\'s FIN');
  client(['FIN', 'ACK']);
  expectFlow(t, env, fwd, reply, { state: 'TIME_WAIT', seconds: TIME_WAIT }, 'after FINs both ways');
});

for (const who of ['client', 'backend'] as const) {
  rootTest(`TCP: an RST from the ${who} gives both entries 10 s (CLOSE), whatever comes after`, async (t) => {
    const { env, fwd, reply, client, backend, open } = await clusterIpFlow(t);
    open();
    (who === 'client' ? client : backend)(['RST']);
    expectFlow(t, env, fwd, reply, { state: 'CLOSE', seconds: CLOSE }, `after the ${who}'s RST`);
    // A stray segment of the other side does not bring the flow back.
    (who === 'client' ? backend : client)(['ACK']);
    expectFlow(t, env, fwd, reply, { state: 'CLOSE', seconds: CLOSE }, 'after a stray ACK');
  });
}

rootTest('TCP: a lone mid-stream ACK picked by Maglev is SYN_SENT (120 s) until the backend answers', async (t) => {
  const env = await setup(t, { maglevM: 251 });
  writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8080, local: true });
  writeService(env.dp, { svcId: 40, addr: NET.lbIp, port: 80, kind: SvcKind.LOAD_BALANCER, flags: SvcFlags.MAGLEV, backends: [1] });
  env.dp.setMaglevTable(40, Array.from({ length: 251 }, () => 1));
  const fwd = key(NET.client, 41234, NET.lbIp, 80, CtDir.FWD);
  const reply = key(NET.pod1a, 8080, NET.client, 41234, CtDir.REPLY);
  const ack = tcp(NET.client, 41234, NET.lbIp, 80, ['ACK'], { seq: 5, ack: 9, eth: fromPeer });
  expectPacket(t, env.send('tcUplinkIngress', ack).out, rewrite(ack, { dst: NET.pod1a, dport: 8080 }), 'the ACK goes to the Maglev pick');
  expectFlow(t, env, fwd, reply, { state: 'SYN_SENT', seconds: SYN_SENT }, 'after the lone ACK');
  const answer = tcp(NET.pod1a, 8080, NET.client, 41234, ['ACK'], { seq: 9, ack: 5 });
  expectPacket(t, env.send('tcPodIngress', answer).out, rewrite(answer, { src: NET.lbIp, sport: 80 }), 'the backend answers');
  expectFlow(t, env, fwd, reply, { state: 'ESTABLISHED', seconds: ESTABLISHED }, 'after the answer');
});

rootTest('UDP: 30 s unreplied, the stream lifetime once answered; the agent\'s lifetimes apply', async (t) => {
  for (const [config, unreplied, stream] of [[{}, UDP_UNREPLIED, UDP_STREAM], [{ ctUdpSeconds: 45, ctUdpStreamSeconds: 300 }, 45, 300]] as const) {
    const env = await setup(t, config);
    writeBackend(env.dp, { id: 2, addr: NET.pod2a, port: 53, proto: IPPROTO.UDP });
    writeService(env.dp, { svcId: 2, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [2] });
    const fwd = key(NET.pod1a, 40000, NET.clusterIp, 53, CtDir.FWD, IPPROTO.UDP);
    const reply = key(NET.pod2a, 53, NET.pod1a, 40000, CtDir.REPLY, IPPROTO.UDP);
    const q = udp(NET.pod1a, 40000, NET.clusterIp, 53, 'query');
    expectPacket(t, env.send('tcPodIngress', q).out, rewrite(q, { dst: NET.pod2a }), 'query');
    expectFlow(t, env, fwd, reply, { state: 'UNREPLIED', seconds: unreplied }, 'after the query');
    const a = udp(NET.pod2a, 53, NET.pod1a, 40000, 'answer');
    expectPacket(t, env.send('tcPodEgress', a).out, rewrite(a, { src: NET.clusterIp }), 'answer');
    expectFlow(t, env, fwd, reply, { state: 'REPLIED', seconds: stream }, 'after the answer');
  }
});

/** A NodePort flow of `client` SNATed to node1 with the one SNAT port 61000, to pod2a (remote). */
function nodePort(env: Env) {
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 10, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1] });
  const masq = { src: NET.node1, sport: 61000, dst: NET.pod2a, dport: 8080 };
  const fromClient = (client: string, flags: Parameters<typeof tcp>[4], seq = 1001) => tcp(client, 50000, NET.node1, 30080, flags, { seq, ack: 5001, eth: fromPeer });
  const fromBackend = (flags: Parameters<typeof tcp>[4], seq = 5001) => tcp(NET.pod2a, 8080, NET.node1, 61000, flags, { seq, ack: 1001, eth: fromPeer });
  return { masq, fromClient, fromBackend };
}

for (const close of ['FINs both ways', 'client RST', 'backend RST'] as const) {
  rootTest(`SNAT port takeover: a flow closed by ${close} gives its port to the next flow at once`, async (t) => {
    const env = await setup(t, { snatPortMin: 61000, snatPortMax: 61000 });
    const { masq, fromClient, fromBackend } = nodePort(env);
    const syn = fromClient(NET.client, ['SYN'], 1000);
    expectPacket(t, env.send('tcUplinkIngress', syn).out, rewrite(syn, masq), 'first flow');
    env.send('tcUplinkIngress', fromBackend(['SYN', 'ACK'], 5000));
    env.send('tcUplinkIngress', fromClient(NET.client, ['ACK']));

    // While the first flow lives, the port is its own.
    const early = fromClient(NET.client2, ['SYN'], 1);
    t.is(env.send('tcUplinkIngress', early).verdict, TC.SHOT, 'no port while the first flow is established');
    t.is(drops(env.dp, DropReason.SNAT_EXHAUSTED), 1n);

    if (close === 'FINs both ways') {
      env.send('tcUplinkIngress', fromClient(NET.client, ['FIN', 'ACK']));
      t.is(env.send('tcUplinkIngress', early).verdict, TC.SHOT, 'half-closed (CLOSE_WAIT) still holds the port');
      env.send('tcUplinkIngress', fromBackend(['FIN', 'ACK']));
      env.send('tcUplinkIngress', fromClient(NET.client, ['ACK'], 1002));
    } else if (close === 'client RST') {
      env.send('tcUplinkIngress', fromClient(NET.client, ['RST']));
    } else {
      env.send('tcUplinkIngress', fromBackend(['RST']));
    }

    const second = fromClient(NET.client2, ['SYN'], 7);
    const r = env.send('tcUplinkIngress', second);
    t.is(r.verdict, TC.OK);
    expectPacket(t, r.out, rewrite(second, masq), 'the second flow takes the port');
    // The reply entry is the second flow's; the first flow's forward entry went with it.
    t.like(env.dp.maps.ct4.get(key(NET.pod2a, 8080, NET.node1, 61000, CtDir.REPLY)), { nat_daddr: NET.client2, nat_dport: 50000, state: 0n });
    t.is(env.dp.maps.ct4.get(key(NET.client, 50000, NET.node1, 30080, CtDir.FWD)), null, 'the closed flow is gone as a whole');
    // A late segment of the first client is not translated into the second flow's tuple.
    t.is(env.send('tcUplinkIngress', fromClient(NET.client, ['ACK'], 1003)).verdict, TC.SHOT, 'a late segment of the closed flow');
    const synack = fromBackend(['SYN', 'ACK'], 9000);
    t.is(parsePacket(env.send('tcUplinkIngress', synack).out).ip!.dst, NET.client2, 'the backend answers the second client');
  });
}

rootTest('NOEXIST: a new flow never overwrites a live flow\'s entry (same client port, same backend, through another frontend)', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  writeService(env.dp, { svcId: 2, addr: NET.clusterIp2, port: 80, backends: [1] });
  const first = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN'], { seq: 1000 });
  expectPacket(t, env.send('tcPodIngress', first).out, rewrite(first, { dst: NET.pod2a, dport: 8080 }), 'first flow');
  const synack = tcp(NET.pod2a, 8080, NET.pod1a, 40000, ['SYN', 'ACK'], { seq: 5000, ack: 1001 });
  env.send('tcPodEgress', synack);

  // The same client port to the other ClusterIP: its reply tuple is the live flow's.
  const clash = tcp(NET.pod1a, 40000, NET.clusterIp2, 80, ['SYN'], { seq: 3 });
  t.is(env.send('tcPodIngress', clash).verdict, TC.SHOT, 'dropped: the tuple is taken');
  t.is(drops(env.dp, DropReason.CT_CREATE), 1n);
  t.is(env.dp.maps.ct4.get(key(NET.pod1a, 40000, NET.clusterIp2, 80, CtDir.FWD)), null, 'no half flow left');
  const data = tcp(NET.pod2a, 8080, NET.pod1a, 40000, ['ACK', 'PSH'], { seq: 5001, ack: 1001, payload: 'still mine' });
  expectPacket(t, env.send('tcPodEgress', data).out, rewrite(data, { src: NET.clusterIp, sport: 80 }), 'the live flow\'s replies keep their frontend');
});

rootTest('claims: an entry another CPU is taking over is neither retired nor overwritten', async (t) => {
  const { env, fwd, reply, client, open } = await clusterIpFlow(t);
  open();
  client(['RST']);
  // Another CPU has claimed the closed flow's forward entry (mid-takeover).
  const f = env.dp.maps.ct4.get(fwd)!;
  env.dp.maps.ct4.set(fwd, { ...f, state: f.state | BigInt(CtState.CLAIMED) });
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN'], { seq: 77 });
  t.is(env.send('tcPodIngress', syn).verdict, TC.SHOT, 'the reopening SYN waits for its retransmission');
  t.is(drops(env.dp, DropReason.CT_CREATE), 1n);
  t.deepEqual(env.dp.maps.ct4.get(fwd), { ...f, state: f.state | BigInt(CtState.CLAIMED) }, 'the claimed entry is untouched');
});

rootTest('SNAT port takeover: of the ports whose flows are over, the one that closed longest ago (the backend\'s TIME_WAIT likeliest gone)', async (t) => {
  const env = await setup(t, { snatPortMin: 61000, snatPortMax: 61001 });
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 10, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1] });
  const open = (sport: number) => {
    const r = env.send('tcUplinkIngress', tcp(NET.client, sport, NET.node1, 30080, ['SYN'], { seq: 1000, eth: fromPeer }));
    return parsePacket(r.out).tcp!.sport;
  };
  const close = (sport: number, port: number) => {
    env.send('tcUplinkIngress', tcp(NET.pod2a, 8080, NET.node1, port, ['SYN', 'ACK'], { seq: 5000, ack: 1001, eth: fromPeer }));
    env.send('tcUplinkIngress', tcp(NET.client, sport, NET.node1, 30080, ['FIN', 'ACK'], { seq: 1001, ack: 5001, eth: fromPeer }));
    env.send('tcUplinkIngress', tcp(NET.pod2a, 8080, NET.node1, port, ['FIN', 'ACK'], { seq: 5001, ack: 1002, eth: fromPeer }));
  };
  const first = open(50000);
  const second = open(50001);
  t.deepEqual([first, second].sort(), [61000, 61001], 'both ports taken');
  close(50000, first);
  await new Promise((r) => setTimeout(r, 20)); // a later deadline for the second flow
  close(50001, second);
  t.is(open(50002), first, 'the flow that closed first gives its port');
  t.is(open(50003), second, 'then the other');
});


rootTest('SNAT reopen keeps the port once: a SYN after the client reset a refused attempt goes out on the same port (netfilter reopens with its NAT binding)', async (t) => {
  const env = await setup(t, { snatPortMin: 61000, snatPortMax: 61001 });
  nodePort(env);
  const fromClient = (sport: number, flags: Parameters<typeof tcp>[4], seq: number) => tcp(NET.client, sport, NET.node1, 30080, flags, { seq, eth: fromPeer });
  const fwdKey = (sport: number) => key(NET.client, sport, NET.node1, 30080, CtDir.FWD);
  // Eight connections, one at a time (two ports): each first attempt is refused and reset.
  for (let sport = 50000; sport < 50008; sport++) {
    const syn = fromClient(sport, ['SYN'], 1000);
    const port = parsePacket(env.send('tcUplinkIngress', syn).out).tcp!.sport;
    // The backend refuses from a TIME_WAIT of an older connection on this port (a bare ACK)...
    const refusal = tcp(NET.pod2a, 8080, NET.node1, port, ['ACK'], { seq: 5002, ack: 77, eth: fromPeer });
    t.is(parsePacket(env.send('tcUplinkIngress', refusal).out).ip!.dst, NET.client, 'the refusal reaches the client');
    // ...the client resets it, which ends that TIME_WAIT, and retransmits its SYN at once.
    env.send('tcUplinkIngress', fromClient(sport, ['RST'], 77));
    t.is(parsePacket(env.send('tcUplinkIngress', syn).out).tcp!.sport, port, `${sport}: the second attempt on the same SNAT port`);
    t.is(Number(env.dp.maps.ct4.get(fwdKey(sport))!.state) & CtState.REOPENED, CtState.REOPENED);
    // Refused again: the third attempt is a fresh pick (the reset may not have ended it).
    env.send('tcUplinkIngress', fromClient(sport, ['RST'], 77));
    env.send('tcUplinkIngress', syn);
    t.is(Number(env.dp.maps.ct4.get(fwdKey(sport))!.state) & CtState.REOPENED, 0, `${sport}: the third attempt picks afresh`);
    env.send('tcUplinkIngress', fromClient(sport, ['RST'], 77)); // done: its port is free again
  }
});
