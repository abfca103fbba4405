/**
 * Scenario 2: a NodePort from an outside client (client-1 → node-1:30080/30081 across the fabric
 * bridge), backends on the node: request rate (a connection per request), small-packet rate (64-byte
 * UDP frames over `udpFlows` flows, counted as the backend pods' interfaces receive them — what the
 * node forwarded — and at the sinks) and single-stream TCP
 * throughput (counted at the sinks) — through iptables (both backends), nftables, bpfproxy on tc,
 * bpfproxy with XDP (generic mode: on the lab's veth uplink native XDP cannot redirect), and the
 * direct path (the client routed to the pod IP, no proxy).
 */
import type { CpuPlan } from '../cpus.js';
import { applyPath } from '../paths.js';
import type { Progress } from '../progress.js';
import type { Profile } from '../profile.js';
import type { NodePortPoint, PathName } from '../results.js';
import type { BenchTools } from '../tools.js';
import { BenchTopology, SINK_PORT } from '../topology.js';
import { TARGET_NODE_PORT_TCP, TARGET_NODE_PORT_UDP, trafficWorkload } from '../workload.js';

export const NODEPORT_PATHS: PathName[] = ['direct', 'iptables-legacy', 'iptables-nft', 'nftables', 'bpfproxy-tc', 'bpfproxy-xdp'];

export async function nodePortScenario(p: Profile, tools: BenchTools, cpus: CpuPlan, progress: Progress): Promise<NodePortPoint[]> {
  const points: NodePortPoint[] = [];
  progress.begin('2 NodePort', NODEPORT_PATHS.length);
  for (const path of NODEPORT_PATHS) {
    progress.step(path);
    const topo = await BenchTopology.up({ tools, cpus, backends: p.targetEndpoints });
    try {
      const work = trafficWorkload(1, topo.backendPods, { nodePort: true });
      const applied = await applyPath(path, topo, work.input, p.applyBudgetMs);
      try {
        const from = topo.outside.name;
        const direct = path === 'direct';
        const address = direct ? topo.backendPods[0]!.address : topo.node.address;
        const tcpPort = direct ? SINK_PORT : TARGET_NODE_PORT_TCP;
        const udpPort = direct ? SINK_PORT : TARGET_NODE_PORT_UDP;
        await topo.checkAnswers(from, address, tcpPort, `${address}:${tcpPort} through ${path}`);

        const crr = await topo.loadgen(from, 'crr', address, tcpPort, { parallel: p.parallel, seconds: p.pointSeconds });

        const u0 = await topo.sinkCounters();
        const f0 = await topo.backendRxPackets();
        const sent = await topo.loadgen(from, 'udp', address, udpPort, { parallel: p.udpFlows, seconds: p.pointSeconds, payload: 18 });
        await new Promise((r) => setTimeout(r, 200)); // what is still queued arrives
        const u1 = await topo.sinkCounters();
        const forwarded = (await topo.backendRxPackets()) - f0;
        const received = u1.udpPackets - u0.udpPackets;

        const s0 = await topo.sinkCounters();
        const stream = await topo.loadgen(from, 'stream', address, tcpPort, { parallel: 1, seconds: p.pointSeconds });
        await new Promise((r) => setTimeout(r, 200));
        const s1 = await topo.sinkCounters();

        points.push({
          path,
          crr,
          udp: { sent, received, receivedRate: received / sent.seconds, forwarded, forwardedRate: forwarded / sent.seconds },
          stream: { sent: stream, receivedBytesPerS: stream.seconds > 0 ? (s1.tcpBytes - s0.tcpBytes) / stream.seconds : 0 },
        });
        progress.stepDone(
          `${Math.round(crr.rate)} req/s · UDP ${Math.round(forwarded / sent.seconds)} pkt/s forwarded, ${Math.round(received / sent.seconds)} arrived of ${Math.round(sent.rate)} sent · ` +
            `${((8 * (s1.tcpBytes - s0.tcpBytes)) / Math.max(stream.seconds, 1e-9) / 1e9).toFixed(2)} Gbit/s`,
        );
      } finally {
        await applied.close();
      }
    } catch (e) {
      const error = (e as Error).message;
      points.push({ path, error });
      progress.stepDone(`FAILED: ${error}`);
    } finally {
      await topo.down();
    }
  }
  return points;
}
