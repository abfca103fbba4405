// A lab leaves nothing behind: not on down(), not when up() fails or is interrupted.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { privileged } from '../helpers/env.js';
import { isProcessRunning, labFor, mountsOf } from './_fixture.js';

import { runId } from '../../ts/lab/net/netns.js';
import { labNetns } from '../../ts/lab/teardown.js';
import { Lab } from '../../ts/lab/topology.js';
import type { LabState } from '../../ts/lab/lab-state.js';

privileged('down() leaves no namespace, no process, no mount and no state behind', async (t) => {
  const lab = await Lab.up({ name: `t-${runId()}`, nodes: 2, clients: 1 });
  t.teardown(() => lab.down());
  const ports = [{ port: 9376, protocol: 'TCP' as const }];
  const pods = [
    await lab.addPod({ name: 'hostnames-1', node: 1, ports }),
    await lab.addPod({ name: 'hostnames-2', node: 2, ports }),
    await lab.addPod({ name: 'hostnames-3', node: 2, ports }),
  ];
  // A stray process in a lab namespace (as `lab exec` could leave) is stopped too.
  const stream = lab.stream('node-1', { address: pods[1]!.address, port: 9376 });
  t.like(await stream.connected, { backend: 'hostnames-2' });
  const state = lab.status();
  t.is((await labNetns(lab.id)).length, 7);
  t.true(existsSync(state.stateFile));
  t.true(mountsOf(lab.id).length > 0);

  await lab.down();
  t.deepEqual(await labNetns(lab.id), []);
  t.deepEqual(mountsOf(lab.id), []);
  for (const p of pods) t.false(isProcessRunning(p.server.pid), `server of ${p.name}`);
  t.false(existsSync(state.stateFile));
  t.false(existsSync(state.runDir));
  const streamed = await stream.stop();
  t.not(streamed.error, null, 'the streaming connection ended with the lab');
  // Twice is fine.
  await t.notThrowsAsync(lab.down());
});

privileged('two labs with different names coexist and do not see each other', async (t) => {
  const one = await labFor(t);
  const two = await labFor(t);
  t.not(one.id, two.id);
  const a = await one.addPod({ name: 'hostnames-1', node: 1, ports: [{ port: 9376, protocol: 'TCP' }] });
  const b = await two.addPod({ name: 'hostnames-1', node: 1, ports: [{ port: 9376, protocol: 'TCP' }] });
  // Same short names and addresses, different namespaces.
  t.is(a.address, b.address);
  t.not(a.netns, b.netns);
  t.not(one.netnsName('node-1'), two.netnsName('node-1'));
  t.like((await one.request('node-2', { address: a.address, port: 9376 }))[0], { ok: true, answer: 'hostnames-1' });
  await two.removePod('hostnames-1');
  t.like((await one.request('node-2', { address: a.address, port: 9376 }))[0], { ok: true, answer: 'hostnames-1' }, 'lab one is untouched');
});

privileged('a second lab with the same name is refused while the first is up', async (t) => {
  const lab = await labFor(t, { nodes: 1, clients: 0 });
  await t.throwsAsync(Lab.up({ name: lab.name, nodes: 1, clients: 0 }), { message: /already up/ });
  t.is(Lab.open(lab.name).id, lab.id, 'the first lab keeps its state');
});

privileged('an up() interrupted half-way removes what it built', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'bpfproxy-lab-state-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const name = `t-${runId()}`;
  const controller = new AbortController();
  let seen: LabState | undefined;
  // Abort as soon as the first node exists: the fabric and a node are built, the rest is not.
  const watch = setInterval(() => {
    try {
      const s = JSON.parse(readFileSync(join(stateDir, `${name}.json`), 'utf8')) as LabState;
      seen = s;
    } catch {
      return;
    }
    void labNetns(seen.id).then((ns) => {
      if (ns.some((n) => n.endsWith('-node-1'))) controller.abort(new Error('interrupted by the test'));
    });
  }, 2);
  t.teardown(() => clearInterval(watch));
  await t.throwsAsync(Lab.up({ name, nodes: 8, clients: 4, stateDir, signal: controller.signal }), { message: /interrupted by the test/ });
  clearInterval(watch);
  t.truthy(seen, 'the state was written before building');
  t.deepEqual(await labNetns(seen!.id), []);
  t.deepEqual(mountsOf(seen!.id), []);
  t.false(existsSync(join(stateDir, `${name}.json`)));
});
