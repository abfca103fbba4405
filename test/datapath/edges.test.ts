/**
 * Hairpin, rejects when a service has no endpoints, conntrack state and INVALID segments,
 * fragments (later fragments take their first fragment's ports and translation), SNAT port
 * exhaustion: each with the drop reason or counter it counts.
 */
import type { ExecutionContext } from 'ava';

import { CtDir, CtFlags, DropReason, FragStat, IPPROTO, SvcFlags, SvcKind, ctClosing, ctStateName } from '../../ts/abi/index.js';
import { buildPacket, checksumProblems, parsePacket, type PacketSpec } from '../../ts/packet/index.js';
import {
  HAIRPIN,
  NET, TC, XDP, drops, expectPacket, fragStat, rootTest, setup, svcStats, writeBackend, writeService, type Env,
} from './_fixture.js';
import { HOST_MAC, POD_MAC, fragments, fromPeer, reassemble, rewrite, tcp, udp } from './_packets.js';

const toPod = { src: HOST_MAC, dst: POD_MAC };

rootTest('hairpin: a pod reaching itself through its service is SNATed to the hairpin address and bounced', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8080, local: true });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });

  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80);
  const r = env.send('tcPodIngress', syn);
  t.is(r.verdict, TC.REDIRECT, 'back out of the pod interface');
  const sport = parsePacket(r.out).tcp!.sport;
  expectPacket(t, r.out, { ...rewrite(syn, { src: HAIRPIN, sport, dst: NET.pod1a, dport: 8080 }), eth: toPod });

  const synack = tcp(NET.pod1a, 8080, HAIRPIN, sport, ['SYN', 'ACK'], { ack: 1001 });
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
  const env = await setup(t, { ctTcpSynSeconds: 60, ctTcpEstablishedSeconds: 86400, ctTcpCloseWaitSeconds: 3600, ctTcpResetSeconds: 10, ctUdpSeconds: 120 });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  const key = { saddr: NET.pod1a, daddr: NET.clusterIp, sport: 40000, dport: 80, proto: IPPROTO.TCP, dir: CtDir.FWD, pad: 0 };
  const lifetime = () => Number(env.dp.maps.ct4.get(key)!.expires_ns - process.hrtime.bigint()) / 1e9;
  const near = (got: number, want: number) => t.true(Math.abs(got - want) < 5, `lifetime ${got.toFixed(1)} s, want ${want} s`);

  env.send('tcPodIngress', tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN']));
  near(lifetime(), 60);
  env.send('tcPodEgress', tcp(NET.pod2a, 8080, NET.pod1a, 40000, ['SYN', 'ACK'], { seq: 0, ack: 1001 }));
  near(lifetime(), 86400);
  env.send('tcPodIngress', tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['FIN', 'ACK'], { seq: 1001, ack: 1 }));
  near(lifetime(), 3600);
  t.true(ctClosing(env.dp.maps.ct4.get(key)!.state));
  env.send('tcPodIngress', tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['RST'], { seq: 1002 }));
  near(lifetime(), 10);

  // The client reuses its port: a new flow, fresh state.
  writeBackend(env.dp, { id: 2, addr: NET.pod2b, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [2] });
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN'], { seq: 9 });
  expectPacket(t, env.send('tcPodIngress', syn).out, rewrite(syn, { dst: NET.pod2b, dport: 8080 }));
  t.false(ctClosing(env.dp.maps.ct4.get(key)!.state));
  near(lifetime(), 60);

  writeService(env.dp, { svcId: 2, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [2] });
  env.send('tcPodIngress', udp(NET.pod1a, 40000, NET.clusterIp, 53));
  near(Number(env.dp.maps.ct4.get({ ...key, dport: 53, proto: IPPROTO.UDP })!.expires_ns - process.hrtime.bigint()) / 1e9, 120);
});

/** A payload of n bytes that no byte shift leaves unchanged (checksums notice misplaced data). */
const bytes = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed * 17 + (i >> 8)) & 0xff));
const datagram = (spec: PacketSpec, id: number, payload: Buffer): PacketSpec => ({ ...spec, ip: { ...spec.ip, id, df: false }, payload });
const sendAll = (env: Env, prog: Parameters<Env['send']>[0], frags: PacketSpec[]) => frags.map((f) => env.send(prog, f));
const withEth = (specs: PacketSpec[], eth: PacketSpec['eth']) => specs.map((s) => ({ ...s, eth }));

