// Real sockets through the lab with the real datapath on every node (harness.ts): pods reach
// ClusterIPs across nodes, load is spread, no endpoints is refused at once, and an established
// stream survives backend removal. (NodePort from outside clients: not yet, see docs/datapath.md.)
import { privilegedSerial } from '../helpers/env.js';

import { tally } from '../../ts/lab/traffic.js';
import { CLUSTER_IP, DatapathLab, SERVICE_PORT, backendPort, hostnamesService, hostnamesSlice } from './harness.js';

/** hostnames-1 and -2 on node-1, hostnames-3 on node-2, and a client pod on node-2. */
async function threeBackendsAndAClient(l: DatapathLab) {
  const backends = [
    await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-2', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-3', node: 'node-2', ports: backendPort }),
  ];
  await l.addPod({ name: 'client', node: 'node-2', ports: backendPort });
  return backends;
}

privilegedSerial('ClusterIP: a pod on node-2 reaches a backend on node-1 over TCP and UDP', async (t) => {
  const l = await DatapathLab.up(t);
  const backend = await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort });
  await l.addPod({ name: 'client', node: 'node-2', ports: backendPort });
  t.deepEqual(l.apply([hostnamesService()], [hostnamesSlice([backend])]), []);

  const tcp = tally(await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, count: 20, timeoutMs: 2000 }));
  t.deepEqual(tcp, { byAnswer: { 'hostnames-1': 20 }, byError: {} }, 'TCP');
  const udp = tally(await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, protocol: 'UDP', count: 20, timeoutMs: 2000 }));
  t.deepEqual(udp, { byAnswer: { 'hostnames-1': 20 }, byError: {} }, 'UDP');
});

privilegedSerial('ClusterIP: 300 TCP connections spread evenly over 3 backends', async (t) => {
  const l = await DatapathLab.up(t);
  const backends = await threeBackendsAndAClient(l);
  t.deepEqual(l.apply([hostnamesService()], [hostnamesSlice(backends)]), []);

  const { byAnswer, byError } = tally(await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, count: 300, timeoutMs: 2000 }));
  t.deepEqual(byError, {});
  t.deepEqual(Object.keys(byAnswer).sort(), ['hostnames-1', 'hostnames-2', 'hostnames-3']);
  // Uniform picks: 100 expected each, σ ≈ 8.2; 60 (20%) is ~5σ away.
  for (const [name, n] of Object.entries(byAnswer)) t.true(n >= 60, `${name} got ${n} of 300`);
  // χ² with 2 degrees of freedom; 13.8 is the 0.1% quantile.
  const chi2 = Object.values(byAnswer).reduce((sum, n) => sum + (n - 100) ** 2 / 100, 0);
  t.true(chi2 < 13.8, `χ² = ${chi2.toFixed(2)} (${JSON.stringify(byAnswer)})`);
});

privilegedSerial('no endpoints: a TCP connection to the ClusterIP is refused at once', async (t) => {
  const l = await DatapathLab.up(t);
  await l.addPod({ name: 'client', node: 'node-2', ports: backendPort });
  t.deepEqual(l.apply([hostnamesService()], []), []);

  const answers = await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, count: 5, timeoutMs: 2000 });
  for (const a of answers) {
    t.like(a, { ok: false, error: 'refused' });
    t.true(a.ms < 500, `refused after ${a.ms} ms`);
  }
});

privilegedSerial('an established TCP stream survives the removal of the other backends', async (t) => {
  const l = await DatapathLab.up(t);
  const backends = await threeBackendsAndAClient(l);
  t.deepEqual(l.apply([hostnamesService()], [hostnamesSlice(backends)]), []);

  const stream = l.lab.stream('client', { address: CLUSTER_IP, port: SERVICE_PORT, intervalMs: 20 });
  t.teardown(() => stream.stop().then(() => {}, () => {}));
  const { backend } = await stream.connected;
  const kept = backends.find((b) => b.name === backend);
  if (!kept) return t.fail(`stream answered by unknown backend ${backend}`);
  await new Promise((r) => setTimeout(r, 200));

  t.deepEqual(l.apply([hostnamesService()], [hostnamesSlice([kept])]), []);
  await new Promise((r) => setTimeout(r, 300));
  const after = tally(await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, count: 30, timeoutMs: 2000 }));
  t.deepEqual(after, { byAnswer: { [kept.name]: 30 }, byError: {} }, 'new connections go to the remaining backend only');

  const result = await stream.stop();
  t.is(result.backend, kept.name);
  t.is(result.error, null);
  t.true(result.intact, 'every echoed byte was what was sent');
  t.true(result.echoedBytes > 0 && result.echoedBytes === result.sentBytes, `${result.echoedBytes} of ${result.sentBytes} bytes echoed`);
  t.true(result.maxGapMs < 1000, `longest gap ${result.maxGapMs} ms`);
});
