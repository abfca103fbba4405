/**
 * The bench topology, built with the lab (docs/lab.md) so it has the same shape as every other lab:
 *
 *   outside client (client-1) ── fabric bridge ── node-1 (eth0 198.18.0.11)   ← the proxy under test
 *                                                    ├─ bench-client   (a pod: the ClusterIP client)
 *                                                    ├─ bench-be-1 …   (backend pods, each with a sink)
 *
 * The node namespace is the one doing the proxying: iptables/nftables rules go there, bpfproxy's
 * programs attach to its pod veths and uplink. A pod → ClusterIP connection crosses the node as in
 * a cluster (pod veth → node → backend veth); a pod → pod-IP connection is the "no proxy" path.
 * The outside client gets a route to the pod CIDR via the node, for the direct NodePort baseline.
 *
 * Backends run the C sink on SINK_PORT (their lab hostname server stays idle on its own port).
 * A fresh topology is built for each path measured: iptables' legacy tables keep their netfilter
 * hooks (and conntrack) registered until their namespace dies, which would tax whatever ran next.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

import { CLUSTER_CIDR } from '../lab/net/address-plan.js';
import type { ClientState, NodeState, PodState } from '../lab/lab-state.js';
import { Lab } from '../lab/topology.js';
import { runId } from '../lab/net/netns.js';
import { run } from '../util/exec.js';
import { pinned, steerSoftirq, type CpuPlan } from './cpus.js';
import { whileRunning } from './interrupt.js';
import type { BenchTools } from './tools.js';

export const SINK_PORT = 8080;
/** The sinks' listen backlog (bench/sink.c listens with the largest the namespace allows). */
const SINK_BACKLOG = 65535;
/** The port the lab's idle hostname servers take (a pod must declare one). */
const IDLE_PORT = 9376;

export type LoadgenMode = 'connect' | 'crr' | 'udp' | 'stream';

export interface LoadgenOptions {
  /** Parallel connections (connect, crr, stream) or flows (udp). */
  parallel: number;
  seconds: number;
  payload?: number;
  /** connect/crr: stop after this many completions. */
  count?: number;
}

export interface LoadgenErrors {
  refused: number;
  timeout: number;
  unreachable: number;
  other: number;
}

/** What `loadgen` prints (bench/loadgen.c). */
export interface LoadgenResult {
  mode: LoadgenMode;
  seconds: number;
  rate: number;
  completed?: number;
  latencyUs?: { p50: number; p90: number; p99: number; mean: number; max: number };
  errors?: LoadgenErrors;
  sent?: number;
  bytes?: number;
  error?: string;
}

export interface SinkCounters {
  accepted: number;
  tcpBytes: number;
  udpPackets: number;
  udpBytes: number;
}

class Sink {
  private readonly waiting: ((line: string) => void)[] = [];

  private constructor(readonly child: ChildProcess) {}