/** Each fragment out is the translated datagram's fragment, and they reassemble with valid checksums. */
function expectFragments(t: ExecutionContext, outs: Buffer[], expected: PacketSpec[]): void {
  t.is(outs.length, expected.length);
  outs.forEach((o, i) => expectPacket(t, o, expected[i]!, `fragment ${i + 1} of ${outs.length}`));
  t.deepEqual(checksumProblems(reassemble(outs)), [], 'the reassembled datagram: IPv4 and L4 checksums');
}

rootTest('fragments: a UDP datagram to a ClusterIP in 2 or 3 fragments, every fragment DNATed to the same backend', async (t) => {
  const env = await setup(t);
  for (const id of [1, 2, 3]) writeBackend(env.dp, { id, addr: [NET.pod2a, NET.pod2b, NET.pod1b][id - 1]!, port: 8053, proto: IPPROTO.UDP });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [1, 2, 3] });
  const seen = new Set<string>();
  let later = 0n;
  for (let i = 0; i < 12; i++) {
    const cuts = i % 2 ? [1480, 2960] : [1480];
    const dgram = datagram(udp(NET.pod1a, 41000 + i, NET.clusterIp, 53), 0x100 + i, bytes(i % 2 ? 4000 : 2500, i));
    const outs = sendAll(env, 'tcPodIngress', fragments(dgram, cuts));
    t.true(outs.every((o) => o.verdict === TC.OK));
    const backend = parsePacket(outs[0]!.out).ip!.dst;
    seen.add(backend);
    expectFragments(t, outs.map((o) => o.out), fragments(rewrite(dgram, { dst: backend, dport: 8053 }), cuts));
    later += BigInt(cuts.length);
  }
  t.true(seen.size > 1, 'datagrams spread over the backends (12 picks of 3)');
  t.is(fragStat(env.dp, FragStat.FIRST), 12n);
  t.is(fragStat(env.dp, FragStat.LATER), later);
  t.is(fragStat(env.dp, FragStat.NO_FIRST), 0n);
  t.is(svcStats(env.dp, 1)!.packets, 12n + later, 'every fragment is a packet of the service');
  t.is(svcStats(env.dp, 1)!.new_flows, 12n, 'one flow per datagram (distinct source ports)');
  t.is(drops(env.dp, DropReason.FRAGMENT), 0n);
});

rootTest('fragments: a TCP segment in fragments follows its connection', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN']);
  expectPacket(t, env.send('tcPodIngress', syn).out, rewrite(syn, { dst: NET.pod2a, dport: 8080 }));
  env.send('tcPodEgress', tcp(NET.pod2a, 8080, NET.pod1a, 40000, ['SYN', 'ACK'], { seq: 0, ack: 1001 }));
  const key = { saddr: NET.pod1a, daddr: NET.clusterIp, sport: 40000, dport: 80, proto: IPPROTO.TCP, dir: CtDir.FWD, pad: 0 };
  const seg = datagram(tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['ACK', 'PSH', 'FIN'], { seq: 1001, ack: 1 }), 77, bytes(3000));
  const outs = sendAll(env, 'tcPodIngress', fragments(seg, [1480, 2960]));
  t.true(outs.every((o) => o.verdict === TC.OK));
  expectFragments(t, outs.map((o) => o.out), fragments(rewrite(seg, { dst: NET.pod2a, dport: 8080 }), [1480, 2960]));
  t.is(ctStateName(IPPROTO.TCP, env.dp.maps.ct4.get(key)!.state), 'CLOSE_WAIT', 'the first fragment\'s FIN was accounted to the flow');

  // The backend's answer, in fragments, becomes the ClusterIP's on the client pod's veth.
  const answer = datagram(tcp(NET.pod2a, 8080, NET.pod1a, 40000, ['ACK', 'PSH'], { seq: 1, ack: 4001, eth: { src: HOST_MAC, dst: POD_MAC } }), 78, bytes(2000, 3));
  const back = sendAll(env, 'tcPodEgress', fragments(answer, [1480]));
  t.true(back.every((o) => o.verdict === TC.OK));
  expectFragments(t, back.map((o) => o.out), fragments(rewrite(answer, { src: NET.clusterIp, sport: 80 }), [1480]));
});

