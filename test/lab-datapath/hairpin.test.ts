// Hairpin: a pod reaching itself through its own Service. The packet must come back to it with
// another source (the hairpin address the agent configures), or the pod would answer itself
// directly and the connection would never complete.
import { privilegedSerial } from '../helpers/env.js';

import { tally } from '../../ts/lab/net/traffic.js';
import { CLUSTER_IP, DatapathLab, SERVICE_PORT, backendPort, hostnamesSlice, checkWhoami, labAgentSettings, service } from './_fixture.js';

privilegedSerial('hairpin: a pod reaches itself through its ClusterIP, TCP and UDP', async (t) => {
  const l = await DatapathLab.up(t);
  const pod = await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort });
  t.deepEqual(l.apply([service()], [hostnamesSlice([pod])]), []);
  const hairpinIp = labAgentSettings(l.lab.node('node-1'), '/unused').datapath.hairpinIp!;

  for (const [protocol, payload] of [['TCP', 'whoami\n'], ['UDP', 'whoami']] as const) {
    const answers = await l.lab.request('hostnames-1', { address: CLUSTER_IP, port: SERVICE_PORT, protocol, payload, count: 10, timeoutMs: 2000 });
    checkWhoami(t, answers, { pod: 'hostnames-1', peer: hairpinIp }, protocol);
  }
  const plain = tally(await l.lab.request('hostnames-1', { address: CLUSTER_IP, port: SERVICE_PORT, count: 20, timeoutMs: 2000 }));
  t.deepEqual(plain, { byAnswer: { 'hostnames-1': 20 }, byError: {} });
});
