import { spawn } from 'node:child_process';
import { agentLabFor, hostnamesDeployment, hostnamesService, liveService, eventually } from '../test/lab-agent/fixture.js';
import { previousRelease } from '../test/lab-agent/previous-release.js';
import { applyManifests } from '../ts/lab/apply.js';
import { tally } from '../ts/lab/traffic.js';

const teardowns: (() => Promise<void> | void)[] = [];
const t = { teardown: (f: () => Promise<void> | void) => teardowns.push(f), log: console.log } as never;
try {
  const previous = await previousRelease();
  const { lab, agents } = await agentLabFor(t, { nodes: 2, clients: 1 }, { release: previous });
  await applyManifests(lab, [hostnamesDeployment(3), hostnamesService({ type: 'NodePort' })]);
  const svc = liveService(lab);
  const node2 = lab.node('node-2');
  const p = { from: 'client-1', address: node2.address, port: svc.spec!.ports![0]!.nodePort! };
  await eventually(() => lab.request(p.from, { ...p, count: 30, timeoutMs: 2000 }), (a) => Object.keys(tally(a).byAnswer).length === 3 && a.every((x) => x.ok), 60_000);
  const ns = (lab as any).netnsName('client-1');
  const dump = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-i', 'any', '-nn', '-l', '-tt', 'tcp'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const lines: string[] = [];
  dump.stdout.setEncoding('utf8').on('data', (d: string) => lines.push(...d.split('\n')));
  await new Promise((r) => setTimeout(r, 1000));
  const streams = [1, 2].map(() => lab.stream('client-1', { ...p, intervalMs: 200 }));
  const locals = await Promise.all(streams.map((s) => s.connected));
  console.log('locals', locals);
  await new Promise((r) => setTimeout(r, 1500));
  console.log('--- upgrade', Date.now() / 1000);
  await agents.replace('node-2', undefined, { readyTimeoutMs: 90_000 });
  await new Promise((r) => setTimeout(r, 1500));
  console.log('--- downgrade', Date.now() / 1000);
  await agents.replace('node-2', previous, { readyTimeoutMs: 90_000 });
  console.log('--- downgraded', Date.now() / 1000);
  await new Promise((r) => setTimeout(r, 3000));
  const results = await Promise.all(streams.map((s) => s.stop()));
  console.log(results.map((r) => r.error));
  dump.kill();
  const ports = locals.map((l) => l.local.split(':')[1]);
  const rel = lines.filter((l) => ports.some((pt) => l.includes(`.${pt} `) || l.includes(`.${pt}:`)));
  const interesting = rel.filter((l) => /Flags \[[^.\]]*[SRF]/.test(l) || /Flags \[R/.test(l)).map((l) => new Date(Number(l.split(' ')[0]) * 1000).toISOString() + ' ' + l);
  console.log(interesting.slice(0, 60).join('\n'));
  console.log('total lines', rel.length);
  console.log(agents.logTail('node-2', 40));
} finally {
  for (const f of teardowns.reverse()) await f();
}
