// Pods reach pods on other nodes by pod IP through the GKE-like routes, over real TCP and UDP sockets.
import { privileged } from '../helpers/env.js';
import { labFor } from './_fixture.js';

import { tally } from '../../ts/lab/net/traffic.js';

privileged('a pod on node 1 reaches a pod on node 2 by pod IP over TCP and UDP and gets its name', async (t) => {
  const lab = await labFor(t);
  const a = await lab.addPod({ name: 'hostnames-a', node: 'node-1', ports: [{ port: 9376, protocol: 'TCP' }] });
  const b = await lab.addPod({ name: 'hostnames-b', node: 2, ports: [{ port: 9376, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }] });
  t.is(a.address, '198.18.129.2');
  t.is(b.address, '198.18.130.2');

  // addPod resolves only once the server listens: the very first request is answered.
  t.like((await lab.request('hostnames-a', { address: b.address, port: 9376 }))[0], { ok: true, answer: 'hostnames-b' });
  t.like((await lab.request('hostnames-a', { address: b.address, port: 9376, protocol: 'UDP' }))[0], { ok: true, answer: 'hostnames-b' });
  // Every declared port answers on both protocols.
  t.like((await lab.request('hostnames-a', { address: b.address, port: 53, protocol: 'UDP' }))[0], { ok: true, answer: 'hostnames-b' });
  t.like((await lab.request('hostnames-a', { address: b.address, port: 53 }))[0], { ok: true, answer: 'hostnames-b' });
  // And back the other way.
  t.like((await lab.request('hostnames-b', { address: a.address, port: 9376 }))[0], { ok: true, answer: 'hostnames-a' });
});

privileged('the hostname server speaks HTTP to HTTP clients and tells a client its address', async (t) => {
  const lab = await labFor(t);
  const a = await lab.addPod({ name: 'web-a', node: 'node-1', ports: [{ port: 8080, protocol: 'TCP' }] });
  await lab.addPod({ name: 'web-b', node: 'node-2', ports: [{ port: 8080, protocol: 'TCP' }] });

  t.like((await lab.request('web-b', { address: a.address, port: 8080, http: true }))[0], { ok: true, answer: 'web-a' });
  const curl = await lab.exec('web-b', 'curl', ['-s', '-i', `http://${a.address}:8080/`]);
  t.regex(curl, /^HTTP\/1\.1 200 OK\r\n/);
  t.regex(curl, /\r\n\r\nweb-a$/);
  // No NAT between pods: the server sees the other pod's own address.
  const [who] = await lab.request('web-b', { address: a.address, port: 8080, payload: 'clientip\n' });
  t.true(who?.ok && who.answer.startsWith('198.18.130.2:'), JSON.stringify(who));
  const [udpWho] = await lab.request('web-b', { address: a.address, port: 8080, protocol: 'UDP', payload: 'clientip' });
  t.true(udpWho?.ok && udpWho.answer.startsWith('198.18.130.2:'), JSON.stringify(udpWho));
});

privileged('300 TCP connections and 300 UDP exchanges complete in a few seconds', async (t) => {
  const lab = await labFor(t);
  const a = await lab.addPod({ name: 'many-a', node: 'node-1', ports: [{ port: 9376, protocol: 'TCP' }] });
  await lab.addPod({ name: 'many-b', node: 'node-2', ports: [{ port: 9376, protocol: 'TCP' }] });
  for (const protocol of ['TCP', 'UDP'] as const) {
    const started = Date.now();
    const answers = await lab.request('many-b', { address: a.address, port: 9376, protocol, count: 300 });
    const ms = Date.now() - started;
    t.deepEqual(tally(answers), { byAnswer: { 'many-a': 300 }, byError: {} }, protocol);
    t.true(ms < 5000, `${protocol}: 300 requests took ${ms} ms`);
  }
});

privileged('refused, unreachable and timeout are told apart', async (t) => {
  const lab = await labFor(t);
  const a = await lab.addPod({ name: 'errs-a', node: 'node-1', ports: [{ port: 9376, protocol: 'TCP' }] });
  await lab.addPod({ name: 'errs-b', node: 'node-2', ports: [{ port: 9376, protocol: 'TCP' }] });

  // A closed port: RST for TCP, ICMP port unreachable for UDP; both fail at once.
  const [tcp] = await lab.request('errs-b', { address: a.address, port: 9999, timeoutMs: 2000 });
  t.like(tcp, { ok: false, error: 'refused' });
  t.true(tcp!.ms < 1000);
  const [udp] = await lab.request('errs-b', { address: a.address, port: 9999, protocol: 'UDP', timeoutMs: 2000 });
  t.like(udp, { ok: false, error: 'refused' });
  // What a node has no route for goes to the node network's router, which reaches nothing beyond:
  // it tells a node "net unreachable" (a pod CIDR no node owns; only node-1 and node-2 exist), but
  // its answer to a pod has nowhere to go (it knows no pod routes), so a pod's packet to a ClusterIP
  // with no datapath loaded just times out.
  const [nowhere] = await lab.request('node-1', { address: '198.18.140.2', port: 80, timeoutMs: 2000 });
  t.like(nowhere, { ok: false, error: 'unreachable' });
  const [cluster] = await lab.request('errs-b', { address: '198.19.0.10', port: 80, timeoutMs: 300 });
  t.like(cluster, { ok: false, error: 'timeout' });
});
