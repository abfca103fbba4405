import { join } from 'node:path';
import { agentLabFor, hostnamesDeployment, hostnamesService, liveService, eventually } from '../test/lab-agent/fixture.js';
import { applyManifests } from '../ts/lab/apply.js';
import { native } from '../ts/addon/index.js';
import { ct4Key, ct4Value } from '../ts/abi/layouts.js';
import { tally } from '../ts/lab/traffic.js';

const teardowns: (() => Promise<void> | void)[] = [];
const t = { teardown: (f: () => Promise<void> | void) => teardowns.push(f), log: console.log } as never;
try {
  const { lab, agents } = await agentLabFor(t, { nodes: 2, clients: 1 });
  await applyManifests(lab, [hostnamesDeployment(3), hostnamesService({ type: 'NodePort' })]);
  const svc = liveService(lab);
  const node2 = lab.node('node-2');
  const p = { from: 'client-1', address: node2.address, port: svc.spec!.ports![0]!.nodePort! };
  await eventually(() => lab.request(p.from, { ...p, count: 30, timeoutMs: 2000 }), (a) => Object.keys(tally(a).byAnswer).length === 3 && a.every((x) => x.ok), 60_000);
  const streams = [1, 2, 3, 4].map(() => lab.stream('client-1', { ...p, intervalMs: 20 }));
  const locals = await Promise.all(streams.map((s) => s.connected));
  await new Promise((r) => setTimeout(r, 2000));
  for (const node of ['node-1', 'node-2']) {
    const raw = native.BpfMap.fromPin(join(agents.pinDir(node), 'ct4_v3'));
    const { keys, values, count } = raw.dump();
    for (let j = 0; j < count; j++) {
      const k = ct4Key.decode(keys.subarray(j * 16, (j + 1) * 16));
      const v = ct4Value.decode(values.subarray(j * ct4Value.size, (j + 1) * ct4Value.size));
      if (locals.some((l) => l.local === `${k.saddr}:${k.sport}`) || (k.proto === 6 && k.dir === 1 && v.nat_daddr === '198.18.0.100' && locals.some((l) => l.local.endsWith(':' + v.nat_dport))))
        console.log(node, JSON.stringify(k), 'flags', v.flags, 'seen', v.tcp_seen.toString(16), 'state', v.state, 'nat', v.nat_saddr, v.nat_sport, v.nat_daddr, v.nat_dport);
    }
    raw.close();
  }
  console.log(locals);
  await Promise.all(streams.map((s) => s.stop()));
} finally {
  for (const f of teardowns.reverse()) await f();
}
