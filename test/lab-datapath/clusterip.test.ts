// ClusterIP with real sockets through the lab (_fixture.ts): a pod on one node reaches a backend on
// the other; a Service with no endpoints refuses at once.
import { privilegedSerial } from '../helpers/env.js';

import { tally } from '../../ts/lab/net/traffic.js';
import { CLUSTER_IP, DatapathLab, SERVICE_PORT, backendPort, checkWhoami, hostnamesSlice, service } from './_fixture.js';

privilegedSerial('ClusterIP: a pod on node-2 reaches a backend on node-1 over TCP and UDP', async (t) => {
  const l = await DatapathLab.up(t);
  const backend = await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort });
  await l.addPod({ name: 'client', node: 'node-2', ports: backendPort });
  t.deepEqual(l.apply([service()], [hostnamesSlice([backend])]), []);

  const tcp = tally(await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, count: 20, timeoutMs: 2000 }));
  t.deepEqual(tcp, { byAnswer: { 'hostnames-1': 20 }, byError: {} }, 'TCP');
  const udp = tally(await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, protocol: 'UDP', count: 20, timeoutMs: 2000 }));
  t.deepEqual(udp, { byAnswer: { 'hostnames-1': 20 }, byError: {} }, 'UDP');
  // Pods keep their address through a ClusterIP (kube-proxy's "preserve source pod IP").
  const who = await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, protocol: 'UDP', payload: 'whoami', count: 5, timeoutMs: 2000 });
  checkWhoami(t, who, { pod: 'hostnames-1', peer: l.lab.pod('client').address }, 'the client keeps its address');
});

privilegedSerial('no endpoints: TCP to the ClusterIP is refused at once, UDP gets port unreachable', async (t) => {
  const l = await DatapathLab.up(t);
  await l.addPod({ name: 'client', node: 'node-2', ports: backendPort });
  t.deepEqual(l.apply([service()], []), []);

  const answers = await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, count: 5, timeoutMs: 2000 });
  const udp = await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, protocol: 'UDP', count: 5, timeoutMs: 2000 });
  for (const a of [...answers, ...udp]) {
    t.like(a, { ok: false, error: 'refused' });
    t.true(a.ms < 500, `refused after ${a.ms} ms`);
  }
});
