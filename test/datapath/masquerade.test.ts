/**
 * Who is masqueraded, and what becomes of a masqueraded packet. The rules are kube-proxy's, decided
 * by the control plane as frontend flags (SVC_F_MASQUERADE for masqueradeAll, SVC_F_DETECT_LOCAL
 * with the cluster CIDRs in clustercidr4_v1) and only applied here; two rules hold whatever the
 * flags say (hairpin, and traffic from the uplink to another node's backend). A packet whose source
 * became a node address is forwarded by the datapath: the stack takes it for a martian on a pod's
 * veth. And forwarding is GSO-aware: a TSO/GRO aggregate leaves whole, while a packet truly too
 * big, or out of TTL, is answered as a router would.
 */
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { basename } from 'node:path';

import { DropReason, IPPROTO, SvcFlags, SvcKind } from '../../ts/abi/index.js';
import { buildPacket, checksumProblems, parsePacket, type PacketSpec } from '../../ts/packet/index.js';
import { NET, TC, XDP, drops, expectPacket, rootTest, setup, writeBackend, writeService, type Env } from './_fixture.js';
import { CLIENT_MAC, NODE2_MAC, OVERLAY_MAC, OVERLAY_MTU, OVERLAY_POD, UPLINK_MAC, VTEP4_MAC, forwarded, wireNode1, wireOverlay } from './_node1.js';
import { fromPeer, rewrite, tcp, udp } from './_packets.js';

/** A pod of a second cluster CIDR (a cluster that grew), and a source in no cluster CIDR. */
const SECOND_CIDR = '198.19.128.0/24';
const POD_OF_SECOND_CIDR = '198.19.128.10';
const NOT_A_POD = '198.18.1.5';
const toNode2 = { src: UPLINK_MAC, dst: NODE2_MAC };

rootTest("no local-traffic detector (kube-proxy's default, no clusterCIDR): every pod keeps its address to a ClusterIP", async (t) => {
  const env = await setup(t, { clusterCidrs: [] });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  for (const [i, src] of [NET.pod1a, POD_OF_SECOND_CIDR, NOT_A_POD].entries()) {
    const syn = tcp(src, 40000 + i, NET.clusterIp, 80);
    const r = env.send('tcPodIngress', syn);
    t.is(r.verdict, TC.OK, src);
    expectPacket(t, r.out, rewrite(syn, { dst: NET.pod2a, dport: 8080 }), src);
  }
});

rootTest('DETECT_LOCAL: sources in any cluster CIDR keep their address; others are masqueraded and forwarded by the datapath', async (t) => {
  const env = await setup(t, { clusterCidrs: [NET.podCidr, SECOND_CIDR] });
  wireNode1(env);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, flags: SvcFlags.DETECT_LOCAL, backends: [1] });
  for (const [i, src] of [NET.pod1a, POD_OF_SECOND_CIDR].entries()) {
    const syn = tcp(src, 40000 + i, NET.clusterIp, 80);
    expectPacket(t, env.send('tcPodIngress', syn).out, rewrite(syn, { dst: NET.pod2a, dport: 8080 }), `${src} keeps its address`);
  }
  const syn = tcp(NOT_A_POD, 40009, NET.clusterIp, 80);
  const r = env.send('tcPodIngress', syn);
  t.is(r.verdict, TC.REDIRECT, 'a source of the node on a pod veth is forwarded by the datapath, never left to the stack');
  const sport = parsePacket(r.out).tcp!.sport;
  expectPacket(t, r.out, forwarded(rewrite(syn, { src: NET.node1, sport, dst: NET.pod2a, dport: 8080 }), toNode2));
});

rootTest('MASQUERADE (masqueradeAll): every pod flow is masqueraded and forwarded; its reply is reversed on the uplink', async (t) => {
  const env = await setup(t);
  wireNode1(env);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, flags: SvcFlags.MASQUERADE | SvcFlags.DETECT_LOCAL, backends: [1] });
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80);
  const r = env.send('tcPodIngress', syn);
  t.is(r.verdict, TC.REDIRECT);
  const sport = parsePacket(r.out).tcp!.sport;
  t.true(sport >= 61000 && sport <= 65535, `SNAT port ${sport}`);
  expectPacket(t, r.out, forwarded(rewrite(syn, { src: NET.node1, sport, dst: NET.pod2a, dport: 8080 }), toNode2));

  const synack = tcp(NET.pod2a, 8080, NET.node1, sport, ['SYN', 'ACK'], { ack: 1001, eth: fromPeer });
  const back = env.send('tcUplinkIngress', synack);
  expectPacket(t, back.out, rewrite(synack, { src: NET.clusterIp, sport: 80, dst: NET.pod1a, dport: 40000 }));
});

