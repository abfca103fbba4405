/**
 * Port reuse after a service flow has closed. A client that reuses the source port of a closed
 * (RST or FIN) translated flow for a *direct* connection to the same backend sends a tuple whose
 * reply is the old flow's reply entry: the SYN retires the closing flow, so that the backend's
 * SYN-ACK passes untranslated (Linux conntrack would move the new flow to another port instead).
 * A new SYN to the service on a closing entry is a new flow, and its old reply entry goes too.
 * Live flows are never retired.
 */
import type { ExecutionContext } from 'ava';

import { CtDir, CtFlags, CtState, IPPROTO, SvcKind, ctClosing } from '../../ts/abi/index.js';
import { NET, TC, XDP, expectPacket, rootTest, setup, writeBackend, writeService, type Env } from './_fixture.js';
import { fromPeer, rewrite, tcp } from './_packets.js';

const ctKey = (saddr: string, sport: number, daddr: string, dport: number, dir: number) =>
  ({ saddr, daddr, sport, dport, proto: IPPROTO.TCP, dir, pad: 0 });

/** Opens pod1a:40000 → ClusterIP:80 (backend `backend`:8080), then closes it with `close`. */
function closedServiceFlow(t: ExecutionContext, env: Env, backend: string, replyProg: 'tcPodEgress' | 'tcPodIngress', close: 'RST' | 'FIN') {
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN'], { seq: 1000 });
  expectPacket(t, env.send('tcPodIngress', syn).out, rewrite(syn, { dst: backend, dport: 8080 }), 'service SYN');
  const synack = tcp(backend, 8080, NET.pod1a, 40000, ['SYN', 'ACK'], { seq: 5000, ack: 1001 });
  expectPacket(t, env.send(replyProg, synack).out, rewrite(synack, { src: NET.clusterIp, sport: 80 }), 'service SYN-ACK');
  const end = tcp(NET.pod1a, 40000, NET.clusterIp, 80, close === 'RST' ? ['RST'] : ['FIN', 'ACK'], { seq: 1001, ack: 5001 });
  expectPacket(t, env.send('tcPodIngress', end).out, rewrite(end, { dst: backend, dport: 8080 }), `service ${close}`);
  const fwd = env.dp.maps.ct4.get(ctKey(NET.pod1a, 40000, NET.clusterIp, 80, CtDir.FWD));
  t.true(ctClosing(fwd!.state), 'the service flow is closing');
}

const cases = [
  { where: 'remote backend', backend: NET.pod2a, local: false, replyProg: 'tcPodEgress' },
  { where: 'local backend', backend: NET.pod1b, local: true, replyProg: 'tcPodIngress' },
] as const;

for (const { where, backend, local, replyProg } of cases) {
  for (const close of ['RST', 'FIN'] as const) {
    rootTest(`port reuse, ${where}, after ${close}: a direct connection from the port of a closed service flow is not reverse-translated`, async (t) => {
      const env = await setup(t);
      writeBackend(env.dp, { id: 1, addr: backend, port: 8080, local });
      writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
      closedServiceFlow(t, env, backend, replyProg, close);

      // The same client port, straight to the backend: nobody's service.
      const syn = tcp(NET.pod1a, 40000, backend, 8080, ['SYN'], { seq: 90000 });
      const r = env.send('tcPodIngress', syn);
      t.is(r.verdict, TC.OK);
      expectPacket(t, r.out, syn, 'direct SYN');
      t.is(env.dp.maps.ct4.get(ctKey(backend, 8080, NET.pod1a, 40000, CtDir.REPLY)), null, 'the closed flow\'s reply entry is retired');
      t.is(env.dp.maps.ct4.get(ctKey(NET.pod1a, 40000, NET.clusterIp, 80, CtDir.FWD)), null, 'and its forward entry');

      // The backend's answer reaches the client as the backend sent it.
      const synack = tcp(backend, 8080, NET.pod1a, 40000, ['SYN', 'ACK'], { seq: 70000, ack: 90001 });
      const back = env.send(replyProg, synack);
      t.is(back.verdict, TC.OK);
      expectPacket(t, back.out, synack, 'direct SYN-ACK');

      // The direct connection carries on untouched, both ways.
      const ack = tcp(NET.pod1a, 40000, backend, 8080, ['ACK'], { seq: 90001, ack: 70001, payload: 'GET /' });
      expectPacket(t, env.send('tcPodIngress', ack).out, ack, 'direct ACK');
      const data = tcp(backend, 8080, NET.pod1a, 40000, ['ACK', 'PSH'], { seq: 70001, ack: 90006, payload: 'hello' });
      expectPacket(t, env.send(replyProg, data).out, data, 'direct data back');

      // Later, the port may serve the service again: a new flow.
      const again = tcp(NET.pod1a, 40001, NET.clusterIp, 80, ['SYN']);
      expectPacket(t, env.send('tcPodIngress', again).out, rewrite(again, { dst: backend, dport: 8080 }), 'service again');
    });
  }
}

