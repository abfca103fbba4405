/**
 * Hairpin, rejects when a service has no endpoints, conntrack state and INVALID segments,
 * fragments, SNAT port exhaustion: each with the drop reason it counts.
 */
import { CtDir, CtFlags, DropReason, IPPROTO, SvcFlags, SvcKind } from '../../ts/abi/index.js';
import { buildPacket, parsePacket } from '../../ts/packet/index.js';
import { NET, TC, XDP, drops, expectPacket, rootTest, setup, writeBackend, writeService } from './_harness.js';
import { HOST_MAC, POD_MAC, fromPeer, rewrite, tcp, udp } from './_packets.js';

const toPod = { src: HOST_MAC, dst: POD_MAC };

rootTest('hairpin: a pod reaching itself through its service is SNATed to the hairpin address and bounced', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8080, local: true });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });

  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80);
  const r = env.send('tcPodIngress', syn);
  t.is(r.verdict, TC.REDIRECT, 'back out of the pod interface');
  const sport = parsePacket(r.out).tcp!.sport;
  expectPacket(t, r.out, { ...rewrite(syn, { src: NET.hairpin, sport, dst: NET.pod1a, dport: 8080 }), eth: toPod });

  const synack = tcp(NET.pod1a, 8080, NET.hairpin, sport, ['SYN', 'ACK'], { ack: 1001 });
  const back = env.send('tcPodIngress', synack);
  t.is(back.verdict, TC.REDIRECT);
  expectPacket(t, back.out, { ...rewrite(synack, { src: NET.clusterIp, sport: 80, dst: NET.pod1a, dport: 40000 }), eth: toPod });
  const fwd = env.dp.maps.ct4.get({ saddr: NET.pod1a, daddr: NET.clusterIp, sport: 40000, dport: 80, proto: IPPROTO.TCP, dir: CtDir.FWD, pad: 0 });
  t.is(fwd!.flags, CtFlags.SNAT | CtFlags.HAIRPIN);
});

rootTest('no endpoints: TCP gets a RST, UDP an ICMP port unreachable, at once', async (t) => {
  const env = await setup(t);
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, flags: SvcFlags.REJECT, backends: [] });
  writeService(env.dp, { svcId: 2, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, flags: SvcFlags.REJECT, backends: [] });

  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN'], { seq: 7000 });
  const r = env.send('tcPodIngress', syn);
  t.is(r.verdict, TC.REDIRECT);
  expectPacket(t, r.out, {
    eth: toPod,
    ip: { src: NET.clusterIp, dst: NET.pod1a, ttl: 64 },
    tcp: { sport: 80, dport: 40000, seq: 0, ack: 7001, flags: ['RST', 'ACK'], window: 0 },
  });

  const q = udp(NET.pod1a, 33333, NET.clusterIp, 53, 'query');
  const sent = buildPacket(q);
  const u = env.send('tcPodIngress', q);
  t.is(u.verdict, TC.REDIRECT);
  expectPacket(t, u.out, {
    eth: toPod,
    ip: { src: NET.clusterIp, dst: NET.pod1a, ttl: 64 },
    icmp: { type: 3, code: 3 },
    payload: sent.subarray(14, 14 + 28),
  });
  t.is(drops(env.dp, DropReason.NO_ENDPOINTS), 2n);

  // Without the reject flag: dropped, counted the same.
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [] });
  t.is(env.send('tcPodIngress', syn).verdict, TC.SHOT);
  t.is(drops(env.dp, DropReason.NO_ENDPOINTS), 3n);
});

rootTest('no endpoints on XDP: the RST leaves by XDP_TX, grown or trimmed to size', async (t) => {
  const env = await setup(t);
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeService(env.dp, { svcId: 1, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, flags: SvcFlags.REJECT, backends: [] });
  writeService(env.dp, { svcId: 2, addr: '0.0.0.0', port: 30053, proto: IPPROTO.UDP, kind: SvcKind.NODE_PORT, flags: SvcFlags.REJECT, backends: [] });
  const syn = tcp(NET.client, 50000, NET.node1, 30080, ['SYN'], { seq: 1, eth: fromPeer, payload: 'data in a SYN' });
  const r = env.send('xdpUplink', syn);
  t.is(r.verdict, XDP.TX);
  expectPacket(t, r.out, {
    eth: { src: fromPeer.dst, dst: fromPeer.src },
    ip: { src: NET.node1, dst: NET.client, ttl: 64 },
    tcp: { sport: 30080, dport: 50000, seq: 0, ack: 1 + 1 + 13, flags: ['RST', 'ACK'], window: 0 },
  });
  const q = udp(NET.client, 50000, NET.node1, 30053, '', { eth: fromPeer });
  const u = env.send('xdpUplink', q);
  t.is(u.verdict, XDP.TX);
  t.like(parsePacket(u.out), { ip: { src: NET.node1, dst: NET.client, proto: IPPROTO.ICMP }, icmp: { type: 3, code: 3 } });
  expectPacket(t, u.out, {
    eth: { src: fromPeer.dst, dst: fromPeer.src },
    ip: { src: NET.node1, dst: NET.client, ttl: 64 },
    icmp: { type: 3, code: 3 },
    payload: buildPacket(q).subarray(14, 42),
  });
});