rootTest('ETP Local NodePort with DETECT_LOCAL: a pod of another node is cluster traffic (every endpoint, masqueraded to come back); outside clients get local endpoints only', async (t) => {
  const env = await setup(t);
  wireNode1(env);
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8080, local: true });
  writeBackend(env.dp, { id: 2, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, {
    svcId: 1, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT,
    flags: SvcFlags.ETP_LOCAL | SvcFlags.DETECT_LOCAL, backends: [2], localBackends: [1],
  });

  const fromPod = tcp(NET.pod2b, 40000, NET.node1, 30080, ['SYN'], { eth: fromPeer });
  const r = env.send('tcUplinkIngress', fromPod);
  t.is(r.verdict, TC.REDIRECT);
  const sport = parsePacket(r.out).tcp!.sport;
  expectPacket(t, r.out, forwarded(rewrite(fromPod, { src: NET.node1, sport, dst: NET.pod2a, dport: 8080 }), toNode2), 'cluster source: all endpoints');

  const fromClient = tcp(NET.client, 40000, NET.node1, 30080, ['SYN'], { eth: fromPeer });
  expectPacket(t, env.send('tcUplinkIngress', fromClient).out, rewrite(fromClient, { dst: NET.pod1a, dport: 8080 }), 'outside client: local endpoint, address kept');
});

/** Node 1 with NodePort 30080 → its own pod1a:8080, and the client's flow to it (50000) open. */
async function localNodePortFlow(t: ExecutionContext): Promise<Env> {
  const env = await setup(t);
  wireNode1(env);
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8080, local: true });
  writeService(env.dp, { svcId: 1, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1] });
  env.send('tcUplinkIngress', tcp(NET.client, 50000, NET.node1, 30080, ['SYN'], { eth: fromPeer }));
  return env;
}

/** An __sk_buff for BPF_PROG_TEST_RUN describing a GSO packet (offsets from the kernel's BTF). */
function gsoContext(gsoSize: number, segs: number): Buffer {
  const ctx = Buffer.alloc(192);
  ctx.writeUInt32LE(segs, 164); // gso_segs
  ctx.writeUInt32LE(gsoSize, 176); // gso_size
  return ctx;
}

rootTest('a TSO/GRO aggregate larger than the MTU is forwarded whole (the FIB check is GSO-aware)', async (t) => {
  const env = await localNodePortFlow(t);

  // A local backend's download: 2 segments of 1448 bytes in one skb, as TSO hands it to the veth.
  const data = tcp(NET.pod1a, 8080, NET.client, 50000, ['ACK'], { seq: 5000, ack: 1001, payload: 'x'.repeat(2 * 1448) });
  const r = env.run('tcPodIngress', buildPacket(data), { ctx: gsoContext(1448, 2) });
  t.is(r.retval, TC.REDIRECT, 'forwarded to the client, not handed to the stack as a martian');
  expectPacket(t, r.data, forwarded(rewrite(data, { src: NET.node1, sport: 30080 }), { src: UPLINK_MAC, dst: CLIENT_MAC }));
});

/**
 * A translated packet whose source became ours, or the node's own, that a router would answer:
 * its sender gets the answer, about the packet as it sent it, from the node.
 */
function answered(out: Buffer, to: string, type: number, code: number, rest: number, sent: PacketSpec) {
  const p = parsePacket(out);
  return {
    route: [p.ip!.src, p.ip!.dst],
    icmp: [p.icmp?.type, p.icmp?.code, p.icmp?.rest],
    quote: p.payload.toString('hex'),
    checksums: checksumProblems(out),
    want: { route: [NET.node1, to], icmp: [type, code, rest], quote: buildPacket(sent).subarray(14, 14 + 28).toString('hex') },
  };
}

rootTest('TTL 1 to a NodePort masqueraded to another node: ICMP time exceeded to the client, quoting what it sent (tc and XDP)', async (t) => {
  const env = await setup(t);
  wireNode1(env);
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 2, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [2] });
  for (const [i, [prog, bounce]] of ([['tcUplinkIngress', TC.REDIRECT], ['xdpUplink', XDP.TX]] as const).entries()) {
    const syn: PacketSpec = { ...tcp(NET.client, 50000 + i, NET.node1, 30080, ['SYN'], { eth: fromPeer }), ip: { src: NET.client, dst: NET.node1, id: 1, df: true, ttl: 1 } };
    const r = env.send(prog, syn);
    t.is(r.verdict, bounce, `${prog}: back out of the uplink`);
    const a = answered(r.out, NET.client, 11, 0, 0, syn);
    t.deepEqual([a.route, a.icmp, a.quote, a.checksums], [a.want.route, a.want.icmp, a.want.quote, []], prog);
  }
  t.is(drops(env.dp, DropReason.TTL_EXCEEDED), 2n);
});

rootTest('too big for the uplink (not GSO) from a local backend answering a NodePort: fragmentation needed to the backend with DF, sent on whole without', async (t) => {
  const env = await localNodePortFlow(t);

  const big = tcp(NET.pod1a, 8080, NET.client, 50000, ['ACK'], { seq: 5000, ack: 1001, payload: 'x'.repeat(2000) });
  const r = env.send('tcPodIngress', big);
  t.is(r.verdict, TC.REDIRECT, 'back out of the pod\'s veth');
  const a = answered(r.out, NET.pod1a, 3, 4, 1500, big);
  t.deepEqual([a.route, a.icmp, a.quote, a.checksums], [a.want.route, a.want.icmp, a.want.quote, []], 'PMTU discovery for the backend, about its own packet');

  const noDf: PacketSpec = { ...big, ip: { ...big.ip, df: false } };
  const whole = env.send('tcPodIngress', noDf);
  t.is(whole.verdict, TC.REDIRECT, 'no DF: cannot be fragmented here, nor left to the stack: it goes whole, for the device to carry or drop');
  t.deepEqual(parsePacket(whole.out).ip, parsePacket(buildPacket(forwarded(rewrite(noDf, { src: NET.node1, sport: 30080 }), { src: UPLINK_MAC, dst: CLIENT_MAC }))).ip);
  t.is(drops(env.dp, DropReason.MTU_EXCEEDED), 1n, 'the answered one only');
});