rootTest('port reuse from outside: a direct SYN through the uplink (XDP, then tc) retires the closed NodePort flow of a local backend', async (t) => {
  const env = await setup(t);
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod1a, port: 8080, local: true });
  writeService(env.dp, { svcId: 10, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1] });

  for (const [prog, pass] of [['xdpUplink', XDP.PASS], ['tcUplinkIngress', TC.OK]] as const) {
    const sport = prog === 'xdpUplink' ? 50000 : 50001;
    const syn = tcp(NET.client, sport, NET.node1, 30080, ['SYN'], { eth: fromPeer });
    expectPacket(t, env.send(prog, syn).out, rewrite(syn, { dst: NET.pod1a, dport: 8080 }), `${prog}: NodePort SYN`);
    const rst = tcp(NET.client, sport, NET.node1, 30080, ['RST'], { seq: 1001, eth: fromPeer });
    expectPacket(t, env.send(prog, rst).out, rewrite(rst, { dst: NET.pod1a, dport: 8080 }), `${prog}: NodePort RST`);

    const direct = tcp(NET.client, sport, NET.pod1a, 8080, ['SYN'], { seq: 7, eth: fromPeer });
    const r = env.send(prog, direct);
    t.is(r.verdict, pass);
    expectPacket(t, r.out, direct, `${prog}: direct SYN`);
    const synack = tcp(NET.pod1a, 8080, NET.client, sport, ['SYN', 'ACK'], { seq: 3, ack: 8 });
    const back = env.send('tcPodIngress', synack);
    t.is(back.verdict, TC.OK, `${prog}: the SYN-ACK goes to the stack, as any pod's packet`);
    expectPacket(t, back.out, synack, `${prog}: direct SYN-ACK`);
  }
});

rootTest('port reuse: a SYN on the reply tuple of a live service flow retires nothing', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN']);
  env.send('tcPodIngress', syn);
  const ack = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['ACK'], { seq: 1001, ack: 5001 });
  env.send('tcPodIngress', ack);

  const direct = tcp(NET.pod1a, 40000, NET.pod2a, 8080, ['SYN'], { seq: 1 });
  expectPacket(t, env.send('tcPodIngress', direct).out, direct, 'the stray SYN passes');
  const data = tcp(NET.pod2a, 8080, NET.pod1a, 40000, ['ACK', 'PSH'], { seq: 5001, ack: 1001, payload: 'still here' });
  expectPacket(t, env.send('tcPodEgress', data).out, rewrite(data, { src: NET.clusterIp, sport: 80 }), 'the live flow is still reversed');
  expectPacket(t, env.send('tcPodIngress', ack).out, rewrite(ack, { dst: NET.pod2a, dport: 8080 }), 'and still forwarded');
});

