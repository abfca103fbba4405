// ICMP errors about translated flows reach the client translated back: a UDP datagram to a
// backend port nobody listens on draws a port unreachable from the backend's kernel, which quotes
// the translated datagram; the client's connected socket sees "connection refused" only if the
// quote is restored to what it sent. Through a ClusterIP from a pod, and through a NodePort from
// outside (masqueraded: the error comes back to the node's uplink).
import { privilegedSerial } from '../helpers/env.js';

import { tally } from '../../ts/lab/net/traffic.js';
import { CLUSTER_IP, DatapathLab, NODE_PORT, SERVICE_PORT, backendPort, hostnamesSlice, service } from './_fixture.js';

const CLOSED_PORT = 9999;

privilegedSerial('ICMP port unreachable from a backend reaches the client translated: UDP is refused at once', async (t) => {
  const l = await DatapathLab.up(t);
  const backend = await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort });
  await l.addPod({ name: 'client', node: 'node-2', ports: backendPort });
  t.deepEqual(l.apply([service({ type: 'NodePort' })], [hostnamesSlice([backend], { targetPort: CLOSED_PORT })]), []);

  const viaClusterIp = await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, protocol: 'UDP', count: 5, timeoutMs: 2000 });
  t.deepEqual(tally(viaClusterIp), { byAnswer: {}, byError: { refused: 5 } }, 'pod → ClusterIP → backend on the other node');
  for (const node of l.lab.nodes) {
    const viaNodePort = await l.lab.request('client-1', { address: node.address, port: NODE_PORT + 1, protocol: 'UDP', count: 5, timeoutMs: 2000 });
    t.deepEqual(tally(viaNodePort), { byAnswer: {}, byError: { refused: 5 } }, `outside → NodePort on ${node.name}`);
  }
});
