/**
 * `--api kube`: a lab whose source of truth is a real Kubernetes control plane. KubeLab.start(lab)
 * adds to a lab that is up:
 *   - etcd, kube-apiserver (RBAC on, Service range 198.19.0.0/17) and kube-controller-manager
 *     (Deployments, ReplicaSets, EndpointSlices, ServiceAccounts and their tokens, node lifecycle…)
 *     as processes, their data and logs in <run dir>/kube/;
 *   - the lab's nodes as Node objects with heartbeats (kube-nodes.ts), the lab kubelet that binds
 *     and runs pods (kubelet.ts), the lab cloud controller that gives LoadBalancers IPs (lab-cloud.ts);
 *   - the agent RBAC from deploy/, a ServiceAccount token for it, a kubeconfig for agents at
 *     https://127.0.0.1:6443 inside each node namespace (api-relay.ts), and one agent per node.
 * The process that calls start() owns all of it (the `lab up --api kube` supervisor, or a test);
 * stop() stops it, and stopKubeLab() cleans up after an owner that died, from the state file.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { stringify } from 'yaml';

import { ControlPlane } from '../../kube/control-plane.js';
import { agentRbac } from '../../kube/deploy-rbac.js';
import { KubeRest } from '../../kube/rest.js';
import { NodeAgents, type NodeAgentsOptions } from '../agents.js';
import { NODE_API_ADDRESS, NODE_API_PORT, UnixToTcpRelay, startNodeRelay } from './api-relay.js';
import { isServerAlive, processStartTime, stopProcess } from '../hostname-process.js';
import { LabNodeHeartbeat } from './kube-nodes.js';
import { LabKubelet, labPodName } from './kubelet.js';
import { LabCloud } from './lab-cloud.js';
import type { LabState, ServerProcess } from '../lab-state.js';
import type { Lab } from '../topology.js';

/** The node lifecycle controller must not take nodes for dead during a one-minute API outage test. */
export const NODE_MONITOR_GRACE = '120s';
/** Agent tokens are bound to the lab's lifetime in practice; a month is beyond any lab. */
const AGENT_TOKEN_SECONDS = 30 * 24 * 3600;

export interface KubeLabState {
  /** https://127.0.0.1:PORT, in the root namespace. */
  apiServer: string;
  /** The admin kubeconfig (system:masters), for `lab kubectl` and tests. */
  kubeconfig: string;
  /** The agents' kubeconfig: the ServiceAccount token, server https://127.0.0.1:6443 inside node namespaces. */
  agentKubeconfig: string;
  kubectl: string;
  /** The process that owns the control plane, kubelet and relays (a supervisor, or a test). */
  owner: { pid: number; startTime: string };
  /** etcd, apiserver, controller manager and the node relays: stopped by pid if the owner died. */
  processes: Array<{ name: string; pid: number; startTime: string }>;
}

export function kubeDir(lab: Pick<LabState, 'runDir'>): string {
  return join(lab.runDir, 'kube');
}

export function kubeStateFile(lab: Pick<LabState, 'runDir'>): string {
  return join(kubeDir(lab), 'kube-lab.json');
}

export function readKubeLabState(lab: Pick<LabState, 'runDir'>): KubeLabState | undefined {
  const file = kubeStateFile(lab);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as KubeLabState) : undefined;
}

export interface KubeLabOptions {
  /** Kubernetes binaries (default: resolveAssets(), which builds them when missing). */
  assetsDir?: string;
  /** Options of the node agents (ts/lab/agents.ts), or `false` for none (tests of the kubelet alone). */
  agents?: NodeAgentsOptions | false;
  log?: (message: string) => void;
}

export class KubeLab {
  private stopped = false;
  private constructor(
    readonly lab: Lab,
    readonly controlPlane: ControlPlane,
    readonly rest: KubeRest,
    readonly state: KubeLabState,
    private readonly parts: {
      relay?: UnixToTcpRelay;
      nodeRelays: ServerProcess[];
      heartbeat?: LabNodeHeartbeat;
      cloud?: LabCloud;
      kubelet?: LabKubelet;
      agents?: NodeAgents;
    },
  ) {}

