/**
 * The lab kubelet: just enough of a kubelet (and of a scheduler) that the real Deployment,
 * ReplicaSet and EndpointSlice controllers can run the lab's pods.
 *
 * - Scheduling: a pod without spec.nodeName is bound (the `binding` subresource) to the least loaded
 *   lab node that matches its nodeSelector (pod-placement.ts). A pod with spec.nodeName is respected.
 * - Running: a pod bound to a lab node gets a namespace with the hostname server (Lab.addPod), on
 *   every port its containers declare (9376, serve_hostname's port, when none is declared). The lab
 *   has one "image": whatever a container names, it runs the hostname server, which answers like
 *   agnhost's serve-hostname and netexec (/hostname, /clientip, UDP "hostname").
 * - Status: Running with podIP/hostIP, the usual conditions and container statuses; Ready as long as
 *   the server is alive. It is re-asserted whenever the API holds something else (level-triggered:
 *   a missed event, a relist or the node controller marking pods not ready all heal).
 * - Deletion: a pod being deleted stays terminating — so EndpointSlices show it terminating (and
 *   still serving during a preStop hook) — while its preStop sleep runs (`lifecycle.preStop.sleep`
 *   or an exec of `sleep N`), then its server gets SIGTERM and the grace period to exit; then its
 *   namespace is removed and the pod object deleted for good (grace 0, uid precondition).
 *
 * Everything is driven by one level-triggered reconcile over a list-watch of all pods, re-run every
 * second; one task per pod at a time; Lab mutations (which allocate addresses) one at a time.
 */
import { readFileSync } from 'node:fs';

import { ListWatch } from '../../kube/list-watch.js';
import { KubeApiError, kubeTime, type KubeRest } from '../../kube/rest.js';
import { isServerAlive } from '../hostname-process.js';
import { nodeObject } from './kube-nodes.js';
import type { PodPort, PodState, Protocol } from '../lab-state.js';
import { pickNode } from './pod-placement.js';
import type { Lab } from '../topology.js';

/** serve_hostname's port: what a pod that declares no port listens on. */
export const DEFAULT_POD_PORT = 9376;
const DEFAULT_GRACE_S = 30;
const TICK_MS = 1000;
const START_RETRY_MS = 5000;

interface ContainerPort {
  containerPort: number;
  protocol?: string;
  name?: string;
}
interface Container {
  name: string;
  image?: string;
  ports?: ContainerPort[];
  lifecycle?: { preStop?: { sleep?: { seconds?: number }; exec?: { command?: string[] } } };
}
interface Condition {
  type: string;
  status: string;
  lastTransitionTime?: string;
}
export interface PodObject {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
    deletionGracePeriodSeconds?: number;
  };
  spec: {
    nodeName?: string;
    nodeSelector?: Record<string, string>;
    containers: Container[];
    terminationGracePeriodSeconds?: number;
    /** The pod runs in its node's namespace, with the node's address as podIP. */
    hostNetwork?: boolean;
  };
  status?: {
    phase?: string;
    podIP?: string;
    hostIP?: string;
    conditions?: Condition[];
    containerStatuses?: Array<{ name: string; ready?: boolean }>;
  };
}

/** The lab namespace's short name for a pod: its name in `default`, `NAMESPACE-NAME` elsewhere. */
export function labPodName(namespace: string, name: string): string {
  return namespace === 'default' ? name : `${namespace}-${name}`;
}

interface LocalPod {
  uid: string;
  labName: string;
  node: string;
  startedAt: string;
  pod: PodState;
  /** The server exited without being asked to. */
  diedAt?: string;
}

/** Ports a pod's containers declare, TCP/UDP only (the hostname server answers both anyway). */
export function podPorts(pod: PodObject): PodPort[] {
  const seen = new Set<string>();
  const ports: PodPort[] = [];
  for (const c of pod.spec.containers ?? []) {
    for (const p of c.ports ?? []) {
      const protocol = (p.protocol ?? 'TCP') as Protocol;
      if (protocol !== 'TCP' && protocol !== 'UDP') continue;
      const key = `${p.containerPort}/${protocol}`;
      if (seen.has(key)) continue;
      seen.add(key);
      ports.push({ port: p.containerPort, protocol, ...(p.name ? { name: p.name } : {}) });
    }
  }
  return ports.length > 0 ? ports : [{ port: DEFAULT_POD_PORT, protocol: 'TCP' }];
}

