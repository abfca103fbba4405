// Random, uniform backend choice for cluster-internal traffic, measured with real connections:
// each request is a new TCP connection (a new flow), and the counts must fit a uniform spread
// (χ² at the 0.1% level, so a correct datapath fails about once in a thousand runs).
import type { ExecutionContext } from 'ava';

import { privilegedSerial } from '../helpers/env.js';

import { tally } from '../../ts/lab/net/traffic.js';
import { CLUSTER_IP, DatapathLab, SERVICE_PORT, backendPort, chiSquareUniform, hostnamesSlice, service } from './_fixture.js';

// χ² quantiles at 0.1% for 1 and 2 degrees of freedom.
const CHI2_999 = { 1: 10.83, 2: 13.82 } as Record<number, number>;

async function spreadOver(t: ExecutionContext, backendCount: number): Promise<void> {
  const l = await DatapathLab.up(t);
  const backends = [];
  for (let i = 1; i <= backendCount; i++) {
    // Alternate nodes: local and remote backends must be picked alike.
    backends.push(await l.addPod({ name: `hostnames-${i}`, node: i % 2 === 1 ? 'node-1' : 'node-2', ports: backendPort }));
  }
  await l.addPod({ name: 'client', node: 'node-2', ports: backendPort });
  t.deepEqual(l.apply([service()], [hostnamesSlice(backends)]), []);

  const count = 150 * backendCount;
  const { byAnswer, byError } = tally(await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, count, timeoutMs: 2000 }));
  t.deepEqual(byError, {});
  const names = backends.map((b) => b.name);
  t.deepEqual(Object.keys(byAnswer).sort(), names);
  const chi2 = chiSquareUniform(byAnswer, names);
  t.true(chi2 < CHI2_999[backendCount - 1]!, `χ² = ${chi2.toFixed(2)} over ${count} connections (${JSON.stringify(byAnswer)})`);
}

privilegedSerial('ClusterIP: 300 TCP connections spread evenly over 2 backends', (t) => spreadOver(t, 2));
privilegedSerial('ClusterIP: 450 TCP connections spread evenly over 3 backends', (t) => spreadOver(t, 3));
