// Maglev for external traffic: every node builds the same table and hashes the same flow to the
// same entry, so a flow reaches the same backend whichever node the outside network hands it to.
// The client sends from fixed source ports to an externalIP (ETP Cluster) routed through node-1,
// then, after its route is moved to node-2, sends the very same flows again.
import { privilegedSerial } from '../helpers/env.js';

import { DatapathLab, EXTERNAL_IP, SERVICE_PORT, backendPort, hostnamesSlice, parseWhoami, service } from './_fixture.js';

privilegedSerial('Maglev: a flow reaches the same backend through node-1 and through node-2 (TCP and UDP)', async (t) => {
  const l = await DatapathLab.up(t, { lbRoute: { mode: 'node', node: 1 } });
  const backends = [
    await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-2', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-3', node: 'node-2', ports: backendPort }),
  ];
  t.deepEqual(l.apply([service({ externalIPs: [EXTERNAL_IP] })], [hostnamesSlice(backends)]), []);

  const flows = {
    UDP: Array.from({ length: 24 }, (_, i) => 40000 + i),
    TCP: Array.from({ length: 24 }, (_, i) => 41000 + i),
  };
  const via = async (node: string) => {
    const out: Record<string, { pod: string; peer: string | undefined }[]> = {};
    for (const protocol of ['UDP', 'TCP'] as const) {
      const answers = await l.fixedPortRequests('client-1', { address: EXTERNAL_IP, port: SERVICE_PORT, protocol, localPorts: flows[protocol], timeoutMs: 2000 });
      t.deepEqual(answers.filter((a) => !a.ok), [], `${protocol} via ${node}`);
      out[protocol] = answers.map((a) => (a.ok ? parseWhoami(a.answer) : { pod: '?', peer: undefined }));
    }
    return out;
  };

  const first = await via('node-1');
  await l.lab.exec('client-1', 'ip', ['route', 'replace', '198.19.255.0/24', 'via', l.lab.node('node-2').address]);
  const second = await via('node-2');

  for (const protocol of ['UDP', 'TCP'] as const) {
    const a = first[protocol]!.map((w) => w.pod);
    const b = second[protocol]!.map((w) => w.pod);
    t.deepEqual(b, a, `${protocol}: the same backend for every flow`);
    t.true(new Set(a).size > 1, `${protocol}: the flows spread over backends (${JSON.stringify(a)})`);
    // Really two paths: remote backends saw node-1's address first, node-2's then.
    t.true(first[protocol]!.some((w) => w.peer === l.lab.node('node-1').address), `${protocol}: node-1 masqueraded some`);
    t.true(second[protocol]!.some((w) => w.peer === l.lab.node('node-2').address), `${protocol}: node-2 masqueraded some`);
  }
});
