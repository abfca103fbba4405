// A client that reuses the source port of a closed ClusterIP connection for a direct connection to
// the backend that served it: the backend's SYN-ACK must reach the client untranslated (the closed
// flow's conntrack entries give way), and the direct connection completes at once, not after a
// SYN retransmission (1 s). The service connections end with a RST from the client, so that no
// TIME_WAIT socket on either side stands in the way of the reuse: only the datapath can.
import { privilegedSerial } from '../helpers/env.js';

import { CLUSTER_IP, DatapathLab, SERVICE_PORT, TARGET_PORT, backendPort, hostnamesSlice, parseWhoami, service } from './_fixture.js';

privilegedSerial('port reuse: a direct connection from the source port of a closed ClusterIP connection completes at once', async (t) => {
  const l = await DatapathLab.up(t);
  const remote = await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort });
  const local = await l.addPod({ name: 'hostnames-2', node: 'node-2', ports: backendPort });
  const client = await l.addPod({ name: 'client', node: 'node-2', ports: backendPort });

  for (const [backend, firstPort] of [[remote, 45000], [local, 45100]] as const) {
    const localPorts = [firstPort, firstPort + 1, firstPort + 2];
    t.deepEqual(l.apply([service()], [hostnamesSlice([backend])]), []);
    const viaService = await l.fixedPortRequests('client', {
      address: CLUSTER_IP, port: SERVICE_PORT, protocol: 'TCP', localPorts, timeoutMs: 2000, close: 'reset',
    });
    t.deepEqual(viaService.map((a) => (a.ok ? parseWhoami(a.answer).pod : a.error)), localPorts.map(() => backend.name), `${backend.name} through the ClusterIP`);

    // Below the first SYN retransmission: a SYN-ACK turned into the dead flow's costs a whole second.
    const direct = await l.fixedPortRequests('client', {
      address: backend.address, port: TARGET_PORT, protocol: 'TCP', localPorts, timeoutMs: 900, close: 'reset',
    });
    for (const a of direct) {
      if (!a.ok) {
        t.fail(`${backend.name} directly: ${a.error}`);
        continue;
      }
      const who = parseWhoami(a.answer);
      t.is(who.pod, backend.name);
      if (who.peer !== undefined) t.is(who.peer, client.address);
    }
  }
});
