/**
 * One bpfproxy agent per lab node, as a DaemonSet would run kube-proxy: `bpfproxy agent --config`
 * started detached inside the node's network namespace (`ip netns exec`, so that interface names,
 * addresses and its /healthz are the node's), with
 *
 *   - its own config file and log: /run/bpfproxy/labs/<lab>/<node>/{config.yaml,agent.log};
 *   - its own pin directory on the lab's own bpffs: /run/bpfproxy/labs/<lab>/bpffs/<node>;
 *   - a pid (and start time) recorded in the lab state, so that `lab status` and `lab down` from any
 *     other process find it, and a reused pid is never taken for it.
 *
 * `lab down` stops the agents, then unpins everything (which detaches the programs), then deletes
 * the namespaces (teardown.ts). Stopping an agent leaves its programs attached and its maps pinned,
 * exactly as a kube-proxy restart would: that is what lets traffic flow while an agent is down.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parse, stringify } from 'yaml';

import { run } from '../util/exec.js';
import { CLUSTER_CIDR, SERVICE_CIDR } from './net/address-plan.js';
import { mountLabBpffs } from './net/lab-bpffs.js';
import { isServerAlive, isZombie, processStartTime, stopProcess } from './hostname-process.js';
import type { AgentState, ClusterApi, LabState, NodeState } from './lab-state.js';
import { SERVICE_DEVICE, VXLAN_DEVICE } from './net/node-network.js';
import type { Lab } from './topology.js';

/** Where the agents read Services and EndpointSlices: the lab's directory, or an API server. */
export type AgentSource = { kind: 'file'; dir: string } | { kind: 'kubernetes'; kubeconfig: string };

export const HEALTHZ_PORT = 10256;
export const METRICS_PORT = 10249;
/** Written by the agent (ts/agent/logger.ts) once its first sync is done. */
export const READY_LINE = 'agent ready';
const READY_TIMEOUT_MS = 60_000;
const KILL_TIMEOUT_MS = 5_000;

/**
 * Another build of bpfproxy to run as the agent (an older release, for upgrade tests): how to run
 * its CLI, and its config file made from ours (an older release knows fewer fields).
 */
export interface AgentRelease {
  /** A short name, for its config file's name (config.<name>.yaml). */
  name: string;
  /** The command line that runs its `bpfproxy` (node's arguments: a script and its options). */
  cli: string[];
  config(ours: Record<string, unknown>): Record<string, unknown>;
}

export interface NodeAgentsOptions {
  /** Extra config file fields (kube-proxy names), merged over the lab's. */
  config?: Record<string, unknown>;
  /** Run this build instead of this checkout's. */
  release?: AgentRelease;
  readyTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface AgentHealth {
  /** HTTP status of /healthz, or undefined when nothing answered. */
  status: number | undefined;
  body: unknown;
  error?: string;
}

/** How to run the `bpfproxy` command: from the sources through bin/ (tsx), or the compiled dist/. */
export function cliCommand(): string[] {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.ts')) return [fileURLToPath(new URL('../../bin/bpfproxy.js', import.meta.url))];
  return [fileURLToPath(new URL('../cli/main.js', import.meta.url))];
}

export function labBpffsDir(state: Pick<LabState, 'runDir'>): string {
  return join(state.runDir, 'bpffs');
}

export function agentDir(state: Pick<LabState, 'runDir'>, node: string): string {
  return join(state.runDir, node);
}

/** The agent's config file, kube-proxy's field names where they exist (ts/agent/config.ts). */
export function agentConfig(node: NodeState, source: AgentSource, pinDir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'bpfproxy.io/v1alpha1',
    kind: 'BpfProxyConfiguration',
    hostnameOverride: node.name,
    ...(source.kind === 'file' ? { sourceDir: source.dir } : { clientConnection: { kubeconfig: source.kubeconfig } }),
    bpffsDir: pinDir,
    uplinkInterfaces: [node.uplink, ...(node.secondUplink ? [node.secondUplink.interface] : [])],
    // The agent creates it and routes service addresses to it. A file-mode cluster has no
    // ServiceCIDR objects: the range is given (the override); kube mode's API server has them.
    serviceInterface: node.serviceDevice,
    ...(source.kind === 'file' ? { serviceCIDRs: [SERVICE_CIDR] } : {}),
    // Pods' host-side veths are named after the pods (docs/lab.md): everything but the uplinks
    // (eth0, eth1), loopback, the Service sink device and the VXLAN device.
    podInterfacePattern: `^(?!(eth\\d+|lo|${SERVICE_DEVICE}|${VXLAN_DEVICE})$)`,
    clusterCIDR: CLUSTER_CIDR,
    // Native XDP on a veth uplink breaks XDP_TX/REDIRECT unless the peer runs XDP too (docs/datapath.md).
    xdpMode: 'generic',
    healthzBindAddress: `0.0.0.0:${HEALTHZ_PORT}`,
    metricsBindAddress: `127.0.0.1:${METRICS_PORT}`,
    ...extra,
  };
}

