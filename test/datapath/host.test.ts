/**
 * The node's own traffic (bpf/lib/hooks_node.h, lib/local.h):
 *   - to service addresses, on the egress of the service device (where the node routes the Service
 *     ranges): translated as traffic of this node (from the node address, which it keeps, port
 *     included: the node's socket owns the port, and a resolver's queries would otherwise use up the
 *     SNAT range), forwarded by the datapath; its reply comes back to the node and is reversed by the
 *     uplink (or the backend's veth), then left to the stack for local delivery. No endpoints: the
 *     rejection goes back in;
 *   - the node reaching its own NodePort: lo's egress translates it;
 *   - a reply to the node whose source becomes a node address: in through lo, never the stack's
 *     input path on another device (a martian there);
 *   - a hostNetwork endpoint of this node: the node's own connection reaches it through lo and its
 *     answer is reversed on lo's egress; an outside client's through the uplink, its answer
 *     reversed on the uplink's egress.
 */
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { basename } from 'node:path';

import { BackendFlags, IPPROTO, SvcFlags, SvcKind } from '../../ts/abi/index.js';
import { parsePacket, type PacketSpec } from '../../ts/packet/index.js';
import { NET, TC, expectPacket, rootTest, setup, writeBackend, writeService, type Env } from './_fixture.js';
import { NODE2_MAC, UPLINK_MAC, forwarded, wireNode1 } from './_node1.js';
import { fromPeer, rewrite, tcp, udp } from './_packets.js';

const SVC0_MAC = '02:00:00:00:00:5c';
const fromHost = { src: SVC0_MAC, dst: SVC0_MAC }; // what a NOARP device's neighbour gives
const LO_MAC = '00:00:00:00:00:00';
const onLo = { src: LO_MAC, dst: LO_MAC };
const HOST_PORT = 10250; // a hostNetwork endpoint's port on node 1

/** Node 1's namespace (_node1.ts), and its own pods' CIDR on the uplink. */
function wireNode1WithPods(env: Env): void {
  wireNode1(env);
  execFileSync('ip', ['-n', basename(env.netns), 'route', 'add', '198.18.129.0/24', 'dev', 'up0']);
}

function nodePort(env: Env, backend: { addr: string; port: number; local?: boolean }): void {
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, ...backend });
  writeService(env.dp, { svcId: 10, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1], ...(backend.local ? { localBackends: [1] } : {}) });
}

/**
 * A node's own flow to a backend on node 2, sent on `prog`: forwarded by the datapath out of the
 * uplink, from the node address already, so address and port are kept. Returns the source port.
 */
function expectForwardedFromNode(t: ExecutionContext, env: Env, prog: 'tcHostEgress' | 'tcLoEgress', syn: PacketSpec, to: { dst: string; dport: number }, why: string): number {
  const r = env.send(prog, syn);
  t.is(r.verdict, TC.REDIRECT, why);
  const sport = parsePacket(r.out).tcp!.sport;
  t.is(sport, syn.tcp!.sport, 'from the node address already: address and port kept');
  expectPacket(t, r.out, forwarded(rewrite(syn, { sport, ...to }), { src: UPLINK_MAC, dst: NODE2_MAC }));
  return sport;
}

// ─── through the service device ────────────────────────────────────────────────────────────────

rootTest('host → ClusterIP: masqueraded to the node, forwarded by the datapath; the reply reversed on the uplink for local delivery', async (t) => {
  const env = await setup(t);
  wireNode1(env);

  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeBackend(env.dp, { id: 2, addr: NET.pod2a, port: 5353, proto: IPPROTO.UDP });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  writeService(env.dp, { svcId: 2, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [2] });

  const syn = tcp(NET.node1, 40000, NET.clusterIp, 80, ['SYN'], { eth: fromHost });
  const sport = expectForwardedFromNode(t, env, 'tcHostEgress', syn, { dst: NET.pod2a, dport: 8080 }, 'forwarded by the datapath');

  const synack = tcp(NET.pod2a, 8080, NET.node1, sport, ['SYN', 'ACK'], { ack: 1001, eth: fromPeer });
  const back = env.send('tcUplinkIngress', synack);
  t.is(back.verdict, TC.OK, 'for this node: the stack delivers it');
  expectPacket(t, back.out, rewrite(synack, { src: NET.clusterIp, sport: 80, dport: 40000 }));

  const q = udp(NET.node1, 40001, NET.clusterIp, 53, 'q', { eth: fromHost });
  const u = env.send('tcHostEgress', q);
  t.is(u.verdict, TC.REDIRECT, 'UDP');
  t.like(parsePacket(u.out).ip, { src: NET.node1, dst: NET.pod2a });
});