rootTest('a NodePort masqueraded into a VXLAN overlay (flannel): too big for it without DF goes into the VXLAN device whole, which fragments the outer packet; with DF the client hears its MTU', async (t) => {
  const env = await setup(t);
  wireNode1(env);
  wireOverlay(env);
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 4, addr: OVERLAY_POD, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: '0.0.0.0', port: 30080, proto: IPPROTO.UDP, kind: SvcKind.NODE_PORT, backends: [4] });

  // A 1500-byte datagram (or fragment: an 8 KB datagram's first) from an outside client, whose MTU is 1500.
  const datagram: PacketSpec = { ...udp(NET.client, 50000, NET.node1, 30080, 'x'.repeat(1472), { eth: fromPeer }), ip: { src: NET.client, dst: NET.node1, id: 7, df: false } };
  const r = env.send('tcUplinkIngress', datagram);
  t.is(r.verdict, TC.REDIRECT, 'into the overlay, not dropped');
  const out = parsePacket(r.out);
  t.like(out, { eth: { src: OVERLAY_MAC, dst: VTEP4_MAC }, ip: { src: NET.node1, dst: OVERLAY_POD, ttl: 63, df: false } });
  t.is(r.out.length, buildPacket(datagram).length, 'whole');
  t.deepEqual(checksumProblems(r.out), []);

  const withDf: PacketSpec = { ...datagram, udp: { sport: 50001, dport: 30080 }, ip: { ...datagram.ip, df: true } };
  const refused = env.send('tcUplinkIngress', withDf);
  t.is(refused.verdict, TC.REDIRECT, 'back out of the uplink');
  const a = answered(refused.out, NET.client, 3, 4, OVERLAY_MTU, withDf);
  t.deepEqual([a.route, a.icmp, a.quote, a.checksums], [a.want.route, a.want.icmp, a.want.quote, []], 'PMTU discovery for the client: the overlay\'s MTU');
  t.is(drops(env.dp, DropReason.MTU_EXCEEDED), 1n, 'the answered one only');
});

rootTest('too big for a local pod\'s smaller MTU, from outside to a NodePort: fragmentation needed to the client about what it sent (not the stack\'s, about the translated packet)', async (t) => {
  const env = await setup(t);
  wireNode1(env);
  const ns = basename(env.netns);
  const ip = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args]);
  ip('link', 'add', 'pods0', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'pods0p');
  ip('link', 'set', 'pods0', 'up');
  ip('link', 'set', 'pods0p', 'up');
  ip('route', 'add', '198.18.129.0/24', 'dev', 'pods0');
  ip('neigh', 'add', NET.pod1a, 'lladdr', '02:00:00:00:01:99', 'dev', 'pods0', 'nud', 'permanent');
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8080, local: true });
  writeService(env.dp, { svcId: 1, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1] });
  t.is(env.send('tcUplinkIngress', tcp(NET.client, 50000, NET.node1, 30080, ['SYN'], { eth: fromPeer })).verdict, TC.REDIRECT);

  const big = tcp(NET.client, 50000, NET.node1, 30080, ['ACK'], { seq: 1001, ack: 1, payload: 'x'.repeat(1440), eth: fromPeer });
  const r = env.send('tcUplinkIngress', big);
  t.is(r.verdict, TC.REDIRECT, 'back out of the uplink');
  const a = answered(r.out, NET.client, 3, 4, 1400, big);
  t.deepEqual([a.route, a.icmp, a.quote, a.checksums], [a.want.route, a.want.icmp, a.want.quote, []]);
});

rootTest('what XDP translated but could not forward (too big, not GSO) is finished by tc, which answers about the packet as sent (from conntrack)', async (t) => {
  const env = await setup(t);
  wireNode1(env);
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 2, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [2] });
  const big = tcp(NET.client, 50000, NET.node1, 30080, ['SYN'], { payload: 'x'.repeat(1600), eth: fromPeer });
  const x = env.send('xdpUplink', big);
  t.is(x.verdict, XDP.PASS, 'XDP: translated, passed on to tc');
  t.is(parsePacket(x.out).ip!.dst, NET.pod2a);
  const r = env.run('tcUplinkIngress', x.out);
  t.is(r.retval, TC.REDIRECT);
  const a = answered(r.data, NET.client, 3, 4, 1500, big);
  t.deepEqual([a.route, a.icmp, a.quote, a.checksums], [a.want.route, a.want.icmp, a.want.quote, []]);
});