export class NodeAgents {
  private constructor(private readonly lab: Lab) {}

  /** The agents of a lab that has them (started by this or another process). */
  static of(lab: Lab): NodeAgents {
    return new NodeAgents(lab);
  }

  /**
   * Starts an agent on every node and resolves once each has logged `agent ready` and answers
   * /healthz with 200. On failure the agents started are stopped (their pins stay for `lab down`).
   */
  static async start(lab: Lab, source: AgentSource, opts: NodeAgentsOptions = {}): Promise<NodeAgents> {
    const state = lab.status();
    if ((state.agents ?? []).some((a) => isServerAlive(a))) throw new Error(`lab ${lab.name} already runs agents`);
    const bpffs = labBpffsDir(state);
    const cluster: ClusterApi = source.kind === 'file' ? { api: 'file', dir: source.dir } : { api: 'kube', kubeconfig: source.kubeconfig };
    // Recorded before the mount, so that a crash from here on still leaves `lab down` a trace.
    lab.update((s) => {
      s.bpffs = bpffs;
      s.cluster = cluster;
      s.agents = [];
    });
    await mountLabBpffs(bpffs);
    const agents = new NodeAgents(lab);
    try {
      for (const node of state.nodes) {
        opts.signal?.throwIfAborted();
        const dir = agentDir(state, node.name);
        mkdirSync(dir, { recursive: true });
        const pinDir = join(bpffs, node.name);
        mkdirSync(pinDir, { recursive: true });
        const config = join(dir, 'config.yaml');
        writeFileSync(config, stringify(agentConfig(node, source, pinDir, opts.config)));
        const log = join(dir, 'agent.log');
        const agent = spawnAgent(node.netns, configFor(config, opts.release), log, node.name, pinDir, opts.release?.cli);
        lab.update((s) => s.agents!.push(agent));
      }
      await Promise.all(state.nodes.map((n) => agents.waitReady(n.name, 0, opts)));
      return agents;
    } catch (e) {
      await agents.stop().catch(() => {});
      throw e;
    }
  }

  get all(): readonly AgentState[] {
    return this.lab.status().agents ?? [];
  }

  agent(node: string): AgentState {
    const a = this.all.find((x) => x.node === node);
    if (!a) throw new Error(`lab ${this.lab.name} has no agent on '${node}'`);
    return a;
  }

  /** The node's pin directory (maps under it, links under links/). */
  pinDir(node: string): string {
    return this.agent(node).bpffsDir;
  }

  isRunning(node: string): boolean {
    const a = this.agent(node);
    return isServerAlive(a) && !isZombie(a.pid);
  }

  /** Sends `signal` (SIGKILL by default) and waits until the agent is gone. */
  async kill(node: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const a = this.agent(node);
    if (!this.isRunning(node)) return;
    process.kill(a.pid, signal);
    const deadline = Date.now() + KILL_TIMEOUT_MS;
    while (this.isRunning(node)) {
      if (Date.now() > deadline) throw new Error(`agent of ${node} (pid ${a.pid}) still running ${KILL_TIMEOUT_MS} ms after ${signal}`);
      await sleep(10);
    }
  }

  /** Starts the node's agent again with the same config (after kill), and waits until it is ready. */
  async restart(node: string, opts: Pick<NodeAgentsOptions, 'readyTimeoutMs' | 'signal'> = {}): Promise<AgentState> {
    const old = this.agent(node);
    if (this.isRunning(node)) throw new Error(`agent of ${node} is still running (pid ${old.pid}); kill it first`);
    const offset = existsSync(old.log) ? statSync(old.log).size : 0;
    const agent = spawnAgent(this.lab.node(node).netns, old.config, old.log, node, old.bpffsDir, old.cli);
    this.lab.update((s) => {
      s.agents = (s.agents ?? []).map((a) => (a.node === node ? agent : a));
    });
    await this.waitReady(node, offset, opts);
    return agent;
  }

  /**
   * Replaces the node's agent by another build (`release`; this checkout's when undefined), as a
   * DaemonSet rollout does: TERM, wait until it is gone, start the other on the same pins.
   */
  async replace(node: string, release: AgentRelease | undefined, opts: Pick<NodeAgentsOptions, 'readyTimeoutMs' | 'signal'> = {}): Promise<AgentState> {
    const old = this.agent(node);
    await this.kill(node, 'SIGTERM');
    const ours = join(agentDir(this.lab.status(), node), 'config.yaml');
    const offset = existsSync(old.log) ? statSync(old.log).size : 0;
    const agent = spawnAgent(this.lab.node(node).netns, configFor(ours, release), old.log, node, old.bpffsDir, release?.cli);
    this.lab.update((s) => {
      s.agents = (s.agents ?? []).map((a) => (a.node === node ? agent : a));
    });
    await this.waitReady(node, offset, opts);
    return agent;
  }

