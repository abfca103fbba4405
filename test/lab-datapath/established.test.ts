// Established connections keep their backend while the backend set changes: the other backends
// removed, or their own backend marked terminating (ready=false, serving=true, terminating=true)
// while new connections avoid it.
import type { ExecutionContext } from 'ava';

import { privilegedSerial } from '../helpers/env.js';

import type { PodState } from '../../ts/lab/lab-state.js';
import { tally } from '../../ts/lab/net/traffic.js';
import { CLUSTER_IP, DatapathLab, SERVICE_PORT, TERMINATING, backendPort, hostnamesSlice, service, sleep } from './_fixture.js';

/** hostnames-1 and -2 on node-1, hostnames-3 on node-2, and a client pod on node-2. */
async function threeBackendsAndAClient(l: DatapathLab): Promise<PodState[]> {
  const backends = [
    await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-2', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-3', node: 'node-2', ports: backendPort }),
  ];
  await l.addPod({ name: 'client', node: 'node-2', ports: backendPort });
  return backends;
}

/** Opens a stream, applies `change(backend of the stream)`, checks new connections, then the stream. */
async function streamSurvives(
  t: ExecutionContext,
  change: (l: DatapathLab, kept: PodState, backends: PodState[]) => { expectNew: string[] },
): Promise<void> {
  const l = await DatapathLab.up(t);
  const backends = await threeBackendsAndAClient(l);
  t.deepEqual(l.apply([service()], [hostnamesSlice(backends)]), []);

  const stream = l.lab.stream('client', { address: CLUSTER_IP, port: SERVICE_PORT, intervalMs: 20 });
  t.teardown(() => stream.stop().then(() => {}, () => {}));
  const { backend } = await stream.connected;
  const kept = backends.find((b) => b.name === backend);
  if (!kept) return void t.fail(`stream answered by unknown backend ${backend}`);
  await sleep(200);

  const { expectNew } = change(l, kept, backends);
  await sleep(300);
  const after = tally(await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, count: 60, timeoutMs: 2000 }));
  t.deepEqual(after.byError, {});
  t.deepEqual(Object.keys(after.byAnswer).sort(), expectNew.sort(), `new connections: ${JSON.stringify(after.byAnswer)}`);

  const result = await stream.stop();
  t.is(result.backend, kept.name);
  t.is(result.error, null);
  t.true(result.intact, 'every echoed byte was what was sent');
  t.true(result.echoedBytes > 0 && result.echoedBytes === result.sentBytes, `${result.echoedBytes} of ${result.sentBytes} bytes echoed`);
  t.true(result.maxGapMs < 1000, `longest gap ${result.maxGapMs} ms`);
}

privilegedSerial('an established TCP stream survives the removal of the other backends', (t) =>
  streamSurvives(t, (l, kept) => {
    t.deepEqual(l.apply([service()], [hostnamesSlice([kept])]), []);
    return { expectNew: [kept.name] };
  }));

privilegedSerial('an established TCP stream survives its own backend turning terminating; new connections avoid it', (t) =>
  streamSurvives(t, (l, kept, backends) => {
    t.deepEqual(l.apply([service()], [hostnamesSlice(backends, { conditions: { [kept.name]: TERMINATING } })]), []);
    return { expectNew: backends.filter((b) => b !== kept).map((b) => b.name) };
  }));
