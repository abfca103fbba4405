/**
 * A real Kubernetes control plane for tests and the lab: etcd + kube-apiserver (+ optionally
 * kube-controller-manager) as processes on 127.0.0.1 with random free ports, in a temp dir.
 *
 * Authentication: a static token file (an admin in system:masters, and one for the controller
 * manager); the apiserver generates its own self-signed serving certificate; an ECDSA key pair signs
 * ServiceAccount tokens so that `kubectl create token` and SA-based clients work. Authorization is
 * RBAC only, so RBAC tests mean something.
 *
 * Everything started is stopped on stop(), on a failed start and when the process exits; the
 * apiserver alone can be stopped and restarted (etcd keeps the data) to test outages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { KubeConfig } from '@kubernetes/client-node';

import { run } from '../util/exec.js';
import { resolveAssets } from './binaries.js';

export const SERVICE_CLUSTER_IP_RANGE = '198.19.0.0/17';

export interface ControlPlaneOptions {
  /** Directory holding the binaries; default: resolveAssets() (builds them when missing). */
  assetsDir?: string;
  /** Also run kube-controller-manager (Deployments, ReplicaSets, EndpointSlices, SA tokens…). */
  controllerManager?: boolean;
  serviceClusterIPRange?: string;
  /** Bound on each component's start (default 90 s: a loaded 2-core machine is slow). */
  startTimeoutMs?: number;
  /** Keep the temp dir after stop (for debugging; logs are in it). */
  keepDir?: boolean;
  /** Use this directory (created if missing) instead of a fresh temp dir, e.g. the lab's run dir. */
  dir?: string;
  /** Extra kube-controller-manager flags (they override the defaults of the same name). */
  controllerManagerArgs?: string[];
}

interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

