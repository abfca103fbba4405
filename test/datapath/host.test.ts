/**
 * The node's own traffic to service addresses, on the egress of the service device (where the node
 * routes the Service ranges): translated as traffic of this node (from the node address, which
 * it keeps, port included: the node's socket owns the port, and a resolver's queries would
 * otherwise use up the SNAT range), forwarded by the datapath; its reply comes back to the node and is reversed by the uplink (or the backend's
 * veth), then left to the stack for local delivery. No endpoints: the rejection goes back in.
 */
import { IPPROTO, SvcFlags } from '../../ts/abi/index.js';
import { parsePacket } from '../../ts/packet/index.js';
import { NET, TC, expectPacket, rootTest, setup, writeBackend, writeService } from './_fixture.js';
import { NODE2_MAC, UPLINK_MAC, wireNode1 } from './_node1.js';
import { fromPeer, rewrite, tcp, udp } from './_packets.js';

const SVC0_MAC = '02:00:00:00:00:5c';
const fromHost = { src: SVC0_MAC, dst: SVC0_MAC }; // what a NOARP device's neighbour gives

rootTest('host → ClusterIP: masqueraded to the node, forwarded by the datapath; the reply reversed on the uplink for local delivery', async (t) => {
  const env = await setup(t);
  wireNode1(env);

  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeBackend(env.dp, { id: 2, addr: NET.pod2a, port: 5353, proto: IPPROTO.UDP });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  writeService(env.dp, { svcId: 2, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [2] });

  const syn = tcp(NET.node1, 40000, NET.clusterIp, 80, ['SYN'], { eth: fromHost });
  const r = env.send('tcHostEgress', syn);
  t.is(r.verdict, TC.REDIRECT);
  const sport = parsePacket(r.out).tcp!.sport;
  t.is(sport, 40000, 'from the node address already: address and port kept');
  const out = rewrite(syn, { sport, dst: NET.pod2a, dport: 8080 });
  expectPacket(t, r.out, { ...out, eth: { src: UPLINK_MAC, dst: NODE2_MAC }, ip: { ...out.ip, ttl: 63 } });

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