rootTest('fragments: a backend reply in fragments is reverse-NATed, remote and local backend', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8053, proto: IPPROTO.UDP });
  writeBackend(env.dp, { id: 2, addr: NET.pod1b, port: 8053, proto: IPPROTO.UDP, local: true });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [1] });
  writeService(env.dp, { svcId: 2, addr: NET.clusterIp2, port: 53, proto: IPPROTO.UDP, backends: [2] });
  env.send('tcPodIngress', udp(NET.pod1a, 40000, NET.clusterIp, 53, 'query'));
  env.send('tcPodIngress', udp(NET.pod1a, 40001, NET.clusterIp2, 53, 'query'));

  // Remote backend: the reply is reversed as it reaches the client pod (tc_pod egress).
  const reply = datagram(udp(NET.pod2a, 8053, NET.pod1a, 40000, '', { eth: toPod }), 901, bytes(4000, 5));
  const outs = sendAll(env, 'tcPodEgress', fragments(reply, [1480, 2960]));
  t.true(outs.every((o) => o.verdict === TC.OK));
  expectFragments(t, outs.map((o) => o.out), fragments(rewrite(reply, { src: NET.clusterIp, sport: 53 }), [1480, 2960]));

  // Local backend: reversed as it leaves the backend pod (tc_pod ingress).
  const local = datagram(udp(NET.pod1b, 8053, NET.pod1a, 40001), 902, bytes(3000, 6));
  const louts = sendAll(env, 'tcPodIngress', fragments(local, [1480]));
  t.true(louts.every((o) => o.verdict === TC.OK));
  expectFragments(t, louts.map((o) => o.out), fragments(rewrite(local, { src: NET.clusterIp2, sport: 53 }), [1480]));
  t.is(fragStat(env.dp, FragStat.LATER), 3n);
});

rootTest('fragments: a later fragment without its first passes untouched and is counted', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8053, proto: IPPROTO.UDP });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [1] });
  const dgram = datagram(udp(NET.pod1a, 40000, NET.clusterIp, 53), 0x5151, bytes(4000));
  const [first, second, third] = fragments(dgram, [1480, 2960]);
  // Out of order: the last fragment first. It cannot be named: it leaves as it came.
  const early = env.send('tcPodIngress', third!);
  t.is(early.verdict, TC.OK);
  expectPacket(t, early.out, third!);
  t.is(fragStat(env.dp, FragStat.NO_FIRST), 1n);
  // The others, after the first, are translated.
  const expected = fragments(rewrite(dgram, { dst: NET.pod2a, dport: 8053 }), [1480, 2960]);
  expectPacket(t, env.send('tcPodIngress', first!).out, expected[0]!);
  expectPacket(t, env.send('tcPodIngress', second!).out, expected[1]!);
  t.is(fragStat(env.dp, FragStat.NO_FIRST), 1n);
  t.is(fragStat(env.dp, FragStat.LATER), 1n);
  t.is(drops(env.dp, DropReason.FRAGMENT), 0n, 'passed, not dropped');
});

rootTest('fragments: fragments of non-service traffic pass untouched', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8053, proto: IPPROTO.UDP });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [1] });
  const cases = [
    datagram(udp(NET.pod1a, 40000, NET.pod2a, 8053), 11, bytes(3000)), // straight to the backend
    datagram(udp(NET.pod1a, 40000, NET.clusterIp2, 53), 12, bytes(3000)), // a ClusterIP of no service
    datagram(udp(NET.pod1a, 40000, NET.clusterIp, 54), 13, bytes(3000)), // another port of the service's address
    datagram(tcp(NET.pod1a, 40000, NET.pod2a, 8080, ['ACK'], { seq: 1, ack: 1 }), 14, bytes(3000)),
  ];
  for (const dgram of cases) {
    for (const f of fragments(dgram, [1480])) {
      const r = env.send('tcPodIngress', f);
      t.is(r.verdict, TC.OK);
      expectPacket(t, r.out, f);
    }
  }
  const icmp = { ...udp(NET.pod1a, 1, NET.clusterIp, 53), udp: undefined, ip: { src: NET.pod1a, dst: NET.clusterIp, id: 15, proto: IPPROTO.ICMP, mf: true }, payload: bytes(64) };
  const r = env.send('tcPodIngress', icmp);
  t.is(r.verdict, TC.OK);
  expectPacket(t, r.out, icmp);
  t.is(fragStat(env.dp, FragStat.NO_FIRST), 0n, 'their first fragments were seen');
  t.is(env.dp.maps.ct4.entries().length, 0, 'no flow');
});

