// Traffic policies Local. externalTrafficPolicy Local: a node sends outside traffic only to its own
// endpoints and keeps the client's address; a node without one drops (and counts it).
// internalTrafficPolicy Local: ClusterIP traffic from a pod goes only to endpoints on its node;
// none there: dropped.
import { privilegedSerial } from '../helpers/env.js';

import { DropReason } from '../../ts/abi/drop-reason.js';
import { tally } from '../../ts/lab/net/traffic.js';
import { CLUSTER_IP, DatapathLab, NODE_PORT, SERVICE_PORT, backendPort, hostnamesSlice, checkWhoami, service } from './_fixture.js';

privilegedSerial('ETP Local: each node uses only its own endpoints and keeps the client address; a node with none drops', async (t) => {
  const l = await DatapathLab.up(t);
  const backends = [
    await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-2', node: 'node-2', ports: backendPort }),
  ];
  const svc = service({ type: 'NodePort', externalTrafficPolicy: 'Local' });
  t.deepEqual(l.apply([svc], [hostnamesSlice(backends)]), []);
  const client = l.lab.clients[0]!.address;

  for (const [node, pod] of [['node-1', 'hostnames-1'], ['node-2', 'hostnames-2']] as const) {
    const address = l.lab.node(node).address;
    for (const [protocol, port, payload] of [['TCP', NODE_PORT, 'whoami\n'], ['UDP', NODE_PORT + 1, 'whoami']] as const) {
      const answers = await l.lab.request('client-1', { address, port, protocol, payload, count: 30, timeoutMs: 2000 });
      checkWhoami(t, answers, { pod, peer: client }, `${protocol} via ${node}: the local pod, seeing the client`);
    }
  }

  // Only hostnames-2 left: node-1 has no local endpoint and drops.
  t.deepEqual(l.apply([svc], [hostnamesSlice([backends[1]!])]), []);
  const node1 = l.lab.node('node-1').address;
  const dropped = await l.lab.request('client-1', { address: node1, port: NODE_PORT, count: 3, timeoutMs: 600 });
  t.deepEqual(tally(dropped), { byAnswer: {}, byError: { timeout: 3 } });
  t.true(l.drops(DropReason.NO_LOCAL_ENDPOINTS, 'node-1') >= 3n, `NO_LOCAL_ENDPOINTS on node-1: ${l.drops(DropReason.NO_LOCAL_ENDPOINTS, 'node-1')}`);
  // node-2 still answers.
  const node2 = tally(await l.lab.request('client-1', { address: l.lab.node('node-2').address, port: NODE_PORT, count: 10, timeoutMs: 2000 }));
  t.deepEqual(node2, { byAnswer: { 'hostnames-2': 10 }, byError: {} });
});

privilegedSerial('ITP Local: a pod reaches only endpoints on its own node; with none there, dropped', async (t) => {
  const l = await DatapathLab.up(t);
  const backends = [
    await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-2', node: 'node-2', ports: backendPort }),
  ];
  await l.addPod({ name: 'client-a', node: 'node-1', ports: backendPort });
  await l.addPod({ name: 'client-b', node: 'node-2', ports: backendPort });
  const svc = service({ internalTrafficPolicy: 'Local' });
  t.deepEqual(l.apply([svc], [hostnamesSlice(backends)]), []);

  for (const [from, pod] of [['client-a', 'hostnames-1'], ['client-b', 'hostnames-2']] as const) {
    for (const protocol of ['TCP', 'UDP'] as const) {
      const got = tally(await l.lab.request(from, { address: CLUSTER_IP, port: SERVICE_PORT, protocol, count: 30, timeoutMs: 2000 }));
      t.deepEqual(got, { byAnswer: { [pod]: 30 }, byError: {} }, `${protocol} from ${from}`);
    }
  }

  t.deepEqual(l.apply([svc], [hostnamesSlice([backends[0]!])]), []);
  const dropped = await l.lab.request('client-b', { address: CLUSTER_IP, port: SERVICE_PORT, count: 3, timeoutMs: 600 });
  t.deepEqual(tally(dropped), { byAnswer: {}, byError: { timeout: 3 } });
  t.true(l.drops(DropReason.NO_LOCAL_ENDPOINTS, 'node-2') >= 3n);
  const still = tally(await l.lab.request('client-a', { address: CLUSTER_IP, port: SERVICE_PORT, count: 10, timeoutMs: 2000 }));
  t.deepEqual(still, { byAnswer: { 'hostnames-1': 10 }, byError: {} });
});
