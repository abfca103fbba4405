// sessionAffinity ClientIP: one client's new connections all go to one backend while they keep
// coming within timeoutSeconds (here 1 s, the smallest Kubernetes allows); once the client has
// been quiet for longer, its next connection is a fresh uniform pick.
import { privilegedSerial } from '../helpers/env.js';

import { tally } from '../../ts/lab/net/traffic.js';
import { CLUSTER_IP, DatapathLab, SERVICE_PORT, backendPort, hostnamesSlice, service, sleep } from './_fixture.js';

privilegedSerial('session affinity: a client sticks to one backend, until it is quiet for longer than the timeout', async (t) => {
  const l = await DatapathLab.up(t);
  const backends = [
    await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-2', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-3', node: 'node-2', ports: backendPort }),
  ];
  await l.addPod({ name: 'client', node: 'node-2', ports: backendPort });
  t.deepEqual(l.apply([service({ affinityTimeoutSeconds: 1 })], [hostnamesSlice(backends)]), []);
  const ask = async (count: number, protocol: 'TCP' | 'UDP' = 'TCP') =>
    tally(await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, protocol, count, concurrency: 1, timeoutMs: 2000 }));

  // 30 connections one after the other (well within 1 s of each other): one backend.
  const first = await ask(30);
  t.deepEqual(first.byError, {});
  const sticky = Object.keys(first.byAnswer);
  t.is(sticky.length, 1, `one backend for every connection: ${JSON.stringify(first.byAnswer)}`);
  // UDP is a frontend of its own, with its own affinity: it sticks too.
  const udp = await ask(20, 'UDP');
  t.is(Object.keys(udp.byAnswer).length, 1, `UDP: ${JSON.stringify(udp.byAnswer)}`);

  // After 1.5 s of silence the remembered backend has expired: the next pick is uniform, so each
  // round moves with probability 2/3; 8 rounds all staying put is a 1-in-6561 event.
  const seen = new Set(sticky);
  let previous = sticky[0]!;
  for (let round = 0; round < 8 && seen.size === 1; round++) {
    await sleep(1500);
    const again = await ask(5);
    t.deepEqual(again.byError, {});
    t.is(Object.keys(again.byAnswer).length, 1, `still sticky within a round: ${JSON.stringify(again.byAnswer)}`);
    previous = Object.keys(again.byAnswer)[0]!;
    seen.add(previous);
  }
  t.true(seen.size > 1, 'a new backend after the timeout');
});