  static async start(lab: Lab, opts: KubeLabOptions = {}): Promise<KubeLab> {
    const dir = kubeDir(lab.status());
    const logFile = join(dir, 'lab-kube.log');
    const log = (m: string) => {
      try {
        appendFileSync(logFile, `${new Date().toISOString()} ${m}\n`);
      } catch {
        // the dir is gone: we are being torn down
      }
      opts.log?.(m);
    };
    const cp = await ControlPlane.start({
      controllerManager: true,
      dir,
      ...(opts.assetsDir ? { assetsDir: opts.assetsDir } : {}),
      controllerManagerArgs: [`--node-monitor-grace-period=${NODE_MONITOR_GRACE}`],
    });
    const rest = new KubeRest(cp.kubeConfig());
    const parts: KubeLab['parts'] = { nodeRelays: [] };
    const state: KubeLabState = {
      apiServer: cp.server,
      kubeconfig: cp.kubeconfigPath,
      agentKubeconfig: join(dir, 'agent.kubeconfig'),
      kubectl: join(cp.assetsDir, 'kubectl'),
      owner: { pid: process.pid, startTime: processStartTime(process.pid) ?? '' },
      processes: [],
    };
    const kube = new KubeLab(lab, cp, rest, state, parts);
    try {
      // The agents' identity: exactly the RBAC deploy/ ships.
      const rbac = agentRbac();
      await cp.kubectl(['apply', '-f', '-'], { input: rbac.objects.map((o) => stringify(o)).join('---\n') });
      const { namespace, name } = rbac.serviceAccount;
      const tr = await rest.post<{ status: { token: string } }>(`/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: AGENT_TOKEN_SECONDS },
      });
      cp.writeKubeconfig(state.agentKubeconfig, `${namespace}:${name}`, tr.status.token, `https://${NODE_API_ADDRESS}:${NODE_API_PORT}`);

      parts.relay = await UnixToTcpRelay.start(join(dir, 'apiserver.sock'), cp.apiPort);
      for (const node of lab.nodes) {
        parts.nodeRelays.push(await startNodeRelay(node.netns, parts.relay.path, join(dir, `api-relay-${node.name}.log`)));
      }
      kube.saveState();

      parts.heartbeat = await LabNodeHeartbeat.start(rest, lab.nodes, log);
      parts.cloud = new LabCloud(rest, log);
      await parts.cloud.start();
      parts.kubelet = new LabKubelet({ rest, lab, log });
      await parts.kubelet.start();
      if (opts.agents !== false) {
        parts.agents = await NodeAgents.start(lab, { kind: 'kubernetes', kubeconfig: state.agentKubeconfig }, opts.agents ?? {});
      }
      kube.saveState();
      log(`up: API server ${cp.server}, ${lab.nodes.length} nodes, ${parts.agents ? 'agents ready' : 'no agents'}`);
      return kube;
    } catch (e) {
      await kube.stop().catch(() => {});
      throw e;
    }
  }

  get kubeconfigPath(): string {
    return this.state.kubeconfig;
  }

  /** The node agents, unless started without. */
  get agents(): NodeAgents | undefined {
    return this.parts.agents;
  }

  /** kubectl as the admin; resolves with stdout. */
  kubectl(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    return this.controlPlane.kubectl(args, opts);
  }

  /** The lab namespace's short name for a Kubernetes pod (for Lab.request/exec). */
  labPodName(namespace: string, name: string): string {
    return labPodName(namespace, name);
  }

  private saveState(): void {
    const nodeRelays = this.parts.nodeRelays.map((r, i) => ({ name: `api-relay-${this.lab.nodes[i]?.name}`, pid: r.pid, startTime: r.startTime }));
    const cpProcs = this.controlPlane.processes().map((p) => ({ ...p, startTime: processStartTime(p.pid) ?? '' }));
    this.state.processes = [...cpProcs, ...nodeRelays];
    writeFileSync(kubeStateFile(this.lab.status()), JSON.stringify(this.state, null, 2) + '\n');
  }

  /** Stops agents, controllers, relays and the control plane; pods stay until the lab goes down. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const p = this.parts;
    const step = async (fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch {
        // each step runs regardless
      }
    };
    await step(() => p.agents?.stop());
    await step(() => p.kubelet?.stop());
    await step(() => p.cloud?.stop());
    await step(() => p.heartbeat?.stop());
    for (const r of p.nodeRelays) await step(() => stopProcess(r));
    await step(() => p.relay?.close());
    await step(() => this.controlPlane.stop());
  }
}

/**
 * Cleans up after a KubeLab whose owner is gone or going (`lab down`): asks the owner to stop
 * (SIGTERM, bounded), then stops by pid whatever it left behind.
 */
export async function stopKubeLab(lab: Pick<LabState, 'runDir'>): Promise<void> {
  const state = readKubeLabState(lab);
  if (!state) return;
  const owner = { ...state.owner, log: '' };
  if (owner.pid !== process.pid && isServerAlive(owner)) {
    try {
      process.kill(owner.pid, 'SIGTERM');
    } catch {
      // gone meanwhile
    }
    const deadline = Date.now() + 30_000;
    while (isServerAlive(owner) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (isServerAlive(owner)) await stopProcess(owner);
  }
  for (const p of state.processes) {
    if (p.startTime && isServerAlive({ ...p, log: '' })) await stopProcess(p).catch(() => {});
  }
}