rootTest('TCP segments of no tracked connection are dropped as INVALID, never NATed', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  for (const flags of [['ACK'], ['RST'], ['FIN', 'ACK'], ['SYN', 'ACK']] as const) {
    const r = env.send('tcPodIngress', tcp(NET.pod1a, 40000, NET.clusterIp, 80, [...flags], { seq: 1, ack: 1 }));
    t.is(r.verdict, TC.SHOT, flags.join('+'));
  }
  t.is(drops(env.dp, DropReason.CT_INVALID), 4n);
  t.is(env.dp.maps.ct4.entries().length, 0);
});

rootTest('conntrack lifetimes follow the TCP state; a SYN on a closed entry is a new connection', async (t) => {
  const env = await setup(t, { ctTcpSynSeconds: 60, ctTcpEstablishedSeconds: 86400, ctTcpClosingSeconds: 3600, ctTcpResetSeconds: 10, ctUdpSeconds: 120 });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  const key = { saddr: NET.pod1a, daddr: NET.clusterIp, sport: 40000, dport: 80, proto: IPPROTO.TCP, dir: CtDir.FWD, pad: 0 };
  const lifetime = () => Number(env.dp.maps.ct4.get(key)!.expires_ns - process.hrtime.bigint()) / 1e9;
  const near = (got: number, want: number) => t.true(Math.abs(got - want) < 5, `lifetime ${got.toFixed(1)} s, want ${want} s`);

  env.send('tcPodIngress', tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN']));
  near(lifetime(), 60);
  env.send('tcPodIngress', tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['ACK'], { seq: 1001, ack: 1 }));
  near(lifetime(), 86400);
  env.send('tcPodIngress', tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['FIN', 'ACK'], { seq: 1001, ack: 1 }));
  near(lifetime(), 3600);
  t.is(env.dp.maps.ct4.get(key)!.flags & CtFlags.CLOSING, CtFlags.CLOSING);
  env.send('tcPodIngress', tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['RST'], { seq: 1002 }));
  near(lifetime(), 10);

  // The client reuses its port: a new flow, fresh state.
  writeBackend(env.dp, { id: 2, addr: NET.pod2b, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [2] });
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN'], { seq: 9 });
  expectPacket(t, env.send('tcPodIngress', syn).out, rewrite(syn, { dst: NET.pod2b, dport: 8080 }));
  t.is(env.dp.maps.ct4.get(key)!.flags & CtFlags.CLOSING, 0);
  near(lifetime(), 60);

  writeService(env.dp, { svcId: 2, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [2] });
  env.send('tcPodIngress', udp(NET.pod1a, 40000, NET.clusterIp, 53));
  near(Number(env.dp.maps.ct4.get({ ...key, dport: 53, proto: IPPROTO.UDP })!.expires_ns - process.hrtime.bigint()) / 1e9, 120);
});

rootTest('fragments: dropped on tc when they belong to a service, passed on by XDP', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, proto: IPPROTO.UDP, backends: [1] });
  const first = { ...udp(NET.pod1a, 40000, NET.clusterIp, 80, 'x'.repeat(32)), ip: { src: NET.pod1a, dst: NET.clusterIp, id: 9, mf: true } };
  t.is(env.send('tcPodIngress', first).verdict, TC.SHOT);
  t.is(drops(env.dp, DropReason.FRAGMENT), 1n);
  const x = env.send('xdpUplink', first);
  t.is(x.verdict, XDP.PASS);
  expectPacket(t, x.out, first);
  const other = { ...udp(NET.pod1a, 40000, NET.clusterIp2, 80, 'x'.repeat(32)), ip: { src: NET.pod1a, dst: NET.clusterIp2, id: 9, mf: true } };
  t.is(env.send('tcPodIngress', other).verdict, TC.OK, 'fragments of other traffic pass');
});

rootTest('SNAT ports: taken from the configured range, exhaustion dropped and counted', async (t) => {
  const env = await setup(t, { snatPortMin: 61000, snatPortMax: 61001 });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeService(env.dp, { svcId: 1, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1] });
  const ports = new Set<number>();
  for (const client of ['198.18.0.100', '198.18.0.101']) {
    const r = env.send('tcUplinkIngress', tcp(client, 50000, NET.node1, 30080, ['SYN'], { eth: fromPeer }));
    t.is(r.verdict, TC.OK);
    ports.add(parsePacket(r.out).tcp!.sport);
  }
  t.deepEqual([...ports].sort(), [61000, 61001], 'two clients, two ports: one backend tuple each');
  const r = env.send('tcUplinkIngress', tcp('198.18.0.102', 50000, NET.node1, 30080, ['SYN'], { eth: fromPeer }));
  t.is(r.verdict, TC.SHOT);
  t.is(drops(env.dp, DropReason.SNAT_EXHAUSTED), 1n);
});
