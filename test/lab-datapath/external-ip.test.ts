// externalIPs: an address no node owns, routed by the outside client to the nodes (ECMP), served
// over TCP and UDP by backends on both nodes.
import { privilegedSerial } from '../helpers/env.js';

import { tally } from '../../ts/lab/net/traffic.js';
import { DatapathLab, EXTERNAL_IP, SERVICE_PORT, backendPort, hostnamesSlice, service } from './_fixture.js';

privilegedSerial('externalIP: an outside client reaches the service over TCP and UDP', async (t) => {
  const l = await DatapathLab.up(t);
  const backends = [
    await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-2', node: 'node-2', ports: backendPort }),
  ];
  t.deepEqual(l.apply([service({ externalIPs: [EXTERNAL_IP] })], [hostnamesSlice(backends)]), []);

  const tcp = tally(await l.lab.request('client-1', { address: EXTERNAL_IP, port: SERVICE_PORT, count: 40, timeoutMs: 2000 }));
  t.deepEqual(tcp.byError, {}, 'TCP');
  t.deepEqual(Object.keys(tcp.byAnswer).sort(), ['hostnames-1', 'hostnames-2']);
  const udp = tally(await l.lab.request('client-1', { address: EXTERNAL_IP, port: SERVICE_PORT, protocol: 'UDP', count: 40, timeoutMs: 2000 }));
  t.deepEqual(udp.byError, {}, 'UDP');
  t.deepEqual(Object.keys(udp.byAnswer).sort(), ['hostnames-1', 'hostnames-2']);
});