/** Every running plane, so an exiting test process never leaves etcd or an apiserver behind. */
const live = new Set<ControlPlane>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const cp of live) cp.killSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      // The application handles this signal itself (say, a graceful stop that calls stop()): leave
      // it to it; the exit hook still kills whatever is left when the process ends.
      if (process.listenerCount(sig) > 1) return;
      process.off(sig, onSignal);
      for (const cp of live) cp.killSync();
      // Re-raise so the process still dies of the signal, as it would have without us.
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** One HTTP(S) GET with a hard bound; resolves with status and body, rejects on network errors. */
function get(url: string, opts: { token?: string; ca?: Buffer; timeoutMs?: number } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const fn = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = fn(
      u,
      {
        method: 'GET',
        headers: opts.token ? { Authorization: `Bearer ${opts.token}` } : {},
        ...(opts.ca ? { ca: opts.ca } : {}),
        timeout: opts.timeoutMs ?? 5000,
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function post(url: string, body: unknown, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = httpRequest(
      new URL(url),
      { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) }, timeout: timeoutMs },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`POST ${url}: timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

function tailOf(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export class ControlPlane {
  private procs = new Map<string, Proc>();
  private stopped = false;
  private constructor(
    readonly dir: string,
    readonly assetsDir: string,
    readonly etcdPort: number,
    readonly etcdPeerPort: number,
    readonly apiPort: number,
    readonly adminToken: string,
    private readonly opts: ControlPlaneOptions,
  ) {}

  /** https://127.0.0.1:PORT */
  get server(): string {
    return `https://127.0.0.1:${this.apiPort}`;
  }
  get etcdEndpoint(): string {
    return `http://127.0.0.1:${this.etcdPort}`;
  }
  /** Admin kubeconfig (system:masters) written in the plane's dir. */
  get kubeconfigPath(): string {
    return join(this.dir, 'admin.kubeconfig');
  }
  /** The apiserver's self-signed serving certificate (with its CA), to verify TLS against. */
  get caPath(): string {
    return join(this.dir, 'apiserver-certs', 'apiserver.crt');
  }

  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const assetsDir = opts.assetsDir ?? (await resolveAssets());
    let dir: string;
    if (opts.dir) {
      mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
      dir = opts.dir;
    } else dir = mkdtempSync(join(tmpdir(), 'bpfproxy-k8s-'));
    const cp = new ControlPlane(
      dir,
      assetsDir,
      await freePort(),
      await freePort(),
      await freePort(),
      randomBytes(24).toString('hex'),
      opts,
    );
    installExitHook();
    live.add(cp);
    try {
      cp.writeCredentials();
      await cp.startEtcd();
      await cp.startApiServer();
      cp.writeKubeconfig(cp.kubeconfigPath, 'admin', cp.adminToken);
      if (opts.controllerManager) await cp.startControllerManager();
    } catch (e) {
      await cp.stop();
      throw e;
    }
    return cp;
  }

  private path(...p: string[]): string {
    return join(this.dir, ...p);
  }

  private controllerManagerToken = randomBytes(24).toString('hex');

  private writeCredentials(): void {
    // The controller manager runs in system:masters: simplest for a test plane, and its own
    // bootstrap role would need --use-service-account-credentials plumbing.
    writeFileSync(
      this.path('tokens.csv'),
      `${this.adminToken},admin,admin,"system:masters"\n` +
        `${this.controllerManagerToken},system:kube-controller-manager,kcm,"system:masters"\n`,
      { mode: 0o600 },
    );
    const { privateKey, publicKey } = generateKeyPairSync('ec', {
      namedCurve: 'prime256v1',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    writeFileSync(this.path('sa.key'), privateKey, { mode: 0o600 });
    writeFileSync(this.path('sa.pub'), publicKey);
    mkdirSync(this.path('apiserver-certs'));
  }

  /**
   * A kubeconfig for a bearer token (the admin's, or a ServiceAccount's); `server` for clients that
   * reach the apiserver through a relay (the certificate is for 127.0.0.1, so keep that host).
   */
  writeKubeconfig(file: string, user: string, token: string, server = this.server): string {
    const kc = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'bpfproxy-test', cluster: { server, 'certificate-authority': this.caPath } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: user, context: { cluster: 'bpfproxy-test', user } }],
      'current-context': user,
    };
    writeFileSync(file, JSON.stringify(kc, null, 2), { mode: 0o600 });
    return file;
  }

  /** A client-node KubeConfig for the admin, or for any bearer token. */
  kubeConfig(token = this.adminToken, user = 'admin'): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'bpfproxy-test', server: this.server, caFile: this.caPath, skipTLSVerify: false }],
      users: [{ name: user, token }],
      contexts: [{ name: user, cluster: 'bpfproxy-test', user }],
      currentContext: user,
    });
    return kc;
  }

  /** Runs kubectl as the admin (or with extra args such as --token) and returns its stdout. */
  kubectl(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    return run(join(this.assetsDir, 'kubectl'), ['--kubeconfig', this.kubeconfigPath, ...args], {
      timeoutMs: opts.timeoutMs ?? 30_000,
      ...(opts.input !== undefined ? { input: opts.input } : {}),
    });
  }

  private spawnLogged(name: string, args: string[]): Proc {
    const logFd = openSync(this.path(`${name}.log`), 'a');
    const child = spawn(join(this.assetsDir, name), args, { stdio: ['ignore', logFd, logFd], cwd: this.dir });
    closeSync(logFd);
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null)));
      child.once('error', () => resolve(-1));
    });
    const proc = { name, child, exited };
    this.procs.set(name, proc);
    return proc;
  }

  /** Polls until `ready` says yes, failing early (with the log's tail) when the process dies. */
  private async waitReady(proc: Proc, what: string, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 90_000);
    let dead = false;
    void proc.exited.then(() => (dead = true));
    for (;;) {
      if (dead) throw new Error(`${proc.name} exited before ${what}:\n${tailOf(this.path(`${proc.name}.log`))}`);
      try {
        if (await ready()) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${proc.name}: no ${what} within ${this.opts.startTimeoutMs ?? 90_000} ms:\n${tailOf(this.path(`${proc.name}.log`))}`);
      await sleep(250);
    }
  }

  private async startEtcd(): Promise<void> {
    const client = this.etcdEndpoint;
    const peer = `http://127.0.0.1:${this.etcdPeerPort}`;
    const proc = this.spawnLogged('etcd', [
      '--name=default',
      `--data-dir=${this.path('etcd-data')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=default=${peer}`,
      // Test data: durability is worthless here and fsync is slow on VM disks.
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ]);
    await this.waitReady(proc, 'health', async () => {
      const r = await get(`${client}/health`, { timeoutMs: 2000 });
      return r.status === 200 && /"health":\s*"true"/.test(r.body);
    });
  }

  private apiServerArgs(): string[] {
    return [
      `--etcd-servers=${this.etcdEndpoint}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${this.apiPort}`,
      // No --tls-cert-file: the apiserver generates a self-signed cert for 127.0.0.1 here.
      `--cert-dir=${this.path('apiserver-certs')}`,
      `--token-auth-file=${this.path('tokens.csv')}`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
      `--service-account-key-file=${this.path('sa.pub')}`,
      `--service-account-signing-key-file=${this.path('sa.key')}`,
      `--service-cluster-ip-range=${this.opts.serviceClusterIPRange ?? SERVICE_CLUSTER_IP_RANGE}`,
      // A single apiserver: the lease reconciler would only add churn.
      '--endpoint-reconciler-type=none',
      '--allow-privileged=true',
      '--v=1',
    ];
  }

  /** Starts (or restarts) kube-apiserver on its port, against the running etcd; waits for /readyz. */
  async startApiServer(): Promise<void> {
    if (this.procs.has('kube-apiserver')) throw new Error('kube-apiserver is already running');
    const proc = this.spawnLogged('kube-apiserver', this.apiServerArgs());
    await this.waitReady(proc, '/readyz', async () => {
      if (!existsSync(this.caPath)) return false;
      const r = await get(`${this.server}/readyz`, { token: this.adminToken, ca: readFileSync(this.caPath), timeoutMs: 3000 });
      return r.status === 200;
    });
  }

  /**
   * Stops kube-apiserver only; etcd and its data stay (clients see the API server down). A graceful
   * stop drains for up to 15 s while still answering; `{ kill: true }` is a crash: gone at once.
   */
  async stopApiServer(opts: { kill?: boolean } = {}): Promise<void> {
    await this.stopProc('kube-apiserver', opts.kill ? 0 : 15_000);
  }

  /** SIGSTOP/SIGCONT the apiserver: connections stay open but nothing answers (a silent stall). */
  pauseApiServer(paused: boolean): void {
    const p = this.procs.get('kube-apiserver');
    if (!p) throw new Error('kube-apiserver is not running');
    p.child.kill(paused ? 'SIGSTOP' : 'SIGCONT');
  }

  async startControllerManager(): Promise<void> {
    const kubeconfig = this.writeKubeconfig(this.path('kcm.kubeconfig'), 'system:kube-controller-manager', this.controllerManagerToken);
    const defaults = [
      `--kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${await freePort()}`,
      '--leader-elect=false',
      '--controllers=*',
      `--service-account-private-key-file=${this.path('sa.key')}`,
      `--root-ca-file=${this.caPath}`,
      `--service-cluster-ip-range=${this.opts.serviceClusterIPRange ?? SERVICE_CLUSTER_IP_RANGE}`,
      '--v=1',
    ];
    const extra = this.opts.controllerManagerArgs ?? [];
    const flagName = (a: string) => a.split('=')[0];
    const overridden = new Set(extra.map(flagName));
    const proc = this.spawnLogged('kube-controller-manager', [...defaults.filter((a) => !overridden.has(flagName(a))), ...extra]);
    // Ready when it has created the default ServiceAccount (its controllers are running).
    await this.waitReady(proc, 'the default ServiceAccount', async () => {
      const r = await get(`${this.server}/api/v1/namespaces/default/serviceaccounts/default`, {
        token: this.adminToken,
        ca: readFileSync(this.caPath),
        timeoutMs: 3000,
      });
      return r.status === 200;
    });
  }

  /** Pids of the running components, so that a supervisor killed hard can still be cleaned up after. */
  processes(): Array<{ name: string; pid: number }> {
    return [...this.procs.values()].flatMap((p) => (p.child.pid === undefined ? [] : [{ name: p.name, pid: p.child.pid }]));
  }

  /** etcd's current revision (via its JSON gateway, so no etcdctl is needed). */
  async etcdRevision(): Promise<number> {
    const r = await post(`${this.etcdEndpoint}/v3/kv/range`, { key: Buffer.from('/').toString('base64'), limit: 1 });
    if (r.status !== 200) throw new Error(`etcd range: ${r.status} ${r.body}`);
    return Number((JSON.parse(r.body) as { header: { revision: string } }).header.revision);
  }

  /** Compacts etcd's history up to now: watches from older resource versions get 410 Gone. */
  async compactEtcd(): Promise<number> {
    const revision = await this.etcdRevision();
    const r = await post(`${this.etcdEndpoint}/v3/kv/compaction`, { revision: String(revision), physical: true });
    if (r.status !== 200) throw new Error(`etcd compaction: ${r.status} ${r.body}`);
    return revision;
  }

  private async stopProc(name: string, graceMs = 15_000): Promise<void> {
    const p = this.procs.get(name);
    if (!p) return;
    this.procs.delete(name);
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGCONT'); // a paused process cannot handle SIGTERM
      p.child.kill(graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
      const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
      await p.exited;
      clearTimeout(timer);
    }
  }

  /** Stops everything (controller manager, apiserver, etcd) and removes the temp dir. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const name of ['kube-controller-manager', 'kube-apiserver', 'etcd']) await this.stopProc(name);
    live.delete(this);
    if (!this.opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** For the exit hook: no awaiting possible, so kill hard and remove the dir. */
  killSync(): void {
    for (const p of this.procs.values()) {
      try {
        p.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    this.procs.clear();
    if (!this.opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