/** A preStop sleep, from `lifecycle.preStop.sleep.seconds` or an exec hook that only sleeps. */
export function preStopSeconds(pod: PodObject): number {
  let longest = 0;
  for (const c of pod.spec.containers ?? []) {
    const hook = c.lifecycle?.preStop;
    if (!hook) continue;
    if (hook.sleep?.seconds !== undefined) longest = Math.max(longest, hook.sleep.seconds);
    const cmd = (hook.exec?.command ?? []).join(' ');
    const m = /(?:^|\s|\/)sleep\s+(\d+(?:\.\d+)?)\s*$/.exec(cmd);
    if (m) longest = Math.max(longest, Number(m[1]));
  }
  return longest;
}

export interface LabKubeletOptions {
  rest: KubeRest;
  lab: Lab;
  log?: (message: string) => void;
}

export class LabKubelet {
  private readonly pods: ListWatch<PodObject>;
  private readonly local = new Map<string, LocalPod>();
  private readonly busy = new Set<string>();
  private readonly binding = new Map<string, string>();
  private readonly startFailures = new Map<string, number>();
  private labQueue: Promise<unknown> = Promise.resolve();
  private cursor = 0;
  private tick: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly tasks = new Set<Promise<void>>();
  private readonly log: (message: string) => void;

  constructor(private readonly opts: LabKubeletOptions) {
    this.log = opts.log ?? (() => {});
    this.pods = new ListWatch<PodObject>({ rest: opts.rest, path: '/api/v1/pods', onChange: () => this.reconcile(), log: this.log });
  }

  async start(): Promise<void> {
    this.pods.start();
    await this.pods.whenSynced();
    // Pods the lab still runs from before (a restarted supervisor) are adopted by startPod.
    this.tick = setInterval(() => this.reconcile(), TICK_MS);
    this.reconcile();
  }

  /** Stops reconciling; running pods keep running (lab down removes them). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.tick);
    await this.pods.stop();
    await Promise.allSettled([...this.tasks]);
  }

  /** The lab pod (namespace) running a Kubernetes pod, if it runs. */
  labPod(namespace: string, name: string): PodState | undefined {
    return [...this.local.values()].find((l) => l.labName === labPodName(namespace, name))?.pod;
  }

  private task(uid: string, what: string, fn: () => Promise<void>): void {
    if (this.busy.has(uid) || this.stopped) return;
    this.busy.add(uid);
    const p = fn()
      .catch((e: Error) => this.log(`${what}: ${e.message}`))
      .finally(() => {
        this.busy.delete(uid);
        this.tasks.delete(p);
      });
    this.tasks.add(p);
  }