  static start(netns: string, cpu: number, sinkPath: string, maxSeconds: number): Promise<Sink> {
    const [cmd, args] = pinned(cpu, sinkPath, [String(SINK_PORT), String(maxSeconds)]);
    const child = spawn('ip', ['netns', 'exec', netns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const sink = new Sink(child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sink in ${netns} did not start within 5 s: ${stderr}`)), 5000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`sink in ${netns} exited (${code}): ${stderr.trim()}`));
      });
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        if (line === 'ready') {
          clearTimeout(timer);
          resolve(sink);
          return;
        }
        sink.waiting.shift()?.(line);
      });
    });
  }

  counters(): Promise<SinkCounters> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the sink did not report its counters within 2 s')), 2000);
      this.waiting.push((line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as SinkCounters);
      });
      this.child.kill('SIGUSR1');
    });
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
  }
}

export interface BenchTopologyOptions {
  tools: BenchTools;
  cpus: CpuPlan;
  /** Backend pods (each runs a sink). */
  backends: number;
  /** A sink outliving this is stopped by itself (seconds). */
  maxSeconds?: number;
}

export class BenchTopology {
  private constructor(
    readonly lab: Lab,
    readonly node: NodeState,
    readonly clientPod: PodState,
    readonly backendPods: PodState[],
    readonly outside: ClientState,
    private readonly sinks: Sink[],
    private readonly opts: BenchTopologyOptions,
    private readonly forget: () => void,
  ) {}

  static async up(opts: BenchTopologyOptions): Promise<BenchTopology> {
    const lab = await Lab.up({ name: `bench-${runId()}`, nodes: 1, clients: 1, lbRoute: { mode: 'node', node: 1 } });
    const forget = whileRunning(`lab ${lab.name}`, () => lab.down());
    const sinks: Sink[] = [];
    try {
      const node = lab.node(1);
      const ports = [{ port: IDLE_PORT, protocol: 'TCP' as const }];
      const clientPod = await lab.addPod({ name: 'bench-client', node: 1, ports });
      const backendPods: PodState[] = [];
      for (let i = 1; i <= opts.backends; i++) backendPods.push(await lab.addPod({ name: `bench-be-${i}`, node: 1, ports }));
      const outside = lab.clients[0]!;
      await lab.netns(outside.name).ip('route', 'add', CLUSTER_CIDR, 'via', node.address);
      for (const short of ['fabric', node.name, outside.name, clientPod.name, ...backendPods.map((p) => p.name)]) {
        await steerSoftirq(lab.netns(short), opts.cpus.datapath);
      }
      for (const p of backendPods) {
        // A full accept queue drops SYNs (ListenOverflows), and each drop stalls a load generator
        // slot for the 1 s SYN retransmission: the sink, sharing the datapath core with the
        // softirq work, falls behind in bursts, and the connection rate would measure those stalls
        // rather than the path. somaxconn is per namespace; this one is the backend pod's.
        await lab.netns(p.name).sysctl('net.core.somaxconn', SINK_BACKLOG);
        sinks.push(await Sink.start(p.netns, opts.cpus.datapath, opts.tools.sink, opts.maxSeconds ?? 3600));
      }
      return new BenchTopology(lab, node, clientPod, backendPods, outside, sinks, opts, forget);
    } catch (e) {
      for (const s of sinks) s.stop();
      await lab.down().catch(() => {});
      forget();
      throw e;
    }
  }

  netnsPath(short: string): string {
    return this.lab.netns(short).path;
  }

  netnsName(short: string): string {
    return this.lab.netnsName(short);
  }

  /**
   * Whether a path answers: up to 3 s (a dropped SYN is retransmitted after 1 s) until 20
   * requests completed. Throws with the errors seen otherwise.
   */
  async checkAnswers(from: string, address: string, port: number, what: string): Promise<void> {
    const probe = await this.loadgen(from, 'crr', address, port, { parallel: 2, seconds: 3, count: 20 });
    if (!probe.completed) throw new Error(`${what} does not answer (${JSON.stringify(probe.errors)}): the path is misconfigured or broken`);
  }

  /** Runs the load generator, pinned to the generator core, in a namespace (by short name). */
  async loadgen(from: string, mode: LoadgenMode, address: string, port: number, o: LoadgenOptions): Promise<LoadgenResult> {
    const args = [mode, address, String(port), '-c', String(o.parallel), '-d', String(o.seconds), ...(o.payload !== undefined ? ['-s', String(o.payload)] : []), ...(o.count !== undefined ? ['-n', String(o.count)] : [])];
    const [cmd, pinnedArgs] = pinned(this.opts.cpus.generator, this.opts.tools.loadgen, args);
    const out = await this.lab.exec(from, cmd, pinnedArgs, { timeoutMs: (o.seconds + 15) * 1000 });
    return JSON.parse(out.trim().split('\n').pop()!) as LoadgenResult;
  }

  /** The sinks' counters, summed. */
  async sinkCounters(): Promise<SinkCounters> {
    const all = await Promise.all(this.sinks.map((s) => s.counters()));
    return all.reduce(
      (a, c) => ({ accepted: a.accepted + c.accepted, tcpBytes: a.tcpBytes + c.tcpBytes, udpPackets: a.udpPackets + c.udpPackets, udpBytes: a.udpBytes + c.udpBytes }),
      { accepted: 0, tcpBytes: 0, udpPackets: 0, udpBytes: 0 },
    );
  }

  /**
   * Packets the backend pods' interfaces have received: what the node forwarded into them, after
   * the proxy's work, whether or not the sinks got the CPU to read them (veth counts a packet on
   * the pod side once it is queued for the pod).
   */
  async backendRxPackets(): Promise<number> {
    let n = 0;
    for (const p of this.backendPods) n += Number((await this.lab.netns(p.name).exec('cat', ['/sys/class/net/eth0/statistics/rx_packets'])).trim());
    return n;
  }

  /** Runs a command in the node namespace (where the proxy lives). */
  nodeExec(cmd: string, args: string[], input?: string): Promise<string> {
    return run('ip', ['netns', 'exec', this.node.netns, cmd, ...args], { timeoutMs: 600_000, ...(input !== undefined ? { input } : {}) });
  }

  async down(): Promise<void> {
    for (const s of this.sinks) s.stop();
    await this.lab.down();
    this.forget();
  }
}
