// Long-lived streaming connections: the helper later tests use to show that connections survive
// changes. Here: it survives changes elsewhere, and it reports the loss of its own server.
import { privileged } from '../helpers/env.js';
import { labFor } from './_fixture.js';

privileged('a streaming connection keeps echoing while other pods come and go', async (t) => {
  const lab = await labFor(t);
  const ports = [{ port: 9376, protocol: 'TCP' as const }];
  const target = await lab.addPod({ name: 'backend-1', node: 'node-2', ports });
  await lab.addPod({ name: 'backend-2', node: 'node-2', ports });
  await lab.addPod({ name: 'client', node: 'node-1', ports });
  const stream = lab.stream('client', { address: target.address, port: 9376, intervalMs: 10 });
  t.teardown(() => stream.stop().then(() => undefined));
  const { backend, local } = await stream.connected;
  t.is(backend, 'backend-1');
  t.true(local.startsWith('198.18.129.2:'));

  await lab.removePod('backend-2');
  await lab.addPod({ name: 'backend-3', node: 'node-2', ports });
  await new Promise((r) => setTimeout(r, 300));
  t.true(stream.progress.echoedBytes > 0, 'progress is reported while streaming');

  const result = await stream.stop();
  t.is(result.error, null);
  t.true(result.intact, 'every byte came back in order');
  t.true(result.sentLines > 20, `${result.sentLines} lines`);
  t.is(result.echoedBytes, result.sentBytes);
  t.true(result.maxGapMs < 500, `longest gap ${result.maxGapMs} ms`);
});

privileged('a streaming connection reports the loss of its own server', async (t) => {
  const lab = await labFor(t);
  const target = await lab.addPod({ name: 'doomed', node: 'node-2', ports: [{ port: 9376, protocol: 'TCP' }] });
  const stream = lab.stream('node-1', { address: target.address, port: 9376 });
  t.teardown(() => stream.stop().then(() => undefined));
  t.like(await stream.connected, { backend: 'doomed' });
  await lab.removePod('doomed');
  const result = await stream.stop();
  t.not(result.error, null);
  t.is(result.backend, 'doomed');
});

privileged('a stream to a closed port fails to connect, and says so', async (t) => {
  const lab = await labFor(t, { nodes: 1, clients: 1 });
  const stream = lab.stream('client-1', { address: lab.node(1).address, port: 9 });
  await t.throwsAsync(stream.connected, { message: /ECONNREFUSED/ });
  t.like(await stream.stop(), { backend: undefined, error: { error: 'refused' } });
});
