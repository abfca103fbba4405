// The node's own traffic to a ClusterIP (a process in the node's namespace, like the kubelet or a
// hostNetwork pod): it leaves through the service device, whose egress translates it; the replies
// come back to the node. Backends on both nodes: local and remote alike.
import { privilegedSerial } from '../helpers/env.js';

import { tally } from '../../ts/lab/net/traffic.js';
import { CLUSTER_IP, DatapathLab, SERVICE_PORT, backendPort, hostnamesSlice, service } from './_fixture.js';

privilegedSerial('the node itself reaches a ClusterIP, TCP and UDP; with no endpoints it is refused at once', async (t) => {
  const l = await DatapathLab.up(t);
  const backends = [
    await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-2', node: 'node-2', ports: backendPort }),
  ];
  t.deepEqual(l.apply([service()], [hostnamesSlice(backends)]), []);

  for (const protocol of ['TCP', 'UDP'] as const) {
    const got = tally(await l.lab.request('node-1', { address: CLUSTER_IP, port: SERVICE_PORT, protocol, count: 40, timeoutMs: 2000 }));
    t.deepEqual(got.byError, {}, protocol);
    t.deepEqual(Object.keys(got.byAnswer).sort(), ['hostnames-1', 'hostnames-2'], `${protocol}: ${JSON.stringify(got.byAnswer)}`);
  }

  t.deepEqual(l.apply([service()], []), []);
  const refused = await l.lab.request('node-1', { address: CLUSTER_IP, port: SERVICE_PORT, count: 3, timeoutMs: 2000 });
  for (const a of refused) {
    t.like(a, { ok: false, error: 'refused' });
    t.true(a.ms < 500, `refused after ${a.ms} ms`);
  }
});
