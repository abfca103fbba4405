/**
 * ICMP errors about translated flows are reverse-translated like the flow's replies: the quoted
 * packet back to what the client sent, the outer destination to the client, the outer source to
 * the frontend when the backend wrote the error (a router on the way keeps its own). The quote's
 * IPv4 and L4 checksums and the ICMP checksum must all come out right, with a full quote and
 * with the RFC 792 minimum (IP header + 8 bytes).
 */
import { IPPROTO, SvcKind } from '../../ts/abi/index.js';
import { buildPacket, parsePacket, type PacketSpec } from '../../ts/packet/index.js';
import { NET, TC, XDP, expectPacket, rootTest, setup, writeBackend, writeService } from './_fixture.js';
import { fromPeer, rewrite, tcp, udp } from './_packets.js';

const DEST_UNREACH = 3;
const PORT_UNREACH = 3;
const FRAG_NEEDED = 4;
const ROUTER = '198.18.0.1';

/** An ICMP error from `from` to `to` quoting `quoted` (its IP packet, cut to `quoteLen` bytes). */
function icmpError(from: string, to: string, code: number, quoted: PacketSpec, quoteLen?: number, eth?: { src: string; dst: string }): PacketSpec {
  const ip = buildPacket(quoted).subarray(14);
  return {
    ...(eth ? { eth } : {}),
    ip: { src: from, dst: to, id: 0x7777 },
    icmp: { type: DEST_UNREACH, code, rest: code === FRAG_NEEDED ? 1400 : 0 },
    payload: Buffer.from(quoteLen === undefined ? ip : ip.subarray(0, quoteLen)),
  };
}

rootTest('ICMP port unreachable from a remote backend: reversed on the way into the client pod (full quote, UDP)', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 5353, proto: IPPROTO.UDP });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [1] });
  const q = udp(NET.pod1a, 40000, NET.clusterIp, 53, 'a question');
  const fwd = env.send('tcPodIngress', q);
  const translated = rewrite(q, { dst: NET.pod2a, dport: 5353 });
  expectPacket(t, fwd.out, translated);

  const err = icmpError(NET.pod2a, NET.pod1a, PORT_UNREACH, translated);
  const r = env.send('tcPodEgress', err);
  t.is(r.verdict, TC.OK);
  expectPacket(t, r.out, icmpError(NET.clusterIp, NET.pod1a, PORT_UNREACH, q));
});

rootTest('ICMP port unreachable from a local backend: reversed as it leaves the backend pod', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod1b, port: 5353, proto: IPPROTO.UDP, local: true });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [1] });
  const q = udp(NET.pod1a, 40001, NET.clusterIp, 53);
  const translated = rewrite(q, { dst: NET.pod1b, dport: 5353 });
  expectPacket(t, env.send('tcPodIngress', q).out, translated);

  const r = env.send('tcPodIngress', icmpError(NET.pod1b, NET.pod1a, PORT_UNREACH, translated));
  t.is(r.verdict, TC.OK);
  expectPacket(t, r.out, icmpError(NET.clusterIp, NET.pod1a, PORT_UNREACH, q));
});

rootTest('ICMP fragmentation needed from a router, about a masqueraded NodePort flow: back to the client (8-byte quote, TCP)', async (t) => {
  const env = await setup(t);
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1] });
  const data = tcp(NET.client, 50000, NET.node1, 30080, ['SYN'], { eth: fromPeer });
  const fwd = env.send('tcUplinkIngress', data);
  const sport = parsePacket(fwd.out).tcp!.sport;
  const translated = rewrite(data, { src: NET.node1, sport, dst: NET.pod2a, dport: 8080 });
  expectPacket(t, fwd.out, translated);

  // A router between the nodes: its address stays the source; the quote is the minimum.
  const fromRouter = env.send('tcUplinkIngress', icmpError(ROUTER, NET.node1, FRAG_NEEDED, translated, 28, fromPeer));
  t.is(fromRouter.verdict, TC.OK, 'no route to the client in this namespace: on to the stack');
  expectPacket(t, fromRouter.out, icmpError(ROUTER, NET.client, FRAG_NEEDED, data, 28, fromPeer));

  // The backend itself: the error comes from the frontend (the node's address), full quote.
  const fromBackend = env.send('tcUplinkIngress', icmpError(NET.pod2a, NET.node1, PORT_UNREACH, translated, undefined, fromPeer));
  expectPacket(t, fromBackend.out, icmpError(NET.node1, NET.client, PORT_UNREACH, data, undefined, fromPeer));

  // XDP leaves ICMP to tc.
  const err = icmpError(ROUTER, NET.node1, FRAG_NEEDED, translated, 28, fromPeer);
  const x = env.send('xdpUplink', err);
  t.is(x.verdict, XDP.PASS);
  expectPacket(t, x.out, err);
});

rootTest('ICMP errors about no tracked flow, and other ICMP, pass untouched', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 5353, proto: IPPROTO.UDP });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [1] });
  const stray = icmpError(NET.pod2a, NET.pod1a, PORT_UNREACH, udp(NET.pod1a, 40000, NET.pod2a, 5353));
  const echo: PacketSpec = { ip: { src: NET.pod2a, dst: NET.pod1a }, icmp: { type: 8, code: 0, rest: 0x00010001 }, payload: 'ping' };
  for (const p of [stray, echo]) {
    for (const prog of ['tcPodEgress', 'tcPodIngress', 'tcUplinkIngress'] as const) {
      const r = env.send(prog, p);
      t.is(r.verdict, TC.OK, prog);
      expectPacket(t, r.out, p, prog);
    }
  }
});
