/**
 * Forwarding translated north-south packets: bpf_fib_lookup + redirect with the next hop's MAC
 * and a decremented TTL; with no neighbour entry yet, the translated packet goes to the stack
 * (XDP_PASS / TC_ACT_OK). Routes and neighbours live in the test's private namespace only.
 */
import { execFileSync } from 'node:child_process';
import { basename } from 'node:path';

import { SvcKind } from '../../ts/abi/index.js';
import { parsePacket } from '../../ts/packet/index.js';
import { NET, TC, XDP, expectPacket, rootTest, setup, writeBackend, writeService } from './_harness.js';
import { fromPeer, rewrite, tcp } from './_packets.js';

const UPLINK_MAC = '02:00:00:00:00:0b';
const NODE2_MAC = '02:00:00:00:00:12';

rootTest('FIB: translated packets leave by redirect to the next hop; an unknown neighbour goes to the stack', async (t) => {
  const env = await setup(t);
  const ns = basename(env.netns);
  const ip = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args]);
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'up0', 'address', UPLINK_MAC, 'type', 'veth', 'peer', 'name', 'fabric0');
  ip('link', 'set', 'fabric0', 'up');
  ip('link', 'set', 'up0', 'up');
  ip('addr', 'add', `${NET.node1}/24`, 'dev', 'up0');
  ip('neigh', 'add', NET.node2, 'lladdr', NODE2_MAC, 'dev', 'up0', 'nud', 'permanent');
  ip('route', 'add', '198.18.130.0/24', 'via', NET.node2);
  ip('route', 'add', '198.18.131.0/24', 'via', '198.18.0.13'); // a node whose MAC nobody knows yet
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);

  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  writeBackend(env.dp, { id: 1, addr: NET.pod2a, port: 8080 });
  writeBackend(env.dp, { id: 2, addr: '198.18.131.10', port: 8080 });
  writeService(env.dp, { svcId: 1, addr: '0.0.0.0', port: 30080, kind: SvcKind.NODE_PORT, backends: [1] });
  writeService(env.dp, { svcId: 2, addr: '0.0.0.0', port: 30081, kind: SvcKind.NODE_PORT, backends: [2] });

  for (const [prog, redirect, pass] of [['tcUplinkIngress', TC.REDIRECT, TC.OK], ['xdpUplink', XDP.REDIRECT, XDP.PASS]] as const) {
    const syn = tcp(NET.client, 50000, NET.node1, 30080, ['SYN'], { eth: fromPeer });
    const r = env.send(prog, syn);
    t.is(r.verdict, redirect, prog);
    const sport = parsePacket(r.out).tcp!.sport;
    const want = rewrite(syn, { src: NET.node1, sport, dst: NET.pod2a, dport: 8080 });
    expectPacket(t, r.out, { ...want, eth: { src: UPLINK_MAC, dst: NODE2_MAC }, ip: { ...want.ip, ttl: 63 } }, prog);

    const other = tcp(NET.client, 50001, NET.node1, 30081, ['SYN'], { eth: fromPeer });
    const p = env.send(prog, other);
    t.is(p.verdict, pass, `${prog}: no neighbour entry`);
    const sport2 = parsePacket(p.out).tcp!.sport;
    expectPacket(t, p.out, rewrite(other, { src: NET.node1, sport: sport2, dst: '198.18.131.10', dport: 8080 }), `${prog}: no neighbour`);
  }
});
