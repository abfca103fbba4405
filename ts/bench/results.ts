/**
 * The shape of a bench run's results (results.json): one record per measured point, grouped by
 * scenario, the machine it ran on, and the targets checked against the figures. The
 * Markdown report and the charts are rendered from this and nothing else.
 */
import type { LoadgenResult } from './topology.js';

export interface MachineInfo {
  host: string;
  kernel: string;
  cpuModel: string;
  cpus: number;
  memoryMiB: number;
  node: string;
  iptables: string;
  nft: string;
  commit: string;
}

export interface RunMeta {
  startedAt: string;
  finishedAt: string;
  seconds: number;
  quick: boolean;
  machine: MachineInfo;
  pinning: { generator: number; datapath: number; limits: string[] };
  tools: string[];
  profile: Record<string, unknown>;
}

/** Paths a connection can take: no proxy, or one of the proxies configured in the node. */
export type PathName = 'direct' | 'iptables-legacy' | 'iptables-nft' | 'nftables' | 'bpfproxy' | 'bpfproxy-tc' | 'bpfproxy-xdp';

/** Scenario 1: one (path, N) point. */
export interface ConnectionPoint {
  path: PathName;
  services: number;
  /** To the target (last-matched) ClusterIP; absent for the direct path. */
  clusterIp?: LoadgenResult;
  /** To a backend's pod IP with the same rules loaded. */
  podIp: LoadgenResult;
  /** How long loading the rules took (side information; scenario 4 measures it properly). */
  programMs?: number;
  error?: string;
}

/** Scenario 2: one path's NodePort figures. */
export interface NodePortPoint {
  path: PathName;
  crr?: LoadgenResult;
  /**
   * forwarded: packets the backend pods' interfaces received (what the node forwarded; absent in
   * results from before it was measured); received: what the sinks read.
   */
  udp?: { sent: LoadgenResult; receivedRate: number; received: number; forwarded?: number; forwardedRate?: number };
  stream?: { sent: LoadgenResult; receivedBytesPerS: number };
  error?: string;
}

/** Scenario 3: ns/packet by case. */
export interface TestRunPoint {
  services: number;
  program: string;
  case: string;
  nsPerPacket: number;
  repeat: number;
}

/** Scenario 4. */
export interface ProgrammingPoint {
  tool: 'iptables-legacy' | 'iptables-nft' | 'nftables' | 'bpfproxy';
  services: number;
  endpointsPerService: number;
  /** NaN when the tool ran out of budget (then fullAtLeastMs holds the budget). */
  fullMs: number;
  fullAtLeastMs?: number;
  changeMs: number;
  /** What "one change" means for this tool. */
  changeKind: string;
  lines?: number;
  detail?: Record<string, number>;
  error?: string;
}

/** Scenario 5. */
export interface MaglevPoint {
  m: number;
  backends: number;
  buildMs: number;
  minSlots: number;
  maxSlots: number;
  /** (max − min) / (M/N). */
  imbalance: number;
  /** Share of all slots that changed owner when one backend went away. */
  movedShare: number;
  /** Share of slots of the remaining backends that changed owner (should be ~0). */
  otherMovedShare: number;
}

/** Scenario 6. */
export interface MemoryPoint {
  services: number;
  endpointsPerService: number;
  /** Which process: the real agent, or the model → entries → reconciler stand-in. */
  process: string;
  rssMiB: number;
  peakRssMiB: number;
  mapMemlockMiB: number;
  maps: { name: string; maxEntries: number; memlockBytes: number }[];
  /** Why the stand-in was measured instead of the agent. */
  note?: string;
  error?: string;
}

export interface TargetCheck {
  id: string;
  target: string;
  measured: string;
  /** null: not measured in this run (scenario skipped or failed). */
  met: boolean | null;
  note?: string;
}

export interface BenchResults {
  meta: RunMeta;
  connections?: ConnectionPoint[];
  nodePort?: NodePortPoint[];
  testRun?: TestRunPoint[];
  programming?: ProgrammingPoint[];
  maglev?: MaglevPoint[];
  memory?: MemoryPoint[];
  /** Scenarios that failed as a whole: scenario → error. */
  failures: Record<string, string>;
  targets: TargetCheck[];
}
