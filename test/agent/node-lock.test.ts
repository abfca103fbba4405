// One agent per node: a second agent on the same bpffs directory exits at once, naming the first
// (its pid), before it loads or attaches anything; the first keeps its maps and links untouched. The
// lock goes with the process: after the first agent dies (SIGKILL), the next one starts.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';

import { privilegedSerial } from '../helpers/env.js';
import { AgentNode } from './harness.js';

import { native } from '../../ts/addon/index.js';

const BIN = resolve('bin/bpfproxy.js');

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

  // The same node's config, on other ports (else the port would refuse it, after the fact).
  const second = join(node.dir, 'second.yaml');
  const config = parse(readFileSync(node.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(second, stringify({ ...config, healthzBindAddress: '127.0.0.1:20256', metricsBindAddress: '127.0.0.1:20249' }));
  const started = Date.now();
  const r = await promisify(execFile)('ip', ['netns', 'exec', node.ns.name, process.execPath, BIN, 'agent', '--config', second], { timeout: 60_000 }).then(
    () => ({ code: 0, out: '' }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
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
