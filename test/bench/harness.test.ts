// The bench's measuring pieces on real sockets: a bench topology, the native load generator and
// sinks, the direct path and bpfproxy configured as a path, and nothing left behind.
import test from 'ava';

import { cpuPlan } from '../../ts/bench/cpus.js';
import { applyPath } from '../../ts/bench/paths.js';
import { useSystemPath } from '../../ts/bench/system-path.js';
import { buildTools } from '../../ts/bench/tools.js';
import { BenchTopology, SINK_PORT } from '../../ts/bench/topology.js';
import { TARGET_PORT, trafficWorkload } from '../../ts/bench/workload.js';
import { privilegedSerial } from '../helpers/env.js';

useSystemPath();

privilegedSerial('load generator and sinks measure the direct path and bpfproxy, then the topology is gone', async (t) => {
  t.timeout(120_000);
  const tools = await buildTools();
  const topo = await BenchTopology.up({ tools, cpus: cpuPlan(), backends: 2 });
  t.teardown(() => topo.down());
  const id = topo.lab.id;
  const [be1] = topo.backendPods;
  const from = topo.clientPod.name;

  // Direct: pod → pod IP, every connection counted by the generator and accepted by a sink.
  const c0 = await topo.sinkCounters();
  const direct = await topo.loadgen(from, 'connect', be1!.address, SINK_PORT, { parallel: 4, seconds: 0.5 });
  const c1 = await topo.sinkCounters();
  t.true(direct.completed! > 0, JSON.stringify(direct));
  t.deepEqual(direct.errors, { refused: 0, timeout: 0, unreachable: 0, other: 0 });
  t.true(direct.latencyUs!.p50 > 0 && direct.latencyUs!.p50 <= direct.latencyUs!.p99);
  // A connection the generator reset right after the handshake may never be accepted, never the reverse.
  t.true(c1.accepted - c0.accepted <= direct.completed! + 8);
  t.true(c1.accepted - c0.accepted > 0);

  // Nothing listens on this port: refused, counted as such, not fatal.
  const refused = await topo.loadgen(from, 'connect', be1!.address, SINK_PORT + 1, { parallel: 1, seconds: 0.2 });
  t.is(refused.completed, 0);
  t.true(refused.errors!.refused > 0);

  // UDP: what the sinks count is at most what was sent.
  const u0 = await topo.sinkCounters();
  const udp = await topo.loadgen(from, 'udp', be1!.address, SINK_PORT, { parallel: 2, seconds: 0.3, payload: 18 });
  await new Promise((r) => setTimeout(r, 200));
  const u1 = await topo.sinkCounters();
  t.true(udp.sent! > 0);
  t.true(u1.udpPackets - u0.udpPackets > 0 && u1.udpPackets - u0.udpPackets <= udp.sent!);
  t.is(u1.udpBytes - u0.udpBytes, 18 * (u1.udpPackets - u0.udpPackets));

  // bpfproxy as a path: the target ClusterIP answers, spread over both backends' sinks.
  const work = trafficWorkload(100, topo.backendPods);
  const applied = await applyPath('bpfproxy', topo, work.input, 30_000);
  try {
    const a0 = await topo.sinkCounters();
    const crr = await topo.loadgen(from, 'crr', work.clusterIp, TARGET_PORT, { parallel: 4, seconds: 0.5 });
    const a1 = await topo.sinkCounters();
    t.true(crr.completed! > 0, JSON.stringify(crr));
    t.is(crr.errors!.timeout + crr.errors!.refused, 0);
    t.true(a1.accepted - a0.accepted >= crr.completed!);
  } finally {
    await applied.close();
  }

  await topo.down();
  t.deepEqual(await topo.lab.existingNetns(), [], `namespaces of lab ${id} are gone`);
});
