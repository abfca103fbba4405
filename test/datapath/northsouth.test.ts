/**
 * North-south traffic on the uplink, on tc and on XDP: NodePort on the node's addresses,
 * LoadBalancer IPs with source ranges, externalIPs, externalTrafficPolicy Cluster (SNAT to the
 * node when the backend is elsewhere, and its reverse) and Local (local endpoints, client kept).
 */
import { CtDir, CtFlags, DropReason, IPPROTO, SvcFlags, SvcKind } from '../../ts/abi/index.js';
import { parsePacket } from '../../ts/packet/index.js';
import { NET, TC, XDP, drops, expectPacket, rootTest, setup, spread, writeBackend, writeService, type Env } from './_fixture.js';
import { fromPeer, rewrite, tcp, udp } from './_packets.js';

const uplinks = [
  { prog: 'tcUplinkIngress', pass: TC.OK },
  { prog: 'xdpUplink', pass: XDP.PASS },
] as const;

function nodePort(env: Env, flags = 0, backends: number[] = [1], localBackends?: number[]) {
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeService(env.dp, {
    svcId: 10, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, flags, backends,
    ...(localBackends ? { localBackends } : {}),
  });
}

for (const { prog, pass } of uplinks) {
  rootTest(`${prog}: NodePort on a node address, local backend: DNAT, client kept; reply undone at the pod`, async (t) => {
    const env = await setup(t);
    writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8080, local: true });
    nodePort(env);

    const syn = tcp(NET.client, 50000, NET.node1, 30080, ['SYN'], { eth: fromPeer });
    const r = env.send(prog, syn);
    t.is(r.verdict, pass, 'no route in the test namespace: on to the stack, translated');
    expectPacket(t, r.out, rewrite(syn, { dst: NET.pod1a, dport: 8080 }));

    // The backend's answer leaves its pod towards the client: undone as it enters the host.
    const synack = tcp(NET.pod1a, 8080, NET.client, 50000, ['SYN', 'ACK'], { ack: 1001 });
    const back = env.send('tcPodIngress', synack);
    t.is(back.verdict, TC.OK);
    expectPacket(t, back.out, rewrite(synack, { src: NET.node1, sport: 30080 }));
  });

  rootTest(`${prog}: NodePort answers only on node addresses`, async (t) => {
    const env = await setup(t);
    writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8080, local: true });
    nodePort(env);
    const f = tcp(NET.client, 50000, '198.18.0.50', 30080, ['SYN'], { eth: fromPeer });
    const r = env.send(prog, f);
    t.is(r.verdict, pass);
    expectPacket(t, r.out, f);
  });

  rootTest(`${prog}: ETP Cluster to a remote backend: SNAT to the node from the SNAT range, reply reversed`, async (t) => {
    const env = await setup(t);
    writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
    nodePort(env);

    const syn = tcp(NET.client, 50000, NET.node1, 30080, ['SYN'], { eth: fromPeer });
    const r = env.send(prog, syn);
    t.is(r.verdict, pass);
    const snatPort = parsePacket(r.out).tcp!.sport;
    t.true(snatPort >= 61000 && snatPort <= 65535, `SNAT port ${snatPort} in 61000-65535`);
    expectPacket(t, r.out, rewrite(syn, { src: NET.node1, sport: snatPort, dst: NET.pod2a, dport: 8080 }));
    const rev = env.dp.maps.ct4.get({ saddr: NET.pod2a, daddr: NET.node1, sport: 8080, dport: snatPort, proto: IPPROTO.TCP, dir: CtDir.REPLY, pad: 0 });
    t.like(rev, { nat_saddr: NET.node1, nat_sport: 30080, nat_daddr: NET.client, nat_dport: 50000, flags: CtFlags.SNAT | CtFlags.EXTERNAL | CtFlags.REPLY });

    // The reply comes back from node 2 to our address and SNAT port.
    const synack = tcp(NET.pod2a, 8080, NET.node1, snatPort, ['SYN', 'ACK'], { ack: 1001, eth: fromPeer });
    const back = env.send(prog, synack);
    t.is(back.verdict, pass);
    expectPacket(t, back.out, rewrite(synack, { src: NET.node1, sport: 30080, dst: NET.client, dport: 50000 }));

    // The next segment of the flow reuses the same translation.
    const ack = tcp(NET.client, 50000, NET.node1, 30080, ['ACK'], { seq: 1001, ack: 1, eth: fromPeer });
    expectPacket(t, env.send(prog, ack).out, rewrite(ack, { src: NET.node1, sport: snatPort, dst: NET.pod2a, dport: 8080 }));
  });

  rootTest(`${prog}: ETP Local: only local endpoints, client address kept; none local: dropped`, async (t) => {
    const env = await setup(t);
    writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
    writeBackend(env.dp, { id: 2, addr: NET.pod1a, port: 8080, local: true });
    nodePort(env, SvcFlags.ETP_LOCAL, [1, 2], [2]);
    const seen = spread(env, prog, (p) => tcp(NET.client, p, NET.node1, 30080, ['SYN'], { eth: fromPeer }), 24);
    t.deepEqual([...new Set(seen)], [NET.pod1a]);
    const syn = tcp(NET.client, 50001, NET.node1, 30080, ['SYN'], { eth: fromPeer });
    expectPacket(t, env.send(prog, syn).out, rewrite(syn, { dst: NET.pod1a, dport: 8080 }));

    // Pods of this node may still use every endpoint.
    const fromPod = spread(env, 'tcPodIngress', (p) => tcp(NET.pod1b, p, NET.node1, 30080), 40);
    t.deepEqual([...new Set(fromPod)].sort(), [NET.pod1a, NET.pod2a].sort());

    nodePort(env, SvcFlags.ETP_LOCAL, [1], []);
    const r = env.send(prog, tcp(NET.client, 50002, NET.node1, 30080, ['SYN'], { eth: fromPeer }));
    t.is(r.verdict, prog === 'xdpUplink' ? XDP.DROP : TC.SHOT);
    t.is(drops(env.dp, DropReason.NO_LOCAL_ENDPOINTS), 1n);
  });

  rootTest(`${prog}: LoadBalancer IP: listed sources reach it, the others are dropped`, async (t) => {
    const env = await setup(t);
    writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8080, local: true });
    writeService(env.dp, { svcId: 20, addr: NET.lbIp, port: 80, kind: SvcKind.LOAD_BALANCER, flags: SvcFlags.SOURCE_RANGES, backends: [1] });
    env.dp.maps.srcr4.set({ prefixlen: 32 + 31, svc_id: 20, addr: '198.18.0.100' }, 1); // .100 and .101
    env.dp.maps.srcr4.set({ prefixlen: 32 + 24, svc_id: 99, addr: '198.18.0.0' }, 1); // another service's range

    for (const client of [NET.client, NET.client2]) {
      const syn = tcp(client, 50000, NET.lbIp, 80, ['SYN'], { eth: fromPeer });
      const r = env.send(prog, syn);
      t.is(r.verdict, pass, client);
      expectPacket(t, r.out, rewrite(syn, { dst: NET.pod1a, dport: 8080 }));
    }
    const denied = env.send(prog, tcp('198.18.0.102', 50000, NET.lbIp, 80, ['SYN'], { eth: fromPeer }));
    t.is(denied.verdict, prog === 'xdpUplink' ? XDP.DROP : TC.SHOT);
    t.is(drops(env.dp, DropReason.SOURCE_RANGE), 1n);
  });

  rootTest(`${prog}: externalIP: DNAT (UDP too), SNAT to the node for a remote backend`, async (t) => {
    const env = await setup(t);
    writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8080, local: true });
    writeBackend(env.dp, { id: 2, addr: NET.pod2a, port: 5353, proto: IPPROTO.UDP });
    writeService(env.dp, { svcId: 30, addr: NET.externalIp, port: 80, kind: SvcKind.EXTERNAL_IP, backends: [1] });
    writeService(env.dp, { svcId: 31, addr: NET.externalIp, port: 53, proto: IPPROTO.UDP, kind: SvcKind.EXTERNAL_IP, backends: [2] });

    const syn = tcp(NET.client, 50000, NET.externalIp, 80, ['SYN'], { eth: fromPeer });
    expectPacket(t, env.send(prog, syn).out, rewrite(syn, { dst: NET.pod1a, dport: 8080 }));
    const q = udp(NET.client, 50000, NET.externalIp, 53, 'q', { eth: fromPeer });
    const r = env.send(prog, q);
    const sport = parsePacket(r.out).udp!.sport;
    expectPacket(t, r.out, rewrite(q, { src: NET.node1, sport, dst: NET.pod2a, dport: 5353 }));
    const a = udp(NET.pod2a, 5353, NET.node1, sport, 'a', { eth: fromPeer });
    expectPacket(t, env.send(prog, a).out, rewrite(a, { src: NET.externalIp, sport: 53, dst: NET.client, dport: 50000 }));
  });
}

rootTest('ClusterIP from outside the node to another node\'s backend is masqueraded; pods keep their address', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  const syn = tcp(NET.client, 50000, NET.clusterIp, 80, ['SYN'], { eth: fromPeer });
  const r = env.send('tcUplinkIngress', syn);
  const sport = parsePacket(r.out).tcp!.sport;
  expectPacket(t, r.out, rewrite(syn, { src: NET.node1, sport, dst: NET.pod2a, dport: 8080 }));

  const fromPod = tcp(NET.pod1a, 40000, NET.clusterIp, 80);
  expectPacket(t, env.send('tcPodIngress', fromPod).out, rewrite(fromPod, { dst: NET.pod2a, dport: 8080 }), 'pods keep their address');
});