rootTest('host → ClusterIP with no endpoints: the RST goes back in through the service device', async (t) => {
  const env = await setup(t);
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, flags: SvcFlags.REJECT, backends: [] });
  const syn = tcp(NET.node1, 40000, NET.clusterIp, 80, ['SYN'], { eth: fromHost });
  const r = env.send('tcHostEgress', syn);
  t.is(r.verdict, TC.REDIRECT);
  t.like(parsePacket(r.out), { ip: { src: NET.clusterIp, dst: NET.node1 }, tcp: { sport: 80, dport: 40000, flagNames: ['RST', 'ACK'] } });
});

rootTest('host → anything else on the service device: untouched', async (t) => {
  const env = await setup(t);
  const p = tcp(NET.node1, 40000, NET.clusterIp2, 80, ['SYN'], { eth: fromHost });
  const r = env.send('tcHostEgress', p);
  t.is(r.verdict, TC.OK);
  expectPacket(t, r.out, p);
});

// ─── through lo, and hostNetwork endpoints ─────────────────────────────────────────────────────

rootTest('node → its own NodePort (through lo): translated on lo, forwarded; the reply comes in through lo', async (t) => {
  const env = await setup(t);
  wireNode1WithPods(env);
  nodePort(env, { addr: NET.pod2a, port: 8080 });

  const syn = tcp(NET.node1, 40000, NET.node1, 30080, ['SYN'], { eth: onLo });
  const sport = expectForwardedFromNode(t, env, 'tcLoEgress', syn, { dst: NET.pod2a, dport: 8080 }, 'forwarded by the datapath (lo would deliver it here)');

  // The reply, reversed on the uplink: from a node address to a node address.
  const synack = tcp(NET.pod2a, 8080, NET.node1, sport, ['SYN', 'ACK'], { ack: 1001, eth: fromPeer });
  const back = env.send('tcUplinkIngress', synack);
  t.is(back.verdict, TC.REDIRECT, 'in through lo, not to the stack on the uplink (martian source)');
  expectPacket(t, back.out, { ...rewrite(synack, { src: NET.node1, sport: 30080, dport: 40000 }), eth: onLo });
});

rootTest('node → its own NodePort, backend a pod of this node: the pod\'s reply comes in through lo', async (t) => {
  const env = await setup(t);
  wireNode1WithPods(env);
  nodePort(env, { addr: NET.pod1a, port: 8080, local: true });
  const syn = tcp(NET.node1, 40001, NET.node1, 30080, ['SYN'], { eth: onLo });
  const r = env.send('tcLoEgress', syn);
  t.is(r.verdict, TC.REDIRECT);
  const req = parsePacket(r.out);
  t.like(req.ip, { src: NET.node1, dst: NET.pod1a });

  const synack = tcp(NET.pod1a, 8080, NET.node1, req.tcp!.sport, ['SYN', 'ACK'], { ack: 1001 });
  const back = env.send('tcPodIngress', synack);
  t.is(back.verdict, TC.REDIRECT);
  expectPacket(t, back.out, { ...rewrite(synack, { src: NET.node1, sport: 30080, dport: 40001 }), eth: onLo });
});

