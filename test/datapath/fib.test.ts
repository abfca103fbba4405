/**
 * Forwarding translated packets: bpf_fib_lookup + redirect with the next hop's MAC and a
 * decremented TTL. With no neighbour entry yet, tc hands the packet to bpf_redirect_neigh and XDP
 * passes it on translated, for tc to finish. A packet whose source is now one of the node's
 * addresses (masqueraded, a NodePort reply) is never left to the stack, which would drop it as a
 * martian: tc forwards it, from the uplink and from a pod's veth. Routes and neighbours live in
 * the test's private namespace only.
 */
import { SvcKind } from '../../ts/abi/index.js';
import { parsePacket, type PacketSpec } from '../../ts/packet/index.js';
import { NET, TC, XDP, expectPacket, rootTest, setup, writeBackend, writeService } from './_fixture.js';
import { CLIENT_MAC, NODE2_MAC, UPLINK_MAC, forwarded, wireNode1 } from './_node1.js';
import { fromPeer, rewrite, tcp } from './_packets.js';

rootTest('FIB: translated packets leave by redirect to the next hop; an unknown neighbour: redirect_neigh on tc, the stack-bound pass on XDP', async (t) => {
  const env = await setup(t);
  wireNode1(env);
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeBackend(env.dp, { id: 2, addr: '198.18.131.10', port: 8080 });
  writeService(env.dp, { svcId: 1, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1] });
  writeService(env.dp, { svcId: 2, addr: '0.0.0.0', port: 30081, kind: SvcKind.NODE_PORT, backends: [2] });

  for (const [prog, redirect, noNeigh] of [['tcUplinkIngress', TC.REDIRECT, TC.REDIRECT], ['xdpUplink', XDP.REDIRECT, XDP.PASS]] as const) {
    const syn = tcp(NET.client, 50000, NET.node1, 30080, ['SYN'], { eth: fromPeer });
    const r = env.send(prog, syn);
    t.is(r.verdict, redirect, prog);
    const sport = parsePacket(r.out).tcp!.sport;
    expectPacket(t, r.out, forwarded(rewrite(syn, { src: NET.node1, sport, dst: NET.pod2a, dport: 8080 }), { src: UPLINK_MAC, dst: NODE2_MAC }), prog);

    // The reply, reversed, goes back to the client the same way.
    const synack = tcp(NET.pod2a, 8080, NET.node1, sport, ['SYN', 'ACK'], { ack: 1001, eth: fromPeer });
    const back = env.send(prog, synack);
    t.is(back.verdict, redirect, `${prog}: reply`);
    expectPacket(t, back.out, forwarded(rewrite(synack, { src: NET.node1, sport: 30080, dst: NET.client, dport: 50000 }), { src: UPLINK_MAC, dst: CLIENT_MAC }), `${prog}: reply`);

    const other = tcp(NET.client, 50001, NET.node1, 30081, ['SYN'], { eth: fromPeer });
    const p = env.send(prog, other);
    t.is(p.verdict, noNeigh, `${prog}: no neighbour entry`);
    const sport2 = parsePacket(p.out).tcp!.sport;
    const translated = rewrite(other, { src: NET.node1, sport: sport2, dst: '198.18.131.10', dport: 8080 });
    // redirect_neigh fills in the MACs later; XDP leaves the frame as it was, but for NAT.
    expectPacket(t, p.out, prog === 'xdpUplink' ? translated : forwarded(translated), `${prog}: no neighbour`);
  }
});

rootTest('FIB: what XDP translated but could not forward (source ours) is finished by tc; a stranger with our source is left to the stack', async (t) => {
  const env = await setup(t);
  wireNode1(env);
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 2, addr: '198.18.131.10', port: 8080 });
  writeService(env.dp, { svcId: 2, addr: '0.0.0.0', port: 30081, kind: SvcKind.NODE_PORT, backends: [2] });

  const syn = tcp(NET.client, 50001, NET.node1, 30081, ['SYN'], { eth: fromPeer });
  const x = env.send('xdpUplink', syn);
  t.is(x.verdict, XDP.PASS);
  const sport = parsePacket(x.out).tcp!.sport;
  const translated = rewrite(syn, { src: NET.node1, sport, dst: '198.18.131.10', dport: 8080 });
  expectPacket(t, x.out, translated, 'XDP: translated, passed');

  const tc = env.run('tcUplinkIngress', x.out);
  t.is(tc.retval, TC.REDIRECT, 'tc: the translated packet goes to redirect_neigh, not to the stack');
  expectPacket(t, tc.data, forwarded(translated), 'tc: untouched but for the TTL');

  // XDP reversed a reply whose next hop is unknown: tc finishes that too (the flow's forward entry).
  const reversed = rewrite(tcp('198.18.131.10', 8080, NET.node1, sport, ['SYN', 'ACK'], { ack: 1002, eth: fromPeer }), { src: NET.node1, sport: 30081, dst: NET.client, dport: 50001 });
  const tcReply = env.send('tcUplinkIngress', reversed);
  t.is(tcReply.verdict, TC.REDIRECT, 'tc: a reversed reply with our source');
  expectPacket(t, tcReply.out, forwarded(reversed, { src: UPLINK_MAC, dst: CLIENT_MAC }), 'tc: reversed reply forwarded');

  // The same shape with no flow behind it is not ours to forward.
  const stranger = tcp(NET.node1, 61234, '198.18.131.10', 8080, ['SYN'], { eth: fromPeer });
  const s = env.send('tcUplinkIngress', stranger);
  t.is(s.verdict, TC.OK);
  expectPacket(t, s.out, stranger);
});

rootTest('FIB: a local backend answering a NodePort: reversed at its veth and forwarded to the client (never to the stack)', async (t) => {
  const env = await setup(t);
  wireNode1(env);
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8080, local: true });
  writeService(env.dp, { svcId: 1, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1] });

  const syn = tcp(NET.client, 50000, NET.node1, 30080, ['SYN'], { eth: fromPeer });
  t.is(env.send('tcUplinkIngress', syn).verdict, TC.OK, 'no route to the pod in this namespace: the stack delivers it');

  const synack = tcp(NET.pod1a, 8080, NET.client, 50000, ['SYN', 'ACK'], { ack: 1001 });
  const back = env.send('tcPodIngress', synack);
  t.is(back.verdict, TC.REDIRECT);
  expectPacket(t, back.out, forwarded(rewrite(synack, { src: NET.node1, sport: 30080 }), { src: UPLINK_MAC, dst: CLIENT_MAC }));
});
