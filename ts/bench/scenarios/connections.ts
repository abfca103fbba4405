/**
 * Scenario 1: new TCP connections per second and connect latency from a pod, with N Services
 * loaded, to the target (last-matched) ClusterIP and to a backend's pod IP — through no proxy at
 * all, kube-proxy's iptables layout (legacy and nft backends), its nftables layout, and bpfproxy.
 * For each N the paths run one after the other, each in a fresh, identical topology (see
 * topology.ts for why), so that the ratios at one N come from the same minutes.
 */
import type { CpuPlan } from '../cpus.js';
import { applyPath } from '../paths.js';
import type { Progress } from '../progress.js';
import type { Profile } from '../profile.js';
import type { ConnectionPoint, PathName } from '../results.js';
import type { BenchTools } from '../tools.js';
import { BenchTopology, SINK_PORT, type LoadgenResult } from '../topology.js';
import { TARGET_PORT, trafficWorkload } from '../workload.js';

export const CONNECTION_PATHS: PathName[] = ['direct', 'iptables-legacy', 'iptables-nft', 'nftables', 'bpfproxy'];

function brief(r: LoadgenResult | undefined): string {
  if (!r) return '-';
  const errors = r.errors ? r.errors.refused + r.errors.timeout + r.errors.unreachable + r.errors.other : 0;
  return `${Math.round(r.rate)}/s p50 ${r.latencyUs?.p50 ?? '?'} µs p99 ${r.latencyUs?.p99 ?? '?'} µs${errors ? `, ${errors} errors` : ''}`;
}

/**
 * The best of `rounds` runs: on a shared machine other work only ever slows a run down, so the
 * fastest run is the one least disturbed (each run's errors are kept with it).
 */
async function best(rounds: number, runOnce: () => Promise<LoadgenResult>): Promise<LoadgenResult> {
  let top = await runOnce();
  for (let i = 1; i < rounds; i++) {
    const r = await runOnce();
    if (r.rate > top.rate) top = r;
  }
  return top;
}

export async function connectionsScenario(p: Profile, tools: BenchTools, cpus: CpuPlan, progress: Progress): Promise<ConnectionPoint[]> {
  const points: ConnectionPoint[] = [];
  progress.begin('1 connections', p.connServices.length * CONNECTION_PATHS.length);
  for (const services of p.connServices) {
    for (const path of CONNECTION_PATHS) {
      progress.step(`N=${services} ${path}`);
      const topo = await BenchTopology.up({ tools, cpus, backends: p.targetEndpoints });
      try {
        const work = trafficWorkload(services, topo.backendPods);
        const applied = await applyPath(path, topo, work.input, p.applyBudgetMs);
        try {
          const podIp = topo.backendPods[0]!.address;
          const opts = { parallel: p.parallel, seconds: p.pointSeconds };
          // Pod IP first: bpfproxy keeps a translated flow's conntrack entries for 10 s after its
          // RST, and a direct connection reusing such a flow's client port within that time has
          // its SYN-ACK reverse-translated (see docs/benchmarks.md, "Findings").
          await topo.checkAnswers(topo.clientPod.name, podIp, SINK_PORT, `pod IP ${podIp}:${SINK_PORT} with ${path}`);
          const pod = await best(p.rounds, () => topo.loadgen(topo.clientPod.name, 'connect', podIp, SINK_PORT, opts));
          let clusterIp: LoadgenResult | undefined;
          if (path !== 'direct') {
            await topo.checkAnswers(topo.clientPod.name, work.clusterIp, TARGET_PORT, `ClusterIP ${work.clusterIp}:${TARGET_PORT} through ${path}`);
            clusterIp = await best(p.rounds, () => topo.loadgen(topo.clientPod.name, 'connect', work.clusterIp, TARGET_PORT, opts));
          }
          points.push({ path, services, podIp: pod, programMs: applied.programMs, ...(clusterIp ? { clusterIp } : {}) });
          progress.stepDone(`ClusterIP ${brief(clusterIp)} · pod IP ${brief(pod)}`);
        } finally {
          await applied.close();
        }
      } catch (e) {
        const error = (e as Error).message;
        points.push({ path, services, podIp: { mode: 'connect', seconds: 0, rate: 0 }, error });
        progress.stepDone(`FAILED: ${error}`);
      } finally {
        await topo.down();
      }
    }
  }
  return points;
}
