/**
 * Maglev for external traffic: the datapath picks table[flowHash % M] of the table user space
 * wrote, so any node with the same table picks the same backend for a flow; mid-stream segments
 * of Maglev services are re-picked statelessly.
 */
import { SvcFlags, SvcKind, maglevIndex, IPPROTO } from '../../ts/abi/index.js';
import { parsePacket } from '../../ts/packet/index.js';
import { NET, TC, XDP, rootTest, setup, writeBackend, writeService, type Env } from './_fixture.js';
import { fromPeer, tcp } from './_packets.js';

const M = 251;
const backends = [NET.pod1a, NET.pod1b, '198.18.129.12'];
// Any deterministic assignment will do: the datapath must follow the table, whatever it holds.
const table = Array.from({ length: M }, (_, i) => (Math.imul(i, 2654435761) >>> 0) % backends.length + 1);

async function node(t: Parameters<typeof setup>[0], nodeIp: string): Promise<Env> {
  const env = await setup(t, { nodeIp, maglevM: M });
  backends.forEach((addr, i) => writeBackend(env.dp, { id: i + 1, addr, port: 8080, local: true }));
  writeService(env.dp, { svcId: 40, addr: NET.lbIp, port: 80, kind: SvcKind.LOAD_BALANCER, flags: SvcFlags.MAGLEV, backends: [1, 2, 3] });
  env.dp.setMaglevTable(40, table);
  return env;
}

const expected = (sport: number): string =>
  backends[table[maglevIndex({ saddr: NET.client, daddr: NET.lbIp, sport, dport: 80, proto: IPPROTO.TCP }, M)]! - 1]!;

rootTest('Maglev: the backend is the table entry of the flow hash, on XDP and tc, on any node', async (t) => {
  const node1 = await node(t, NET.node1);
  const node2 = await node(t, NET.node2);
  const seen = new Set<string>();
  for (let sport = 40000; sport < 40060; sport++) {
    const want = expected(sport);
    seen.add(want!);
    for (const [env, prog] of [[node1, 'xdpUplink'], [node2, 'tcUplinkIngress']] as const) {
      const r = env.send(prog, tcp(NET.client, sport, NET.lbIp, 80, ['SYN'], { eth: fromPeer }));
      t.is(r.verdict, prog === 'xdpUplink' ? XDP.PASS : TC.OK);
      t.is(parsePacket(r.out).ip!.dst, want, `${prog} port ${sport}`);
    }
  }
  t.is(seen.size, backends.length, 'the flows cover every backend');
});

rootTest('Maglev: a mid-stream segment without conntrack (flow moved between nodes) goes to the same backend', async (t) => {
  const env = await node(t, NET.node2);
  const r = env.send('xdpUplink', tcp(NET.client, 41234, NET.lbIp, 80, ['ACK'], { seq: 5, ack: 9, eth: fromPeer }));
  t.is(r.verdict, XDP.PASS);
  t.is(parsePacket(r.out).ip!.dst, expected(41234));
});

rootTest('Maglev: pods of the node (internal traffic) and services without a table pick at random', async (t) => {
  const env = await node(t, NET.node1);
  const fromPods = new Set<string>();
  for (let p = 40000; p < 40100; p++) {
    fromPods.add(parsePacket(env.send('tcPodIngress', tcp('198.18.129.20', p, NET.lbIp, 80)).out).ip!.dst);
  }
  t.is(fromPods.size, backends.length);
  env.dp.deleteMaglevTable(40);
  const r = env.send('xdpUplink', tcp(NET.client, 40000, NET.lbIp, 80, ['SYN'], { eth: fromPeer }));
  t.true(backends.includes(parsePacket(r.out).ip!.dst));
});
