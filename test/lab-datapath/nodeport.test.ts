// NodePort from an outside client (client-1, on the fabric) to every node's address, TCP and UDP.
// The one backend runs on node-2: through node-1 the flow is masqueraded to node-1 and its reply
// comes back to node-1's uplink to be reversed; through node-2 the backend is local, the client's
// address is kept and the reply is reversed at the backend's veth. Both with XDP (generic) in
// front of tc, and with tc alone.
import type { ExecutionContext } from 'ava';

import { privilegedSerial } from '../helpers/env.js';

import type { UplinkXdpMode } from '../../ts/dataplane/attach.js';
import { DatapathLab, NODE_PORT, backendPort, hostnamesSlice, checkWhoami, service } from './_fixture.js';

async function nodePortOnEveryNode(t: ExecutionContext, xdpMode: UplinkXdpMode): Promise<void> {
  const l = await DatapathLab.up(t, { xdpMode });
  const backend = await l.addPod({ name: 'hostnames-1', node: 'node-2', ports: backendPort });
  t.deepEqual(l.apply([service({ type: 'NodePort' })], [hostnamesSlice([backend])]), []);
  const client = l.lab.clients[0]!.address;

  for (const node of l.lab.nodes) {
    // The peer the backend sees: the node that masqueraded, or the client itself.
    const peer = node.name === backend.node ? client : node.address;
    for (const [protocol, port, payload] of [['TCP', NODE_PORT, 'whoami\n'], ['UDP', NODE_PORT + 1, 'whoami']] as const) {
      const answers = await l.lab.request('client-1', { address: node.address, port, protocol, payload, count: 20, timeoutMs: 2000 });
      checkWhoami(t, answers, { pod: 'hostnames-1', peer }, `${protocol} to ${node.name} (${node.address}:${port})`);
    }
  }
}

privilegedSerial('NodePort: an outside client reaches the service on every node, TCP and UDP (XDP + tc)', (t) => nodePortOnEveryNode(t, 'generic'));
privilegedSerial('NodePort: an outside client reaches the service on every node, TCP and UDP (tc alone)', (t) => nodePortOnEveryNode(t, 'off'));
