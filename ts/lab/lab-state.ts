/**
 * A lab's state on disk, so that separate `bpfproxy lab …` invocations (and tests, and later the
 * agents) find the same lab: `/run/bpfproxy/labs/<name>.json` is exactly what `lab status --json`
 * prints. /run is a tmpfs, so a reboot (which also removes every namespace) forgets labs too.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { native } from '../addon/index.js';

export const DEFAULT_STATE_DIR = '/run/bpfproxy/labs';
export const DEFAULT_LAB_NAME = 'default';
export const LAB_STATE_VERSION = 1;

export type Protocol = 'TCP' | 'UDP';

/** How outside clients reach LoadBalancer/external IPs: through one node, or ECMP over all nodes. */
export type LbRoute = { mode: 'node'; node: number } | { mode: 'ecmp' };

export interface FabricState {
  netns: string;
  bridge: string;
  /** The second node network's bridge, when the lab has one (`secondNetwork`). */
  secondBridge?: string;
}

/** How pods on different nodes reach each other: routes via node addresses, or a VXLAN overlay. */
export type PodNetwork = 'routed' | 'vxlan';

/** A node's VXLAN device (`podNetwork: 'vxlan'`), flannel's flannel.1. */
export interface VtepState {
  device: string;
  vni: number;
  port: number;
  /** Its /32, the network address of the node's pod CIDR: the next hop other nodes route to. */
  address: string;
  mac: string;
  mtu: number;
}

/** A node's second uplink, on the second node network. */
export interface SecondUplinkState {
  interface: string;
  fabricPort: string;
  address: string;
}

export interface NodeState {
  name: string;
  index: number;
  netns: string;
  /** The uplink veth inside the node, where XDP and tc attach. */
  uplink: string;
  /** Its peer, a port of the fabric bridge. */
  fabricPort: string;
  address: string;
  podCidr: string;
  /** The dummy interface that the Service and external ranges are routed to (see docs/lab.md). */
  serviceDevice: string;
  secondUplink?: SecondUplinkState;
  vtep?: VtepState;
}

export interface ClientState {
  name: string;
  index: number;
  netns: string;
  interface: string;
  fabricPort: string;
  address: string;
  /** Which node network it is on (absent: the first). */
  network?: 'second';
}

export interface PodPort {
  port: number;
  protocol: Protocol;
  name?: string;
}

export interface ServerProcess {
  pid: number;
  /** /proc/<pid>/stat start time, so that a reused pid is never mistaken for our server. */
  startTime: string;
  log: string;
}

export interface PodState {
  name: string;
  node: string;
  netns: string;
  address: string;
  /** The node side of the pod's veth (tc attaches here); the pod side is always eth0. '' for hostNetwork. */
  hostInterface: string;
  hostMac: string;
  ports: PodPort[];
  labels: Record<string, string>;
  server: ServerProcess;
  /** The Kubernetes namespace its Services select it in (default "default"). */
  namespace?: string;
  /** `Deployment/<namespace>/<name>` for pods `lab apply` made; absent for pods made by hand. */
  owner?: string;
  /** Being deleted: a terminating endpoint until its grace period is over. */
  terminating?: boolean;
  /** In the node's namespace, with the node's address (netns is the node's). */
  hostNetwork?: boolean;
}

/** A node's bpfproxy agent, running detached inside the node's namespace. */
export interface AgentState {
  node: string;
  pid: number;
  /** /proc/<pid>/stat start time, so that a reused pid is never mistaken for the agent. */
  startTime: string;
  config: string;
  log: string;
  /** The node's pin directory on the lab's bpffs. */
  bpffsDir: string;
  /** host:port of /healthz inside the node's namespace. */
  healthz: string;
  /** The command line of another build than this checkout's (an older release), if it runs one. */
  cli?: string[];
}

/** Where the agents get Services and EndpointSlices from. */
export type ClusterApi = { api: 'file'; dir: string } | { api: 'kube'; kubeconfig: string };

export interface LabState {
  version: number;
  name: string;
  id: string;
  createdAt: string;
  stateFile: string;
  /** Logs of the lab's processes. */
  runDir: string;
  lbRoute: LbRoute;
  /** Absent in states written before overlays existed: routed. */
  podNetwork?: PodNetwork;
  addressPlan: {
    nodeNetwork: string;
    clusterCidr: string;
    serviceCidr: string;
    externalCidr: string;
    podGateway: string;
    secondNodeNetwork?: string;
  };
  fabric: FabricState;
  nodes: NodeState[];
  clients: ClientState[];
  pods: PodState[];
  /** The last pod host number handed out per node: allocation goes round, as host-local IPAM does. */
  ipam: Record<string, number>;
  /** The lab's own bpffs mount (a directory per node under it), once agents have been started. */
  bpffs?: string;
  agents?: AgentState[];
  cluster?: ClusterApi;
}

export function stateFile(name: string, stateDir = DEFAULT_STATE_DIR): string {
  return join(stateDir, `${name}.json`);
}

export function runDirOf(name: string, stateDir = DEFAULT_STATE_DIR): string {
  return join(stateDir, name);
}

export function readLabState(file: string): LabState | undefined {
  if (!existsSync(file)) return undefined;
  const state = JSON.parse(readFileSync(file, 'utf8')) as LabState;
  if (state.version !== LAB_STATE_VERSION) throw new Error(`${file}: lab state version ${state.version}, expected ${LAB_STATE_VERSION}`);
  return state;
}

const LOCK_WAIT_MS = 10_000;

/**
 * Runs `fn` holding an exclusive lock on the lab's state (a flock on `<state>.lock`; the state file
 * itself is replaced by rename on every write, so it cannot carry the lock). Waits for another
 * process's change to finish, for LOCK_WAIT_MS at most.
 */
export function withStateLock<T>(file: string, fn: () => T): T {
  const lockFile = `${file}.lock`;
  mkdirSync(join(file, '..'), { recursive: true });
  closeSync(openSync(lockFile, 'a'));
  const deadline = Date.now() + LOCK_WAIT_MS;
  let fd: number | undefined;
  while (fd === undefined) {
    try {
      fd = native.flockExclusive(lockFile);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if ((code !== 'EWOULDBLOCK' && code !== 'EAGAIN') || Date.now() > deadline) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
  try {
    return fn();
  } finally {
    native.flockRelease(fd);
  }
}

/** Written to a temporary file and renamed, so a reader never sees half a state. */
export function writeLabState(state: LabState): void {
  mkdirSync(join(state.stateFile, '..'), { recursive: true });
  const tmp = `${state.stateFile}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, state.stateFile);
}

export function removeLabState(state: LabState): void {
  rmSync(state.stateFile, { force: true });
  rmSync(`${state.stateFile}.lock`, { force: true });
  rmSync(state.runDir, { recursive: true, force: true });
}

export function listLabNames(stateDir = DEFAULT_STATE_DIR): string[] {
  if (!existsSync(stateDir)) return [];
  return readdirSync(stateDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}
