/**
 * A node for agent tests: a network namespace with an uplink veth (198.18.0.11/24) and pod veths,
 * a private bpffs, a YAML source directory and a config file; the agent runs as the real command,
 * `node bin/bpfproxy.js agent --config FILE`, inside the namespace (as the lab runs it). Its JSON
 * log lines are collected; HTTP is asked with curl inside the namespace; maps are read from the
 * pins. Everything is removed after the test, pass or fail.
 */
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

import { stringify } from 'yaml';

import { scope, type Scope } from '../helpers/scope.js';

import { canonicalServiceDump, dumpServiceMaps } from '../../ts/dataplane/dump.js';
import { openPinnedMaps, type PinnedMaps } from '../../ts/dataplane/pinned-maps.js';
import type { Netns } from '../../ts/lab/net/netns.js';
import { run } from '../../ts/util/exec.js';

export const NODE_IP = '198.18.0.11';
export const HEALTHZ_PORT = 10256;
export const METRICS_PORT = 10249;
const BIN = resolve('bin/bpfproxy.js');

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface HttpAnswer {
  code: number;
  body: string;
}

export class AgentNode {
  readonly logs: LogLine[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  private agentRuns = 0;

  private constructor(
    readonly t: ExecutionContext,
    readonly s: Scope,
    readonly ns: Netns,
    readonly dir: string,
    readonly sourceDir: string,
    readonly bpffsDir: string,
    readonly configPath: string,
  ) {}

  static async create(t: ExecutionContext, opts: { pods?: string[]; config?: Record<string, unknown> } = {}): Promise<AgentNode> {
    // Each start is a whole `node` process (seconds on a busy 2-core machine): allow for a few.
    t.timeout(6 * 60_000);
    const s = scope(t);
    const ns = await s.netns('node');
    const peer = await s.netns('peer');
    await run('ip', ['link', 'add', 'eth0', 'netns', ns.name, 'type', 'veth', 'peer', 'name', 'up0', 'netns', peer.name]);
    await ns.ipBatch([`addr add ${NODE_IP}/24 dev eth0`, 'link set eth0 up']);
    await peer.ip('link', 'set', 'up0', 'up');
    for (const [i, pod] of (opts.pods ?? []).entries()) await addPodVeth(ns, peer, pod, i);
    const bpffs = await s.bpffs();
    const dir = join(tmpdir(), `bpfproxy-agent-test-${s.id}`);
    const sourceDir = join(dir, 'cluster');
    mkdirSync(sourceDir, { recursive: true });
    s.cleanup.add('test directory', () => rmSync(dir, { recursive: true, force: true }));
    const node = new AgentNode(t, s, ns, dir, sourceDir, join(bpffs, 'node-1'), join(dir, 'config.yaml'));
    node.writeConfig(opts.config ?? {});
    s.cleanup.add('agent', () => node.kill());
    return node;
  }

  /** The config file H3's lab writes, plus overrides. */
  writeConfig(overrides: Record<string, unknown>): void {
    const config = {
      apiVersion: 'bpfproxy.io/v1alpha1',
      kind: 'BpfProxyConfiguration',
      hostnameOverride: 'node-1',
      sourceDir: this.sourceDir,
      bpffsDir: this.bpffsDir,
      uplinkInterface: 'eth0',
      podInterfacePattern: '^pod-',
      clusterCIDR: '198.18.128.0/17',
      xdpMode: 'generic',
      healthzBindAddress: `127.0.0.1:${HEALTHZ_PORT}`,
      metricsBindAddress: `127.0.0.1:${METRICS_PORT}`,
      minSyncPeriod: '100ms',
      maglevTableSize: 251,
      mapSizes: { services: 1024, backends: 1024, conntrack: 4096, affinity: 1024 },
      ...overrides,
    };
    writeFileSync(this.configPath, stringify(config));
  }

  /** Writes a source file the way writers must: a hidden temporary file, renamed into place. */
  writeSource(name: string, yaml: string): void {
    const tmp = join(this.sourceDir, `.${name}.tmp`);
    writeFileSync(tmp, yaml);
    renameSync(tmp, join(this.sourceDir, name));
  }

  removeSource(name: string): void {
    rmSync(join(this.sourceDir, name), { force: true });
  }

  /** Starts the agent and waits for its `agent ready` line. */
  async start(timeoutMs = 120_000): Promise<LogLine> {
    if (this.child) throw new Error('agent already running');
    const from = this.logs.length;
    const run = ++this.agentRuns;
    const child = spawn('ip', ['netns', 'exec', this.ns.name, process.execPath, BIN, 'agent', '--config', this.configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
    const collect = (stream: NodeJS.ReadableStream) =>
      createInterface({ input: stream }).on('line', (line) => {
        try {
          this.logs.push({ ...(JSON.parse(line) as LogLine), run });
        } catch {
          this.logs.push({ level: 'raw', msg: line, run });
        }
      });
    collect(child.stdout!);
    collect(child.stderr!);
    return this.waitForLog((l) => l.msg === 'agent ready', timeoutMs, from);
  }

  /** Sends the running agent a signal without waiting (SIGSTOP: it holds its handles but runs nothing). */
  signal(signal: NodeJS.Signals): void {
    if (!this.child) throw new Error('agent not running');
    this.child.kill(signal);
  }

  /** Stops the agent with a signal and waits for it to exit; resolves with the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.child;
    if (!child) return null;
    child.kill(signal);
    const code = await Promise.race([this.exited!, sleep(15_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      child.kill('SIGKILL');
      throw new Error('the agent did not stop within 15 s');
    }
    this.child = undefined;
    return code;
  }

  kill(): void {
    this.child?.kill('SIGKILL');
    this.child = undefined;
  }

  async waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 30_000, from = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs.slice(from).find(pred);
      if (found) return found;
      const fatal = this.logs.slice(from).find((l) => l.level === 'fatal' || l.msg === 'agent failed to start');
      if (fatal) throw new Error(`agent failed: ${JSON.stringify(fatal)}\n${this.logText()}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for a log line\n${this.logText()}`);
      await sleep(50);
    }
  }

  logText(): string {
    return this.logs.map((l) => JSON.stringify(l)).join('\n');
  }

  /** An HTTP GET inside the node's namespace. */
  async http(port: number, path: string): Promise<HttpAnswer> {
    let out: string;
    try {
      out = await this.ns.exec('curl', ['-s', '-m', '5', '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:${port}${path}`]);
    } catch (e) {
      return { code: 0, body: (e as Error).message }; // nothing listens (curl exits 7), or a timeout
    }
    const nl = out.lastIndexOf('\n');
    return { body: out.slice(0, nl), code: Number(out.slice(nl + 1, nl + 4)) };
  }

  /** One metric's value, labels given as `name{a="b"}` text (undefined when absent). */
  async metric(series: string): Promise<number | undefined> {
    const { body } = await this.http(METRICS_PORT, '/metrics');
    const line = body.split('\n').find((l) => l.startsWith(series + ' '));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  }

  withMaps<T>(fn: (m: PinnedMaps) => T): T {
    const maps = openPinnedMaps(this.bpffsDir);
    try {
      return fn(maps);
    } finally {
      maps.close();
    }
  }

  dump(): string[] {
    return this.withMaps((m) => dumpServiceMaps(m));
  }

  canonicalDump(): string[] {
    return this.withMaps((m) => canonicalServiceDump(m));
  }

  /** Waits until the maps' dump satisfies `pred` (syncs are asynchronous); returns it. */
  async waitForDump(pred: (dump: string[]) => boolean, what: string, timeoutMs = 30_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const dump = this.dump();
      if (pred(dump)) return dump;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; maps hold:\n  ${dump.join('\n  ')}\n${this.logText()}`);
      await sleep(50);
    }
  }
}

async function addPodVeth(ns: Netns, peer: Netns, name: string, i: number): Promise<void> {
  await run('ip', ['link', 'add', name, 'netns', ns.name, 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', peer.name]);
  await ns.ip('link', 'set', name, 'up');
}

export { addPodVeth };

/** Services and slices as YAML. */
export function serviceYaml(name: string, spec: string, status = ''): string {
  return `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: default }
spec:
${spec
  .trim()
  .split('\n')
  .map((l) => '  ' + l)
  .join('\n')}
${status}`;
}

export interface EndpointYaml {
  ip: string;
  node: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export function sliceYaml(service: string, port: { name: string; port: number; protocol?: string }, endpoints: EndpointYaml[], sliceName = `${service}-abc`): string {
  return `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${sliceName}, namespace: default, labels: { kubernetes.io/service-name: ${service} } }
addressType: IPv4
ports: [{ name: ${port.name}, port: ${port.port}, protocol: ${port.protocol ?? 'TCP'} }]
endpoints:
${endpoints
  .map(
    (e) =>
      `  - { addresses: [${e.ip}], nodeName: ${e.node}, conditions: { ready: ${e.ready ?? true}, serving: ${e.serving ?? true}, terminating: ${e.terminating ?? false} } }`,
  )
  .join('\n')}
`;
}