rootTest('port reuse: a new SYN to the service on a closing flow picks afresh and retires the old reply entry', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  closedServiceFlow(t, env, NET.pod2a, 'tcPodEgress', 'RST');

  // The service now has another backend; the client reuses its port.
  writeBackend(env.dp, { id: 2, addr: NET.pod2b, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [2] });
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN'], { seq: 50 });
  expectPacket(t, env.send('tcPodIngress', syn).out, rewrite(syn, { dst: NET.pod2b, dport: 8080 }), 'a fresh pick');
  t.is(env.dp.maps.ct4.get(ctKey(NET.pod2a, 8080, NET.pod1a, 40000, CtDir.REPLY)), null, 'the old reply entry is gone');
  t.like(env.dp.maps.ct4.get(ctKey(NET.pod2b, 8080, NET.pod1a, 40000, CtDir.REPLY)), { backend_id: 2, flags: CtFlags.REPLY });

  // A late segment of the old backend is no longer made to look like the service.
  const late = tcp(NET.pod2a, 8080, NET.pod1a, 40000, ['ACK'], { seq: 5001, ack: 1001 });
  expectPacket(t, env.send('tcPodEgress', late).out, late, 'late segment of the old flow');
  const synack = tcp(NET.pod2b, 8080, NET.pod1a, 40000, ['SYN', 'ACK'], { seq: 1, ack: 51 });
  expectPacket(t, env.send('tcPodEgress', synack).out, rewrite(synack, { src: NET.clusterIp, sport: 80 }), 'the new flow\'s SYN-ACK');
});

rootTest('port reuse: a flow reset by the backend is closed too: a new SYN to the service picks afresh, a direct SYN retires it', async (t) => {
  const env = await setup(t);
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [1] });
  const open = (sport: number) => {
    const syn = tcp(NET.pod1a, sport, NET.clusterIp, 80, ['SYN']);
    expectPacket(t, env.send('tcPodIngress', syn).out, rewrite(syn, { dst: NET.pod2a, dport: 8080 }), `service SYN from ${sport}`);
    const rst = tcp(NET.pod2a, 8080, NET.pod1a, sport, ['RST', 'ACK'], { seq: 0, ack: 1001 });
    expectPacket(t, env.send('tcPodEgress', rst).out, rewrite(rst, { src: NET.clusterIp, sport: 80 }), `backend RST to ${sport}`);
  };
  open(40000);
  open(40001);
  t.is(env.dp.maps.ct4.get(ctKey(NET.pod1a, 40000, NET.clusterIp, 80, CtDir.FWD))!.state, BigInt(CtState.REPLIED | CtState.RST), 'the backend\'s RST closed the flow, both entries');

  // Reopened through the service: a fresh pick (now pod2b).
  writeBackend(env.dp, { id: 2, addr: NET.pod2b, port: 8080 });
  writeService(env.dp, { svcId: 1, addr: NET.clusterIp, port: 80, backends: [2] });
  const syn = tcp(NET.pod1a, 40000, NET.clusterIp, 80, ['SYN'], { seq: 77 });
  expectPacket(t, env.send('tcPodIngress', syn).out, rewrite(syn, { dst: NET.pod2b, dport: 8080 }), 'a fresh pick');
  t.is(env.dp.maps.ct4.get(ctKey(NET.pod2a, 8080, NET.pod1a, 40000, CtDir.REPLY)), null, 'the old reply entry is gone');

  // Reused straight to the old backend: its answer passes untranslated.
  const direct = tcp(NET.pod1a, 40001, NET.pod2a, 8080, ['SYN'], { seq: 5 });
  expectPacket(t, env.send('tcPodIngress', direct).out, direct, 'direct SYN');
  const synack = tcp(NET.pod2a, 8080, NET.pod1a, 40001, ['SYN', 'ACK'], { seq: 9, ack: 6 });
  expectPacket(t, env.send('tcPodEgress', synack).out, synack, 'direct SYN-ACK');
});

rootTest('port reuse with SNAT: a new SYN on a closing NodePort flow frees the old SNAT port', async (t) => {
  const env = await setup(t, { snatPortMin: 61000, snatPortMax: 61000 });
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeService(env.dp, { svcId: 10, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1] });
  const syn = tcp(NET.client, 50000, NET.node1, 30080, ['SYN'], { eth: fromPeer });
  const masq = { src: NET.node1, sport: 61000, dst: NET.pod2a, dport: 8080 };
  expectPacket(t, env.send('tcUplinkIngress', syn).out, rewrite(syn, masq), 'first flow');
  const rst = tcp(NET.client, 50000, NET.node1, 30080, ['RST'], { seq: 1001, eth: fromPeer });
  env.send('tcUplinkIngress', rst);
  // The only SNAT port is held by the closing flow until it is retired: the reopening SYN gets it.
  expectPacket(t, env.send('tcUplinkIngress', syn).out, rewrite(syn, masq), 'the port reused by the new flow');
});
