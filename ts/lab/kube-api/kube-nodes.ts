/**
 * The lab's nodes as Kubernetes Node objects, as a kubelet registers and keeps them: name node-k,
 * InternalIP and Hostname addresses, spec.podCIDR, hostname and zone labels, a Ready condition; then
 * a heartbeat — the node's Lease in kube-node-lease renewed every 10 s and the Ready condition's
 * heartbeat refreshed every minute — so that the controller manager's node lifecycle controller
 * never takes a lab node for dead (it would taint it and mark its pods not ready). Zones as in
 * node-objects.ts (the file source's Nodes), so both modes describe the same lab.
 */
import { release } from 'node:os';

import { KubeApiError, kubeTime, microTime, type KubeRest } from '../../kube/rest.js';
import type { NodeState } from '../lab-state.js';
import { nodeAddresses, ZONE_LABEL, zoneOf } from '../node-objects.js';

export const LEASE_DURATION_S = 40;
const LEASE_RENEW_MS = 10_000;
const STATUS_REFRESH_MS = 60_000;
const RETRY_MS = 1000;


const nodeInfo = {
  architecture: process.arch === 'x64' ? 'amd64' : process.arch,
  operatingSystem: 'linux',
  osImage: 'bpfproxy lab (network namespaces)',
  kernelVersion: release(),
  containerRuntimeVersion: 'lab://hostname-server',
  kubeletVersion: 'lab',
  kubeProxyVersion: '',
  bootID: '',
  machineID: '',
  systemUUID: '',
};

function readyConditions(now: string) {
  const cond = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: now,
  });
  return [
    cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'lab kubelet'),
    cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'lab kubelet'),
    cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'lab kubelet'),
    cond('Ready', 'True', 'KubeletReady', 'lab kubelet is posting ready status'),
  ];
}

export function nodeObject(node: NodeState): Record<string, unknown> {
  const now = kubeTime();
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node.name,
      labels: {
        'kubernetes.io/hostname': node.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': nodeInfo.architecture,
        [ZONE_LABEL]: zoneOf(node),
        'bpfproxy.io/lab-node': 'true',
      },
    },
    spec: { podCIDR: node.podCidr, podCIDRs: [node.podCidr] },
    status: {
      addresses: nodeAddresses(node),
      capacity: { cpu: '4', memory: '8Gi', pods: '250' },
      allocatable: { cpu: '4', memory: '8Gi', pods: '250' },
      conditions: readyConditions(now),
      nodeInfo,
    },
  };
}

/** Registers the nodes and keeps their heartbeats until stopped. */
export class LabNodeHeartbeat {
  private timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  /** Renewals that failed (the API server was away) and succeeded, for tests and logs. */
  readonly stats = { renewed: 0, failed: 0 };

  private constructor(
    private readonly rest: KubeRest,
    private readonly nodes: readonly NodeState[],
    private readonly log: (m: string) => void,
  ) {}

  static async start(rest: KubeRest, nodes: readonly NodeState[], log: (m: string) => void = () => {}): Promise<LabNodeHeartbeat> {
    const hb = new LabNodeHeartbeat(rest, nodes, log);
    for (const node of nodes) await hb.register(node);
    for (const node of nodes) {
      hb.loop(LEASE_RENEW_MS, () => hb.renewLease(node));
      hb.loop(STATUS_REFRESH_MS, () => hb.refreshStatus(node));
    }
    return hb;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
  }

  private async register(node: NodeState): Promise<void> {
    const obj = nodeObject(node);
    try {
      await this.rest.post('/api/v1/nodes', obj);
    } catch (e) {
      if ((e as KubeApiError).status !== 409) throw e;
      // Registered before (a restarted supervisor): refresh its status; spec.podCIDR cannot change.
      await this.rest.patch(`/api/v1/nodes/${node.name}/status`, { status: obj.status });
    }
    await this.renewLease(node);
  }

  /** Runs `fn` every `everyMs`; after a failure again in a second, as a kubelet retries. */
  private loop(everyMs: number, fn: () => Promise<void>): void {
    const schedule = (ms: number) => {
      const timer = setTimeout(async () => {
        this.timers.delete(timer);
        if (this.stopped) return;
        let ok = true;
        try {
          await fn();
        } catch (e) {
          ok = false;
          this.stats.failed++;
          if (this.stats.failed % 10 === 1) this.log(`node heartbeat: ${(e as Error).message}`);
        }
        if (!this.stopped) schedule(ok ? everyMs : RETRY_MS);
      }, ms);
      this.timers.add(timer);
    };
    schedule(everyMs);
  }

  private async renewLease(node: NodeState): Promise<void> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${node.name}`;
    const spec = { holderIdentity: node.name, leaseDurationSeconds: LEASE_DURATION_S, renewTime: microTime() };
    try {
      await this.rest.patch(path, { spec });
    } catch (e) {
      if (!(e as KubeApiError).notFound) throw e;
      await this.rest.post('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: node.name, namespace: 'kube-node-lease' },
        spec,
      });
    }
    this.stats.renewed++;
  }

  private async refreshStatus(node: NodeState): Promise<void> {
    const current = await this.rest.get<{ status?: { conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }> } }>(`/api/v1/nodes/${node.name}`);
    const now = kubeTime();
    const conditions = readyConditions(now).map((c) => {
      const before = current.status?.conditions?.find((x) => x.type === c.type);
      // The transition time moves only when the status changes (the controller may have set Unknown).
      return before && before.status === c.status && before.lastTransitionTime ? { ...c, lastTransitionTime: before.lastTransitionTime } : c;
    });
    await this.rest.patch(`/api/v1/nodes/${node.name}/status`, { status: { conditions } }, 'strategic');
  }
}
