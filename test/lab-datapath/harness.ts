/**
 * A lab with the real datapath on every node: per node a private bpffs, loadDatapath with that
 * node's config, the programs attached in the node's namespace, and a Reconciler fed from Service
 * and EndpointSlice objects through the same path the agent takes (model → entries → maps).
 * Everything is removed in t.teardown, pass or fail.
 */
import type { ExecutionContext } from 'ava';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import { scope } from '../helpers/scope.js';

import { attachDatapath, type AttachedDatapath } from '../../ts/dataplane/attach.js';
import { computeEntries } from '../../ts/dataplane/entries.js';
import { loadDatapath, type Datapath } from '../../ts/dataplane/loader.js';
import { Reconciler, type WriteFailure } from '../../ts/dataplane/reconciler.js';
import { Lab, type PodSpec } from '../../ts/lab/topology.js';
import type { NodeState, PodState } from '../../ts/lab/lab-state.js';
import { computeDesiredState, resolveProxyConfig, type IdState } from '../../ts/model/index.js';

export const M = 251;
export const CLUSTER_CIDR = '198.18.128.0/17';
export const CLUSTER_IP = '198.19.0.10';
export const SERVICE_PORT = 80;
export const TARGET_PORT = 9376;
export const NODE_PORT = 30080;
const proxyConfig = resolveProxyConfig({ clusterCIDR: CLUSTER_CIDR, maglevTableSize: M });

interface NodeDatapath {
  node: NodeState;
  dp: Datapath;
  attached: AttachedDatapath;
  reconciler: Reconciler;
  ids: IdState | undefined;
}

export class DatapathLab {
  private constructor(
    readonly lab: Lab,
    private readonly nodes: NodeDatapath[],
  ) {}

  static async up(t: ExecutionContext, opts: { nodes?: number; clients?: number } = {}): Promise<DatapathLab> {
    const s = scope(t);
    const lab = await Lab.up({ name: `ldp-${s.id}`, nodes: opts.nodes ?? 2, clients: opts.clients ?? 1 });
    s.cleanup.add('lab', () => lab.down());
    // One private bpffs for the test, a directory of it per node (scope.bpffs() is one mount per scope).
    const bpffs = await s.bpffs();
    const nodes: NodeDatapath[] = [];
    for (const node of lab.nodes) {
      const pinDir = join(bpffs, node.name);
      mkdirSync(pinDir);
      const dp = await loadDatapath({
        pinDir,
        config: {
          nodeIp: node.address,
          clusterCidr: CLUSTER_CIDR,
          // .1 of the node's pod CIDR is never given to a pod (docs/lab.md).
          hairpinIp: node.podCidr.replace(/\.0\/\d+$/, '.1'),
          maglevM: M,
        },
      });
      s.cleanup.add(`datapath of ${node.name}`, () => dp.close());
      const attached = attachDatapath(dp, { netnsPath: lab.netns(node.name).path, uplink: node.uplink, xdpMode: 'generic' });
      s.cleanup.add(`links of ${node.name}`, () => attached.detachAll());
      const reconciler = new Reconciler(dp);
      reconciler.adopt();
      nodes.push({ node, dp, attached, reconciler, ids: undefined });
    }
    return new DatapathLab(lab, nodes);
  }

  /** A pod with the datapath attached to its host-side veth. */
  async addPod(spec: PodSpec): Promise<PodState> {
    const pod = await this.lab.addPod(spec);
    this.nodeOf(pod.node).attached.attachPod(pod.hostInterface);
    return pod;
  }

  async removePod(name: string): Promise<void> {
    const pod = this.lab.pod(name);
    this.nodeOf(pod.node).attached.detachPod(pod.hostInterface);
    await this.lab.removePod(name);
  }

  /** Feeds the objects to every node's reconciler; resolves with the write failures (none expected). */
  apply(services: V1Service[], endpointSlices: V1EndpointSlice[]): WriteFailure[] {
    const failures: WriteFailure[] = [];
    for (const n of this.nodes) {
      const state = computeDesiredState({
        services,
        endpointSlices,
        node: { name: n.node.name, addresses: [n.node.address], podCIDRs: [n.node.podCidr] },
        config: proxyConfig,
        ...(n.ids ? { previousIds: n.ids } : {}),
      });
      n.ids = state.ids;
      failures.push(...n.reconciler.apply(computeEntries(state, M)).failures);
    }
    return failures;
  }

  datapath(node: string): Datapath {
    return this.nodeOf(node).dp;
  }

  private nodeOf(name: string): NodeDatapath {
    const n = this.nodes.find((x) => x.node.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }
}

export type ServiceType = 'ClusterIP' | 'NodePort';

/** Service "hostnames": port 80 over TCP and UDP → 9376, NodePort 30080 (TCP) and 30081 (UDP) when asked. */
export function hostnamesService(type: ServiceType = 'ClusterIP'): V1Service {
  const nodePort = (n: number) => (type === 'NodePort' ? { nodePort: n } : {});
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'hostnames', namespace: 'default' },
    spec: {
      type,
      clusterIP: CLUSTER_IP,
      clusterIPs: [CLUSTER_IP],
      ports: [
        { name: 'tcp', port: SERVICE_PORT, targetPort: TARGET_PORT as never, protocol: 'TCP', ...nodePort(NODE_PORT) },
        { name: 'udp', port: SERVICE_PORT, targetPort: TARGET_PORT as never, protocol: 'UDP', ...nodePort(NODE_PORT + 1) },
      ],
    },
  };
}

/** The EndpointSlice of "hostnames": ready endpoints, one per pod. */
export function hostnamesSlice(pods: readonly PodState[]): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'hostnames-abcde', namespace: 'default', labels: { 'kubernetes.io/service-name': 'hostnames' } },
    addressType: 'IPv4',
    ports: [
      { name: 'tcp', port: TARGET_PORT, protocol: 'TCP' },
      { name: 'udp', port: TARGET_PORT, protocol: 'UDP' },
    ],
    endpoints: pods.map((p) => ({
      addresses: [p.address],
      nodeName: p.node,
      targetRef: { kind: 'Pod', namespace: 'default', name: p.name },
      conditions: { ready: true, serving: true, terminating: false },
    })),
  };
}

export const backendPort = [{ port: TARGET_PORT, protocol: 'TCP' as const }];