rootTest('fragments: the first rejected (no endpoints), the later ones dropped as FRAGMENT', async (t) => {
  const env = await setup(t);
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, flags: SvcFlags.REJECT, backends: [] });
  const dgram = datagram(udp(NET.pod1a, 40000, NET.clusterIp, 53), 21, bytes(3000));
  const [first, second] = fragments(dgram, [1480]);
  const r = env.send('tcPodIngress', first!);
  t.is(r.verdict, TC.REDIRECT);
  t.like(parsePacket(r.out), { ip: { src: NET.clusterIp, dst: NET.pod1a, mf: false, fragOffset: 0 }, icmp: { type: 3, code: 3 } });
  t.deepEqual(checksumProblems(r.out), []);
  t.is(env.send('tcPodIngress', second!).verdict, TC.SHOT);
  t.is(drops(env.dp, DropReason.NO_ENDPOINTS), 1n);
  t.is(drops(env.dp, DropReason.FRAGMENT), 1n);
});

rootTest('fragments: hairpin, each fragment SNATed to the hairpin address and bounced, the reply too', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8053, proto: IPPROTO.UDP, local: true });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [1] });
  const dgram = datagram(udp(NET.pod1a, 40000, NET.clusterIp, 53), 31, bytes(3000));
  const outs = sendAll(env, 'tcPodIngress', fragments(dgram, [1480]));
  t.true(outs.every((o) => o.verdict === TC.REDIRECT));
  const sport = parsePacket(outs[0]!.out).udp!.sport;
  expectFragments(t, outs.map((o) => o.out), withEth(fragments(rewrite(dgram, { src: HAIRPIN, sport, dst: NET.pod1a, dport: 8053 }), [1480]), toPod));

  const reply = datagram(udp(NET.pod1a, 8053, HAIRPIN, sport), 32, bytes(3000, 2));
  const back = sendAll(env, 'tcPodIngress', fragments(reply, [1480]));
  t.true(back.every((o) => o.verdict === TC.REDIRECT));
  expectFragments(t, back.map((o) => o.out), withEth(fragments(rewrite(reply, { src: NET.clusterIp, sport: 53, dst: NET.pod1a, dport: 40000 }), [1480]), toPod));
});

rootTest('fragments: a NodePort SNATed to a remote backend (tc uplink), the reply reversed; XDP passes fragments to tc', async (t) => {
  const env = await setup(t);
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8053, proto: IPPROTO.UDP });
  writeService(env.dp, { svcId: 1, addr: '0.0.0.0', port: 30053, proto: IPPROTO.UDP, kind: SvcKind.NODE_PORT, backends: [1] });
  const dgram = datagram(udp(NET.client, 50000, NET.node1, 30053, '', { eth: fromPeer }), 41, bytes(4000));
  const frags = fragments(dgram, [1480, 2960]);
  for (const f of frags) {
    const x = env.send('xdpUplink', f);
    t.is(x.verdict, XDP.PASS, 'XDP leaves fragments to tc');
    expectPacket(t, x.out, f);
  }
  t.is(fragStat(env.dp, FragStat.FIRST), 0n, 'XDP records nothing');
  const outs = sendAll(env, 'tcUplinkIngress', frags);
  t.true(outs.every((o) => o.verdict === TC.OK), 'no route in the test namespace: to the stack');
  const sport = parsePacket(outs[0]!.out).udp!.sport;
  t.true(sport >= 61000 && sport <= 65535, `SNAT port ${sport}`);
  expectFragments(t, outs.map((o) => o.out), fragments(rewrite(dgram, { src: NET.node1, sport, dst: NET.pod2a, dport: 8053 }), [1480, 2960]));

  const reply = datagram(udp(NET.pod2a, 8053, NET.node1, sport, '', { eth: fromPeer }), 42, bytes(4000, 9));
  const back = sendAll(env, 'tcUplinkIngress', fragments(reply, [1480, 2960]));
  t.true(back.every((o) => o.verdict === TC.OK));
  expectFragments(t, back.map((o) => o.out), fragments(rewrite(reply, { src: NET.node1, sport: 30053, dst: NET.client, dport: 50000 }), [1480, 2960]));
  t.is(fragStat(env.dp, FragStat.LATER), 4n);
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