  /** One Lab mutation at a time: addPod allocates an address before it awaits. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.labQueue.then(fn, fn);
    this.labQueue = next.catch(() => undefined);
    return next;
  }

  private reconcile(): void {
    if (this.stopped || !this.pods.synced) return;
    const nodes = new Set(this.opts.lab.nodes.map((n) => n.name));
    const present = new Set<string>();
    for (const pod of this.pods.store.values()) {
      const { uid, namespace, name } = pod.metadata;
      present.add(uid);
      const phase = pod.status?.phase;
      if (phase === 'Succeeded' || phase === 'Failed') continue;
      if (pod.spec.nodeName) this.binding.delete(uid);
      const nodeName = pod.spec.nodeName ?? this.binding.get(uid);
      const id = `pod ${namespace}/${name}`;
      if (!nodeName) {
        if (!pod.metadata.deletionTimestamp) this.task(uid, `binding ${id}`, () => this.bind(pod));
        continue;
      }
      if (!nodes.has(nodeName) || !pod.spec.nodeName) continue;
      const local = this.local.get(uid);
      if (pod.metadata.deletionTimestamp) {
        this.task(uid, `terminating ${id}`, () => this.terminate(pod));
        continue;
      }
      if (!local) {
        const failedAt = this.startFailures.get(uid);
        if (failedAt === undefined || Date.now() - failedAt > START_RETRY_MS) this.task(uid, `starting ${id}`, () => this.startPod(pod, nodeName));
        continue;
      }
      if (!local.diedAt && !isServerAlive(local.pod.server)) {
        local.diedAt = kubeTime();
        this.log(`${id}: its hostname server (pid ${local.pod.server.pid}) exited; the pod is no longer ready`);
      }
      const want = this.desiredStatus(pod, local);
      if (!statusHolds(pod, want)) this.task(uid, `status of ${id}`, () => this.patchStatus(pod, want));
    }
    // Pods gone from the API (deleted with grace 0 by someone else, or their namespace removed).
    for (const [uid, local] of this.local) {
      if (!present.has(uid)) this.task(uid, `removing ${local.labName}`, () => this.removeLocal(local));
    }
  }

  private async bind(pod: PodObject): Promise<void> {
    const { uid, namespace, name } = pod.metadata;
    const load = new Map(this.opts.lab.nodes.map((n) => [n.name, 0]));
    for (const p of this.pods.store.values()) {
      const n = p.spec.nodeName ?? this.binding.get(p.metadata.uid);
      const finished = p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
      if (n && load.has(n) && !finished && !p.metadata.deletionTimestamp) load.set(n, load.get(n)! + 1);
    }
    const candidates = this.opts.lab.nodes.map((n) => ({
      name: n.name,
      labels: (nodeObject(n).metadata as { labels: Record<string, string> }).labels,
      load: load.get(n.name) ?? 0,
    }));
    const node = pickNode(candidates, pod.spec.nodeSelector, this.cursor++);
    if (!node) {
      this.log(`pod ${namespace}/${name}: no lab node matches its nodeSelector ${JSON.stringify(pod.spec.nodeSelector)}`);
      return;
    }
    // Counted at once, so that the next pod of the same reconcile sees this one's node as loaded.
    this.binding.set(uid, node);
    try {
      await this.opts.rest.post(`/api/v1/namespaces/${namespace}/pods/${name}/binding`, {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name, namespace, uid },
        target: { apiVersion: 'v1', kind: 'Node', name: node },
      });
    } catch (e) {
      this.binding.delete(uid);
      // 409: bound meanwhile (by us before a relist, or by someone else): the watch will tell.
      if ((e as KubeApiError).status !== 409) throw e;
    }
  }

  private async startPod(pod: PodObject, node: string): Promise<void> {
    const { uid, namespace, name } = pod.metadata;
    const labName = labPodName(namespace, name);
    const lab = this.opts.lab;
    let state: PodState;
    try {
      state = await this.serial(async () => {
        const existing = lab.pods.find((p) => p.name === labName);
        if (existing) {
          // Left from before (a restarted supervisor, or a pod of the same name that is gone).
          if (existing.node === node && isServerAlive(existing.server) && existing.labels['bpfproxy.io/pod-uid'] === uid) return structuredClone(existing);
          await lab.removePod(labName);
        }
        return lab.addPod({ name: labName, node, ports: podPorts(pod), labels: { ...(pod.metadata.labels ?? {}), 'bpfproxy.io/pod-uid': uid }, ...(pod.spec?.hostNetwork && { hostNetwork: true }) });
      });
    } catch (e) {
      this.startFailures.set(uid, Date.now());
      await this.patchStatus(pod, this.failedStatus(pod, node, (e as Error).message)).catch(() => undefined);
      throw e;
    }
    this.startFailures.delete(uid);
    const local: LocalPod = { uid, labName, node, startedAt: kubeTime(), pod: state };
    this.local.set(uid, local);
    await this.patchStatus(pod, this.desiredStatus(pod, local));
  }

  private async terminate(pod: PodObject): Promise<void> {
    const { uid, namespace, name } = pod.metadata;
    const local = this.local.get(uid);
    if (local) {
      const graceMs = 1000 * (pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_S);
      const deadline = Date.now() + graceMs;
      const preStopMs = Math.min(graceMs, preStopSeconds(pod) * 1000);
      if (preStopMs > 0) await this.sleep(preStopMs);
      const server = local.pod.server;
      if (isServerAlive(server)) {
        try {
          process.kill(server.pid, 'SIGTERM');
        } catch {
          // gone already
        }
        while (isServerAlive(server) && !isZombie(server.pid) && Date.now() < deadline && !this.stopped) await this.sleep(20);
      }
      if (this.stopped) return;
      // removePod kills what is left after the grace period.
      await this.serial(() => this.opts.lab.removePod(local.labName).catch((e: Error) => this.log(`removing ${local.labName}: ${e.message}`)));
      this.local.delete(uid);
    }
    try {
      await this.opts.rest.delete(`/api/v1/namespaces/${namespace}/pods/${name}`, {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        gracePeriodSeconds: 0,
        preconditions: { uid },
      });
    } catch (e) {
      const err = e as KubeApiError;
      if (!err.notFound && err.status !== 409) throw e;
    }
  }

  private async removeLocal(local: LocalPod): Promise<void> {
    await this.serial(async () => {
      if (this.opts.lab.pods.some((p) => p.name === local.labName)) await this.opts.lab.removePod(local.labName);
    });
    this.local.delete(local.uid);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  private desiredStatus(pod: PodObject, local: LocalPod): Record<string, unknown> {
    const node = this.opts.lab.node(local.node);
    const alive = !local.diedAt;
    const ready = alive ? 'True' : 'False';
    const conditions = withTransitions(pod, [
      { type: 'PodReadyToStartContainers', status: 'True' },
      { type: 'Initialized', status: 'True' },
      { type: 'Ready', status: ready },
      { type: 'ContainersReady', status: ready },
      { type: 'PodScheduled', status: 'True' },
    ]);
    return {
      phase: 'Running',
      conditions,
      hostIP: node.address,
      hostIPs: [{ ip: node.address }],
      podIP: local.pod.address,
      podIPs: [{ ip: local.pod.address }],
      startTime: local.startedAt,
      containerStatuses: (pod.spec.containers ?? []).map((c) => ({
        name: c.name,
        image: c.image ?? '',
        imageID: `lab://hostname-server`,
        containerID: `lab://${local.labName}/${local.pod.server.pid}`,
        ready: alive,
        started: alive,
        restartCount: 0,
        state: alive
          ? { running: { startedAt: local.startedAt } }
          : { terminated: { exitCode: 1, reason: 'Error', message: 'the hostname server exited', startedAt: local.startedAt, finishedAt: local.diedAt } },
      })),
    };
  }

  private failedStatus(pod: PodObject, node: string, message: string): Record<string, unknown> {
    return {
      phase: 'Pending',
      hostIP: this.opts.lab.node(node).address,
      conditions: withTransitions(pod, [
        { type: 'PodScheduled', status: 'True' },
        { type: 'Ready', status: 'False' },
        { type: 'ContainersReady', status: 'False' },
      ]),
      containerStatuses: (pod.spec.containers ?? []).map((c) => ({
        name: c.name,
        image: c.image ?? '',
        imageID: '',
        ready: false,
        started: false,
        restartCount: 0,
        state: { waiting: { reason: 'LabPodFailed', message: message.slice(0, 400) } },
      })),
    };
  }

  private async patchStatus(pod: PodObject, status: Record<string, unknown>): Promise<void> {
    const { namespace, name } = pod.metadata;
    try {
      // A merge patch replaces the conditions and container statuses lists whole: we send them whole.
      await this.opts.rest.patch(`/api/v1/namespaces/${namespace}/pods/${name}/status`, { status });
    } catch (e) {
      if (!(e as KubeApiError).notFound) throw e;
    }
  }
}

/** Conditions with lastTransitionTime kept where the status did not change. */
function withTransitions(pod: PodObject, conditions: Array<{ type: string; status: string }>): Condition[] {
  const now = kubeTime();
  return conditions.map((c) => {
    const before = pod.status?.conditions?.find((x) => x.type === c.type);
    return { ...c, lastTransitionTime: before?.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : now };
  });
}

/** Does the API already hold what we would report? (Compared on what matters, not timestamps.) */
function statusHolds(pod: PodObject, want: Record<string, unknown>): boolean {
  const s = pod.status ?? {};
  if (s.phase !== want.phase || s.podIP !== want.podIP || s.hostIP !== want.hostIP) return false;
  for (const c of want.conditions as Condition[]) {
    if (s.conditions?.find((x) => x.type === c.type)?.status !== c.status) return false;
  }
  const wantContainers = want.containerStatuses as Array<{ name: string; ready: boolean }>;
  return wantContainers.every((w) => s.containerStatuses?.find((x) => x.name === w.name)?.ready === w.ready);
}

/** An exited child not yet reaped is as good as gone. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}
