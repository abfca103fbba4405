// `bpfproxy lab …` as users run it: separate processes sharing the lab through its state file.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

import { privileged } from '../helpers/env.js';
import { mountsOf } from './_fixture.js';

import { runId } from '../../ts/lab/net/netns.js';
import type { LabState } from '../../ts/lab/lab-state.js';
import { labNetns } from '../../ts/lab/teardown.js';

const bin = new URL('../../bin/bpfproxy.js', import.meta.url).pathname;
const bpfproxy = async (...args: string[]) => (await promisify(execFile)(process.execPath, [bin, ...args], { timeout: 60_000 })).stdout;

privileged('lab up, status --json, pod add, exec, request and down round-trip through the CLI', async (t) => {
  const name = `t-${runId()}`;
  t.teardown(async () => {
    await bpfproxy('lab', 'down', '--name', name);
  });
  const up = JSON.parse(await bpfproxy('lab', 'up', '--name', name, '--nodes', '2', '--clients', '1', '--no-agents', '--json')) as LabState;
  t.is(up.name, name);
  t.deepEqual(up.nodes.map((n) => n.address), ['198.18.0.11', '198.18.0.12']);
  t.deepEqual(up.clients.map((c) => c.address), ['198.18.0.100']);
  t.is(up.fabric.netns, `bpl-${up.id}-fabric`);
  t.is(up.nodes[0]!.netns, `bpl-${up.id}-node-1`);

  await bpfproxy('lab', 'pod', 'add', '--name', name, 'hostnames-1', '--node', 'node-2', '--port', '9376', '--port', '53/udp');
  const status = JSON.parse(await bpfproxy('lab', 'status', '--name', name, '--json')) as LabState;
  t.is(status.id, up.id);
  t.like(status.pods[0], { name: 'hostnames-1', node: 'node-2', address: '198.18.130.2', ports: [{ port: 9376, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }] });
  t.true(existsSync(`/run/bpfproxy/labs/${name}.json`));
  t.regex(await bpfproxy('lab', 'status', '--name', name), /hostnames-1 +bpl-\w+-hostnames-1 +198\.18\.130\.2/);

  // exec runs a host command inside the namespace named by its short name.
  t.regex(await bpfproxy('lab', 'exec', '--name', name, 'node-1', '--', 'ip', '-br', 'addr', 'show', 'dev', 'eth0'), /198\.18\.0\.11\/24/);
  t.is((await bpfproxy('lab', 'request', '--name', name, 'node-1', '198.18.130.2', '9376')).trim(), 'hostnames-1');
  t.is((await bpfproxy('lab', 'request', '--name', name, 'node-1', '198.18.130.2', '53', '--udp')).trim(), 'hostnames-1');
  // The exit status of the command is passed on.
  const failed = await bpfproxy('lab', 'exec', '--name', name, 'node-1', '--', 'false').then(() => 0, (e: { code: number }) => e.code);
  t.is(failed, 1);

  t.regex(await bpfproxy('lab', 'down', '--name', name), /is down/);
  t.deepEqual(await labNetns(up.id), []);
  t.deepEqual(mountsOf(up.id), []);
  t.false(existsSync(`/run/bpfproxy/labs/${name}.json`));
});

privileged('lab up --foreground tears the lab down on SIGINT', async (t) => {
  const name = `t-${runId()}`;
  t.teardown(async () => {
    await bpfproxy('lab', 'down', '--name', name);
  });
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [bin, 'lab', 'up', '--name', name, '--no-agents', '--foreground'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not up: ${out}`)), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ctrl-C')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const id = /run id (\w+)/.exec(out)?.[1];
  t.truthy(id);
  t.true((await labNetns(id!)).length > 0);
  child.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.is(code, 0);
  t.deepEqual(await labNetns(id!), []);
  t.false(existsSync(`/run/bpfproxy/labs/${name}.json`));
});
