/**
 * ClusterIP from a pod of this node: DNAT at tc_pod ingress, conntrack, reverse NAT of the reply at
 * tc_pod egress, several ports, UDP, and packets that are nobody's service.
 */
import { CtDir, IPPROTO } from '../../ts/abi/index.js';
import { NET, TC, expectPacket, rootTest, setup, svcStats, writeBackend, writeService } from './_fixture.js';
import { rewrite, tcp, udp } from './_packets.js';

rootTest('ClusterIP TCP: DNAT to the backend, conntrack both ways, reply reverse-NATed', async (t) => {
  const { dp, send } = await setup(t);
  writeBackend(dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(dp, { svcId: 7, addr: NET.clusterIp, port: 80, backends: [1] });

  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN'], { seq: 111 });
  const r1 = send('tcPodIngress', syn);
  t.is(r1.verdict, TC.OK);
  expectPacket(t, r1.out, rewrite(syn, { dst: NET.pod2a, dport: 8080 }));

  const fwd = dp.maps.ct4.get({ saddr: NET.pod1a, daddr: NET.clusterIp, sport: 40000, dport: 80, proto: IPPROTO.TCP, dir: CtDir.FWD, pad: 0 });
  t.like(fwd, { nat_saddr: NET.pod1a, nat_sport: 40000, nat_daddr: NET.pod2a, nat_dport: 8080, backend_id: 1, svc_id: 7, flags: 0 });
  const rev = dp.maps.ct4.get({ saddr: NET.pod2a, daddr: NET.pod1a, sport: 8080, dport: 40000, proto: IPPROTO.TCP, dir: CtDir.REPLY, pad: 0 });
  t.like(rev, { nat_saddr: NET.clusterIp, nat_sport: 80, nat_daddr: NET.pod1a, nat_dport: 40000, backend_id: 1, svc_id: 7 });

  // The SYN-ACK comes back from the backend's node, to the pod's interface.
  const synack = tcp(NET.pod2a, 8080, NET.pod1a, 40000, ['SYN', 'ACK'], { seq: 999, ack: 112 });
  const r2 = send('tcPodEgress', synack);
  t.is(r2.verdict, TC.OK);
  expectPacket(t, r2.out, rewrite(synack, { src: NET.clusterIp, sport: 80 }));

  // Established: the same backend, without a new flow.
  const ack = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['ACK'], { seq: 112, ack: 1000, payload: 'GET / HTTP/1.0\r\n\r\n' });
  const r3 = send('tcPodIngress', ack);
  t.is(r3.verdict, TC.OK);
  expectPacket(t, r3.out, rewrite(ack, { dst: NET.pod2a, dport: 8080 }));
  t.like(svcStats(dp, 7), { packets: 2n, new_flows: 1n });
});

rootTest('ClusterIP with several ports: each port its own frontend and backends', async (t) => {
  const { dp, send } = await setup(t);
  writeBackend(dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeBackend(dp, { id: 2, addr: NET.pod2a, port: 8443 });
  writeService(dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  writeService(dp, { svcId: 2, addr: NET.clusterIp, port: 443, backends: [2] });

  const http = tcp(NET.pod1a, 40001, NET.clusterIp, 80);
  expectPacket(t, send('tcPodIngress', http).out, rewrite(http, { dst: NET.pod2a, dport: 8080 }));
  const https = tcp(NET.pod1a, 40002, NET.clusterIp, 443);
  expectPacket(t, send('tcPodIngress', https).out, rewrite(https, { dst: NET.pod2a, dport: 8443 }));
  // A port the service does not have is not translated.
  const other = tcp(NET.pod1a, 40003, NET.clusterIp, 8080);
  const r = send('tcPodIngress', other);
  t.is(r.verdict, TC.OK);
  expectPacket(t, r.out, other);
});

rootTest('ClusterIP UDP: DNAT and reverse NAT, the same port number on TCP is another frontend', async (t) => {
  const { dp, send } = await setup(t);
  writeBackend(dp, { id: 1, addr: NET.pod2b, port: 5353, proto: IPPROTO.UDP });
  writeBackend(dp, { id: 2, addr: NET.pod2a, port: 5300 });
  writeService(dp, { svcId: 3, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [1] });
  writeService(dp, { svcId: 4, addr: NET.clusterIp, port: 53, proto: IPPROTO.TCP, backends: [2] });

  const q = udp(NET.pod1a, 33333, NET.clusterIp, 53, 'query');
  const r1 = send('tcPodIngress', q);
  t.is(r1.verdict, TC.OK);
  expectPacket(t, r1.out, rewrite(q, { dst: NET.pod2b, dport: 5353 }));
  const a = udp(NET.pod2b, 5353, NET.pod1a, 33333, 'answer');
  const r2 = send('tcPodEgress', a);
  expectPacket(t, r2.out, rewrite(a, { src: NET.clusterIp, sport: 53 }));

  const tq = tcp(NET.pod1a, 33334, NET.clusterIp, 53);
  expectPacket(t, send('tcPodIngress', tq).out, rewrite(tq, { dst: NET.pod2a, dport: 5300 }));
});

rootTest('UDP without a checksum keeps none after NAT', async (t) => {
  const { dp, send } = await setup(t);
  writeBackend(dp, { id: 1, addr: NET.pod2b, port: 5353, proto: IPPROTO.UDP });
  writeService(dp, { svcId: 3, addr: NET.clusterIp, port: 53, proto: IPPROTO.UDP, backends: [1] });
  const q = udp(NET.pod1a, 33333, NET.clusterIp, 53, 'query', { noChecksum: true });
  expectPacket(t, send('tcPodIngress', q).out, rewrite(q, { dst: NET.pod2b, dport: 5353 }));
});

rootTest('packets of no service pass untouched, on every hook', async (t) => {
  const { dp, send } = await setup(t);
  writeBackend(dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  const frames = [
    tcp(NET.pod1a, 40000, NET.pod2a, 8080),
    tcp(NET.pod1a, 40000, NET.clusterIp2, 80),
    udp(NET.pod1a, 40000, NET.client, 53),
    { ip: { src: NET.pod1a, dst: NET.clusterIp }, icmp: { type: 8, code: 0, rest: 0x00010001 }, payload: 'ping' },
    { ip: { src: NET.pod1a, dst: NET.clusterIp, proto: IPPROTO.SCTP }, payload: Buffer.alloc(16, 1) },
  ];
  for (const f of frames) {
    for (const prog of ['tcPodIngress', 'tcPodEgress', 'tcUplinkIngress'] as const) {
      const r = send(prog, f);
      t.is(r.verdict, TC.OK, prog);
      expectPacket(t, r.out, f, prog);
    }
    const x = send('xdpUplink', f);
    t.is(x.verdict, 2 /* XDP_PASS */);
    expectPacket(t, x.out, f, 'xdpUplink');
  }
  t.is(dp.maps.ct4.entries().length, 0, 'no conntrack entries for non-service traffic');
});

rootTest('a reply of a flow this node never translated is left alone', async (t) => {
  const { send } = await setup(t);
  const f = tcp(NET.pod2a, 8080, NET.pod1a, 40000, ['SYN', 'ACK']);
  const r = send('tcPodEgress', f);
  t.is(r.verdict, TC.OK);
  expectPacket(t, r.out, f);
});
