// Pods come and go: their wiring, their server's life, their addresses.
import { existsSync } from 'node:fs';

import { privileged } from '../helpers/env.js';
import { isProcessRunning, labFor } from './_fixture.js';

import { Lab } from '../../ts/lab/topology.js';

privileged('a pod is a /32 behind a point-to-point veth with a link-local gateway', async (t) => {
  const lab = await labFor(t);
  const pod = await lab.addPod({ name: 'hostnames-1', node: 'node-1', ports: [{ port: 9376, protocol: 'TCP' }] });
  t.is(pod.hostInterface, 'hostnames-1');
  const addr = JSON.parse(await lab.exec('hostnames-1', 'ip', ['-j', 'addr', 'show', 'dev', 'eth0']))[0];
  t.like(addr.addr_info.find((a: { family: string }) => a.family === 'inet'), { local: pod.address, prefixlen: 32 });
  const [def] = JSON.parse(await lab.exec('hostnames-1', 'ip', ['-j', 'route', 'show', 'default']));
  t.like(def, { gateway: '169.254.1.1', dev: 'eth0' });
  t.true(def.flags.includes('onlink'));
  const [neigh] = JSON.parse(await lab.exec('hostnames-1', 'ip', ['-j', 'neigh', 'show', '169.254.1.1']));
  t.like(neigh, { lladdr: pod.hostMac, state: ['PERMANENT'] });
  const [hostRoute] = JSON.parse(await lab.exec('node-1', 'ip', ['-j', 'route', 'show', `${pod.address}/32`]));
  t.like(hostRoute, { dev: 'hostnames-1', scope: 'link' });
  // The node side carries no address: nothing of the pod CIDR lives on the node.
  t.deepEqual(JSON.parse(await lab.exec('node-1', 'ip', ['-j', '-4', 'addr', 'show', 'dev', 'hostnames-1'])), []);
});

privileged('removePod stops its server and removes its namespace, veth and route', async (t) => {
  const lab = await labFor(t);
  const gone = await lab.addPod({ name: 'gone', node: 'node-2', ports: [{ port: 9376, protocol: 'TCP' }] });
  await lab.addPod({ name: 'stays', node: 'node-1', ports: [{ port: 9376, protocol: 'TCP' }] });
  t.true(lab.isPodServing('gone'));

  await lab.removePod('gone');
  t.false(isProcessRunning(gone.server.pid), 'server stopped');
  t.false(existsSync(`/run/netns/${gone.netns}`), 'namespace deleted');
  t.is((await lab.exec('node-2', 'ip', ['-j', 'link', 'show'])).includes('"gone"'), false, 'veth gone');
  t.deepEqual(JSON.parse(await lab.exec('node-2', 'ip', ['-j', 'route', 'show', `${gone.address}/32`])), []);
  t.deepEqual(lab.pods.map((p) => p.name), ['stays']);
  // Another process sees the same: the state on disk no longer has the pod.
  t.deepEqual(Lab.open(lab.name).pods.map((p) => p.name), ['stays']);
  const [r] = await lab.request('stays', { address: gone.address, port: 9376, timeoutMs: 2000 });
  t.false(r?.ok, 'the old address no longer answers');
  t.throws(() => lab.pod('gone'));
});

privileged('pod addresses come round-robin from the node CIDR and are not reused at once', async (t) => {
  const lab = await labFor(t, { nodes: 2, clients: 0 });
  const ports = [{ port: 9376, protocol: 'TCP' as const }];
  const a = await lab.addPod({ name: 'p-a', node: 'node-1', ports });
  const b = await lab.addPod({ name: 'p-b', node: 'node-1', ports });
  const c = await lab.addPod({ name: 'p-c', node: 'node-2', ports });
  t.deepEqual([a.address, b.address, c.address], ['198.18.129.2', '198.18.129.3', '198.18.130.2']);
  await lab.removePod('p-a');
  const d = await lab.addPod({ name: 'p-d', node: 'node-1', ports });
  t.is(d.address, '198.18.129.4');
});

privileged('pod names are checked, and long ones still fit namespace and interface names', async (t) => {
  const lab = await labFor(t, { nodes: 1, clients: 0 });
  const ports = [{ port: 9376, protocol: 'TCP' as const }];
  await t.throwsAsync(lab.addPod({ name: 'node-1', node: 1, ports }), { message: /reserved/ });
  await t.throwsAsync(lab.addPod({ name: 'Bad_Name', node: 1, ports }), { message: /DNS-1123/ });
  await t.throwsAsync(lab.addPod({ name: 'x', node: 'node-7', ports }), { message: /no node 'node-7'/ });
  const long = await lab.addPod({ name: 'hostnames-7f9c8d6b5-xk2lq', node: 1, ports });
  t.true(long.hostInterface.length <= 15);
  t.true(long.netns.length <= 32);
  t.like((await lab.request('node-1', { address: long.address, port: 9376 }))[0], { ok: true, answer: 'hostnames-7f9c8d6b5-xk2lq' });
  await t.throwsAsync(lab.addPod({ name: 'hostnames-7f9c8d6b5-xk2lq', node: 1, ports }), { message: /already has/ });
  // A failed addPod leaves nothing behind.
  t.deepEqual(lab.pods.map((p) => p.name), ['hostnames-7f9c8d6b5-xk2lq']);
});

privileged('a pod whose server cannot start is not added, and leaves nothing behind', async (t) => {
  const lab = await labFor(t, { nodes: 1, clients: 0 });
  const before = (await lab.existingNetns()).sort();
  // Port 0 is refused by the server itself: it exits before it is ready.
  await t.throwsAsync(lab.addPod({ name: 'broken', node: 1, ports: [{ port: 0, protocol: 'TCP' }] }), { message: /broken/ });
  t.deepEqual((await lab.existingNetns()).sort(), before);
  t.deepEqual(lab.pods, []);
});