rootTest('node → ClusterIP → a hostNetwork endpoint of this node: in through lo; its answer reversed on lo', async (t) => {
  const env = await setup(t);
  wireNode1WithPods(env);
  writeBackend(env.dp, { id: 1, addr: NET.node1, port: HOST_PORT, local: true });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 443, backends: [1], localBackends: [1] });

  const syn = tcp(NET.node1, 40002, NET.clusterIp, 443, ['SYN'], { eth: { src: '02:00:00:00:00:5c', dst: '02:00:00:00:00:5c' } });
  const r = env.send('tcHostEgress', syn);
  t.is(r.verdict, TC.REDIRECT, 'the service device is a dead end: in through lo');
  const req = parsePacket(r.out);
  const sport = req.tcp!.sport;
  expectPacket(t, r.out, { ...rewrite(syn, { sport, dst: NET.node1, dport: HOST_PORT }), eth: onLo });

  const synack = tcp(NET.node1, HOST_PORT, NET.node1, sport, ['SYN', 'ACK'], { ack: 1001, eth: onLo });
  const back = env.send('tcLoEgress', synack);
  t.is(back.verdict, TC.OK, 'lo delivers the reversed answer');
  expectPacket(t, back.out, rewrite(synack, { src: NET.clusterIp, sport: 443, dport: 40002 }));

  // Untouched: the node talking to itself, no service involved.
  const plain = tcp(NET.node1, 40003, NET.node1, 22, ['SYN'], { eth: onLo });
  const p = env.send('tcLoEgress', plain);
  t.is(p.verdict, TC.OK);
  expectPacket(t, p.out, plain);
});

rootTest('outside → NodePort → a hostNetwork endpoint of this node: delivered; its answer reversed on the uplink\'s egress', async (t) => {
  const env = await setup(t);
  wireNode1WithPods(env);
  nodePort(env, { addr: NET.node1, port: HOST_PORT, local: true });
  env.dp.maps.backends.set(1, { addr: NET.node1, port: HOST_PORT, proto: 6, flags: BackendFlags.LOCAL });

  const syn = tcp(NET.client, 50000, NET.node1, 30080, ['SYN'], { eth: fromPeer });
  const r = env.send('tcUplinkIngress', syn);
  t.is(r.verdict, TC.OK, 'for this node: the stack delivers it (the client\'s source is no martian)');
  expectPacket(t, r.out, rewrite(syn, { dport: HOST_PORT }));

  const synack = tcp(NET.node1, HOST_PORT, NET.client, 50000, ['SYN', 'ACK'], { ack: 1001, eth: { src: UPLINK_MAC, dst: '02:00:00:00:00:aa' } });
  const back = env.send('tcUplinkEgress', synack);
  t.is(back.verdict, TC.OK);
  expectPacket(t, back.out, rewrite(synack, { sport: 30080 }));

  // The node's own traffic out of the uplink that is no such reply: untouched.
  const other = udp(NET.node1, HOST_PORT, NET.client, 50001, 'x', { eth: { src: UPLINK_MAC, dst: '02:00:00:00:00:aa' } });
  const o = env.send('tcUplinkEgress', other);
  t.is(o.verdict, TC.OK);
  expectPacket(t, o.out, other);
});

rootTest('a node holding a load balancer IP reaches it from that address whatever loadBalancerSourceRanges say', async (t) => {
  const env = await setup(t);
  wireNode1WithPods(env);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.lbIp, port: 80, kind: SvcKind.LOAD_BALANCER, flags: SvcFlags.SOURCE_RANGES, backends: [1] });
  // No range lists anyone: every other source is dropped.
  const other = env.send('tcHostEgress', tcp(NET.node1, 40000, NET.lbIp, 80, ['SYN'], { eth: onLo }));
  t.is(other.verdict, TC.SHOT);
  const self = env.send('tcHostEgress', tcp(NET.lbIp, 40001, NET.lbIp, 80, ['SYN'], { eth: onLo }));
  t.is(self.verdict, TC.REDIRECT);
  t.like(parsePacket(self.out).ip, { src: NET.node1, dst: NET.pod2a });
});
