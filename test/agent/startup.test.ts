// Startup refuses what it can before it touches the node. One agent per node: a second agent on the
// same bpffs directory exits at once, naming the first (its pid), before it loads or attaches
// anything; the first keeps its maps and links untouched, and the lock goes with the process. A
// health port that is taken, or a Kubernetes source with nothing to watch, exits before any load.
// And pins removed under a running agent are restored, so that its restart is no outage.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';

import { privilegedSerial } from '../helpers/env.js';
import { AgentNode } from './_fixture.js';

import { native } from '../../ts/addon/index.js';

const BIN = resolve('bin/bpfproxy.js');

/** Runs `bpfproxy agent --config FILE` in the node's namespace to its exit. */
async function agentRun(node: AgentNode, config: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; out: string }> {
  const file = join(node.dir, `agent-${Math.random().toString(36).slice(2)}.yaml`);
  const base = parse(readFileSync(node.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, stringify({ ...base, ...config }));
  return promisify(execFile)('ip', ['netns', 'exec', node.ns.name, process.execPath, BIN, 'agent', '--config', file], { timeout: 60_000, env }).then(
    () => ({ code: 0, out: '' }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
}

const pinsOf = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).sort() : []);

function linkIds(dir: string): string[] {
  return readdirSync(join(dir, 'links')).map((name) => {
    const l = native.BpfLink.fromPin(join(dir, 'links', name));
    const id = `${name}=${l.info.id}`;
    l.close();
    return id;
  }).sort();
}

privilegedSerial('a second agent on the same node is refused before it loads anything, naming the first', async (t) => {
  const node = await AgentNode.create(t);
  await node.start();
  const before = linkIds(node.bpffsDir);
  const pins = readdirSync(node.bpffsDir).sort();

  // The same node's config, on other ports (else the port would refuse it first).
  const started = Date.now();
  const r = await agentRun(node, { healthzBindAddress: '127.0.0.1:20256', metricsBindAddress: '127.0.0.1:20249' });
  t.not(r.code, 0, 'the second agent exits with an error');
  t.regex(r.out, /another bpfproxy agent \(pid \d+\) already runs on .*: one agent per node/);
  t.false(r.out.includes('datapath loaded'), 'nothing was loaded');
  t.deepEqual(linkIds(node.bpffsDir), before, 'the first agent\'s links are the same objects');
  t.deepEqual(readdirSync(node.bpffsDir).sort(), pins);
  t.log(`refused in ${Date.now() - started} ms`);

  // SIGKILL leaves no stale lock: the kernel drops it with the process.
  node.kill();
  await new Promise((res) => setTimeout(res, 500));
  const ready = await node.start();
  t.is(ready.msg, 'agent ready');
});

privilegedSerial('a health port that is taken, or a Kubernetes source with nothing to watch: the agent exits before it loads anything', async (t) => {
  const node = await AgentNode.create(t);
  // Something (kube-proxy, say) holds the health port in the node's namespace.
  const holder = execFile('ip', ['netns', 'exec', node.ns.name, process.execPath, '-e', "require('net').createServer().listen(20256, '127.0.0.1', () => console.log('up'))"]);
  t.teardown(() => holder.kill('SIGKILL'));
  await new Promise((res) => holder.stdout!.once('data', res));
  const taken = await agentRun(node, { healthzBindAddress: '127.0.0.1:20256' });
  t.not(taken.code, 0);
  t.regex(taken.out, /EADDRINUSE.*20256/);
  t.deepEqual(pinsOf(node.bpffsDir), [], 'nothing loaded, nothing pinned');

  const home = mkdtempSync(join(tmpdir(), 'bpfproxy-home-'));
  const { KUBECONFIG: _k, KUBERNETES_SERVICE_HOST: _h, ...env } = process.env;
  const nowhere = await agentRun(node, { sourceDir: undefined }, { ...env, HOME: home });
  t.not(nowhere.code, 0);
  t.regex(nowhere.out, /kubernetes source: no kubeconfig .* nothing to watch/);
  t.deepEqual(pinsOf(node.bpffsDir), [], 'nothing loaded, nothing pinned');
});

privilegedSerial('pins removed under a running agent come back from its handles (reported), so that a restart adopts the same maps and links', async (t) => {
  const node = await AgentNode.create(t);
  await node.start();
  const ids = () => {
    const maps = Object.fromEntries(['svc4_v1', 'be_v1', 'nodeaddr4_v1'].map((name) => {
      const m = native.BpfMap.fromPin(join(node.bpffsDir, name));
      const id = m.info.id;
      m.close();
      return [name, id];
    }));
    return { maps, links: linkIds(node.bpffsDir) };
  };
  const before = ids();
  const uplinkLinks = readdirSync(join(node.bpffsDir, 'links'));
  t.true(uplinkLinks.length > 0);
  for (const pin of ['svc4_v1', 'be_v1', join('links', uplinkLinks[0]!)]) rmSync(join(node.bpffsDir, pin));
  await node.waitForLog((l) => l.msg.startsWith('pins were removed under the running agent'), 20_000);
  t.deepEqual(ids(), before, 'the same objects, pinned again');
  t.true(((await node.metric('bpfproxy_pins_restored_total')) ?? 0) >= 3);

  await node.stop();
  await node.start();
  t.deepEqual(ids(), before, 'the restart adopted them: nothing was recreated');
});