  /** GET /healthz inside the node's namespace, as a load balancer's health check would. */
  async health(node: string): Promise<AgentHealth> {
    return httpGet(this.lab.node(node).netns, '127.0.0.1', HEALTHZ_PORT, '/healthz');
  }

  /** Stops every agent (TERM, then KILL); pins and attached programs stay until `lab down`. */
  async stop(): Promise<void> {
    const errors: string[] = [];
    await Promise.all(
      this.all.map((a) =>
        stopProcess(a).catch((e: Error) => {
          errors.push(`agent of ${a.node}: ${e.message}`);
        }),
      ),
    );
    if (errors.length > 0) throw new Error(`stopping agents:\n  ${errors.join('\n  ')}`);
  }

  /** The last lines of a node's agent log (for error messages). */
  logTail(node: string, lines = 5): string {
    const { log } = this.agent(node);
    if (!existsSync(log)) return '(no log)';
    return readFileSync(log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  }

  private async waitReady(node: string, logOffset: number, opts: Pick<NodeAgentsOptions, 'readyTimeoutMs' | 'signal'>): Promise<void> {
    const a = this.agent(node);
    const timeout = opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
    const deadline = Date.now() + timeout;
    let lastHealth: AgentHealth | undefined;
    for (;;) {
      opts.signal?.throwIfAborted();
      if (!this.isRunning(node)) throw new Error(`the agent of ${node} exited before it was ready (log ${a.log}):\n${this.logTail(node, 8)}`);
      const logged = existsSync(a.log) && readFileSync(a.log).subarray(logOffset).toString('utf8').includes(READY_LINE);
      if (logged) {
        lastHealth = await this.health(node);
        if (lastHealth.status === 200) return;
      }
      if (Date.now() > deadline) {
        const why = logged ? `/healthz answered ${lastHealth?.status ?? lastHealth?.error}` : `no '${READY_LINE}' in its log`;
        throw new Error(`the agent of ${node} was not ready within ${timeout} ms (${why}; log ${a.log}):\n${this.logTail(node, 8)}`);
      }
      await sleep(100);
    }
  }
}

/** The config file for `release`: ours (at `ours`), or one made from it beside it. */
function configFor(ours: string, release: AgentRelease | undefined): string {
  if (!release) return ours;
  const path = join(dirname(ours), `config.${release.name}.yaml`);
  writeFileSync(path, stringify(release.config(parse(readFileSync(ours, 'utf8')) as Record<string, unknown>)));
  return path;
}

/** `ip netns exec` replaces itself with the agent, so the pid is the agent's own. */
function spawnAgent(netns: string, config: string, log: string, node: string, bpffsDir: string, cli?: string[]): AgentState {
  const logFd = openSync(log, 'a');
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, ...(cli ?? cliCommand()), 'agent', '--config', config], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  child.unref();
  const pid = child.pid;
  const startTime = pid === undefined ? undefined : processStartTime(pid);
  if (pid === undefined || startTime === undefined) throw new Error(`could not start the agent of ${node} (see ${log})`);
  return { node, pid, startTime, config, log, bpffsDir, healthz: `0.0.0.0:${HEALTHZ_PORT}`, ...(cli ? { cli } : {}) };
}

/** An HTTP GET from inside a namespace (a child process there: sockets belong to their namespace). */
export async function httpGet(netns: string, host: string, port: number, path: string, timeoutMs = 2000): Promise<AgentHealth> {
  const script = `
    const req = require('node:http').get({ host: ${JSON.stringify(host)}, port: ${port}, path: ${JSON.stringify(path)}, timeout: ${timeoutMs} }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body })));
    });
    req.on('timeout', () => req.destroy(new Error('timeout after ${timeoutMs} ms')));
    req.on('error', (e) => console.log(JSON.stringify({ error: e.message })));`;
  try {
    const out = JSON.parse(await run('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { timeoutMs: timeoutMs + 5000 })) as { status?: number; body?: string; error?: string };
    if (out.error !== undefined) return { status: undefined, body: undefined, error: out.error };
    let body: unknown = out.body;
    try {
      body = JSON.parse(out.body ?? '');
    } catch {
      // not JSON: keep the text
    }
    return { status: out.status, body };
  } catch (e) {
    return { status: undefined, body: undefined, error: (e as Error).message };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
