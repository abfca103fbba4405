/**
 * A lab with the real datapath on every node: per node a private bpffs, loadDatapath with that
 * node's config, the programs attached in the node's namespace, and a Reconciler fed from Service
 * and EndpointSlice objects through the same path the agent takes (model → entries → maps).
 * Every setting is the agent's: the config file an agent-run lab node gets (ts/lab/agents.ts),
 * resolved by the agent's own code (resolveAgentConfig, datapathConfigFor), with the test's extra
 * fields merged over it as a user's config file would; the service device made, routed and
 * attached by the agent's functions (ts/agent/service-device.ts), as the agent does at start.
 * test/lab-agent/node-traffic.test.ts holds these settings equal to a running agent's. Everything
 * is removed in t.teardown, pass or fail.
 */
import type { ExecutionContext } from 'ava';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import { scope } from '../helpers/scope.js';

import type { DropReason } from '../../ts/abi/drop-reason.js';
import { attachDatapath, type AttachedDatapath, type UplinkXdpMode } from '../../ts/dataplane/attach.js';
import { loadDatapath, type Datapath } from '../../ts/dataplane/loader.js';
import { Reconciler, type WriteFailure } from '../../ts/dataplane/reconciler.js';
import { sumPerCpu } from '../../ts/dataplane/typed-map.js';
import { Lab, type PodSpec } from '../../ts/lab/topology.js';
import type { LbRoute, NodeState, PodState } from '../../ts/lab/lab-state.js';
import { type IdState, type ProxyConfig } from '../../ts/model/index.js';
import { resolveAgentConfig, type AgentConfig, type ConfigFile } from '../../ts/agent/config.js';
import { datapathConfigFor } from '../../ts/agent/datapath-config.js';
import { ACCEPT_LOCAL_SYSCTL, desiredServiceRoutes, ensureServiceDevice, syncServiceRoutes } from '../../ts/agent/service-device.js';
import { agentConfig } from '../../ts/lab/agents.js';
import type { DatapathConfig } from '../../ts/abi/config.js';
import { program } from '../helpers/program.js';

export const M = 251;
export const CLUSTER_CIDR = '198.18.128.0/17';
export const CLUSTER_IP = '198.19.0.10';
export const SERVICE_PORT = 80;
export const TARGET_PORT = 9376;
export const NODE_PORT = 30080;
export const LB_IP = '198.19.255.10';
export const EXTERNAL_IP = '198.19.255.20';
const FIXED_PORT_CLIENT = fileURLToPath(new URL('./_fixed-port-client.mjs', import.meta.url));

/** What the agent of an agent-run lab node would run with, plus `extra` config file fields. */
export function labAgentSettings(node: NodeState, pinDir: string, extra: Record<string, unknown> = {}): { agent: AgentConfig; datapath: DatapathConfig } {
  const file = agentConfig(node, { kind: 'file', dir: '/nonexistent' }, pinDir, { maglevTableSize: M, ...extra });
  const agent = resolveAgentConfig(file as ConfigFile, {}, node.name);
  return { agent, datapath: datapathConfigFor(agent, node.address).config };
}

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
    private readonly proxyConfig: ProxyConfig,
  ) {}

  static async up(
    t: ExecutionContext,
    opts: {
      nodes?: number;
      clients?: number;
      xdpMode?: UplinkXdpMode;
      lbRoute?: LbRoute;
      /** Agent config file fields over the lab's (e.g. clusterCIDR: '' for kube-proxy's default, masqueradeAll). */
      config?: Record<string, unknown>;
    } = {},
  ): Promise<DatapathLab> {
    const s = scope(t);
    const lab = await Lab.up({ name: `ldp-${s.id}`, nodes: opts.nodes ?? 2, clients: opts.clients ?? 1, ...(opts.lbRoute ? { lbRoute: opts.lbRoute } : {}) });
    s.cleanup.add('lab', () => lab.down());
    // One private bpffs for the test, a directory of it per node (scope.bpffs() is one mount per scope).
    const bpffs = await s.bpffs();
    const nodes: NodeDatapath[] = [];
    let proxyConfig: ProxyConfig | undefined;
    for (const node of lab.nodes) {
      const pinDir = join(bpffs, node.name);
      mkdirSync(pinDir);
      const settings = labAgentSettings(node, pinDir, opts.config);
      proxyConfig = settings.agent.proxy;
      const dp = await loadDatapath({ pinDir, config: settings.datapath });
      s.cleanup.add(`datapath of ${node.name}`, () => dp.close());
      // What the agent does at start (ts/agent/agent.ts): the service device and its routes (the
      // Service CIDRs; the agent adds /32s for LoadBalancer and external IPs as Services come),
      // lo's accept_local.
      const a = settings.agent;
      await ensureServiceDevice(a.serviceInterface, { netns: node.netns });
      await syncServiceRoutes(a.serviceInterface, desiredServiceRoutes([], a.serviceCIDRs ?? [], [node.address]), node.address, { netns: node.netns });
      await lab.netns(node.name).sysctl(ACCEPT_LOCAL_SYSCTL, 1);
      const attached = attachDatapath(dp, {
        netnsPath: lab.netns(node.name).path,
        uplink: a.uplinkInterfaces,
        xdpMode: opts.xdpMode ?? a.xdpMode,
        serviceDevice: a.serviceInterface,
      });
      s.cleanup.add(`links of ${node.name}`, () => attached.detachAll());
      const reconciler = new Reconciler(dp);
      reconciler.adopt();
      nodes.push({ node, dp, attached, reconciler, ids: undefined });
    }
    return new DatapathLab(lab, nodes, proxyConfig!);
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
      const { state, result } = program(n.reconciler, { services, endpointSlices }, {
        node: { name: n.node.name, addresses: [n.node.address], podCIDRs: [n.node.podCidr] },
        config: this.proxyConfig,
        ...(n.ids ? { previousIds: n.ids } : {}),
      });
      n.ids = state.ids;
      failures.push(...result.failures);
    }
    return failures;
  }

  datapath(node: string): Datapath {
    return this.nodeOf(node).dp;
  }

  /**
   * One request per local port, in turn, each from exactly that source port (fixed-port-client.mjs):
   * the same flow, sent again later, through another node if the routes changed in between.
   */
  async fixedPortRequests(
    from: string,
    opts: { address: string; port: number; protocol: 'TCP' | 'UDP'; localPorts: number[]; payload?: string; timeoutMs?: number; close?: 'fin' | 'reset' },
  ): Promise<({ ok: true; answer: string } | { ok: false; error: string })[]> {
    const timeoutMs = opts.timeoutMs ?? 1000;
    const out = await this.lab.exec(from, process.execPath, [FIXED_PORT_CLIENT, JSON.stringify({ ...opts, timeoutMs })], {
      timeoutMs: opts.localPorts.length * timeoutMs + 10_000,
    });
    return JSON.parse(out) as ({ ok: true; answer: string } | { ok: false; error: string })[];
  }

  /** Packets dropped for `reason`, on one node or summed over all. */
  drops(reason: DropReason, node?: string): bigint {
    const nodes = node ? [this.nodeOf(node)] : this.nodes;
    return nodes.reduce((sum, n) => sum + (sumPerCpu(n.dp.maps.drops.getPerCpu(reason))?.packets ?? 0n), 0n);
  }

  /** fragstat_v1 counter `stat` (FragStat), on one node or summed over all. */
  fragStat(stat: number, node?: string): bigint {
    const nodes = node ? [this.nodeOf(node)] : this.nodes;
    return nodes.reduce((sum, n) => sum + (sumPerCpu(n.dp.maps.fragstat.getPerCpu(stat))?.packets ?? 0n), 0n);
  }

  private nodeOf(name: string): NodeDatapath {
    const n = this.nodes.find((x) => x.node.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }
}

/** What a Service looks like, beyond the "hostnames" defaults (ClusterIP 198.19.0.10, port 80 → 9376, TCP + UDP). */
export interface ServiceShape {
  name?: string;
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  clusterIP?: string;
  externalIPs?: string[];
  /** status.loadBalancer.ingress (type LoadBalancer). */
  loadBalancerIPs?: string[];
  loadBalancerSourceRanges?: string[];
  externalTrafficPolicy?: 'Cluster' | 'Local';
  internalTrafficPolicy?: 'Cluster' | 'Local';
  /** sessionAffinity ClientIP with this timeout. */
  affinityTimeoutSeconds?: number;
}

/**
 * A Service with port 80 over TCP and UDP → 9376; NodePort and LoadBalancer types get node ports
 * 30080 (TCP) and 30081 (UDP).
 */
export function service(shape: ServiceShape = {}): V1Service {
  const type = shape.type ?? 'ClusterIP';
  const clusterIP = shape.clusterIP ?? CLUSTER_IP;
  const nodePort = (n: number) => (type === 'ClusterIP' ? {} : { nodePort: n });
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: shape.name ?? 'hostnames', namespace: 'default' },
    spec: {
      type,
      clusterIP,
      clusterIPs: [clusterIP],
      ports: [
        { name: 'tcp', port: SERVICE_PORT, targetPort: TARGET_PORT as never, protocol: 'TCP', ...nodePort(NODE_PORT) },
        { name: 'udp', port: SERVICE_PORT, targetPort: TARGET_PORT as never, protocol: 'UDP', ...nodePort(NODE_PORT + 1) },
      ],
      ...(shape.externalIPs ? { externalIPs: shape.externalIPs } : {}),
      ...(shape.loadBalancerSourceRanges ? { loadBalancerSourceRanges: shape.loadBalancerSourceRanges } : {}),
      ...(shape.externalTrafficPolicy ? { externalTrafficPolicy: shape.externalTrafficPolicy } : {}),
      ...(shape.internalTrafficPolicy ? { internalTrafficPolicy: shape.internalTrafficPolicy } : {}),
      ...(shape.affinityTimeoutSeconds !== undefined
        ? { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: shape.affinityTimeoutSeconds } } }
        : {}),
    },
    ...(shape.loadBalancerIPs ? { status: { loadBalancer: { ingress: shape.loadBalancerIPs.map((ip) => ({ ip })) } } } : {}),
  };
}

/** Service "hostnames" of a type, with the defaults (kept for the tests written before `service`). */
export function hostnamesService(type: 'ClusterIP' | 'NodePort' = 'ClusterIP'): V1Service {
  return service({ type });
}

export interface EndpointConditions {
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export const TERMINATING: EndpointConditions = { ready: false, serving: true, terminating: true };

/**
 * The EndpointSlice of a service (default "hostnames"): one endpoint per pod, ready unless `conditions`
 * says otherwise, on port 9376 unless `targetPort` names another (one the pods do not serve, say).
 */
export function hostnamesSlice(
  pods: readonly PodState[],
  opts: { service?: string; conditions?: Record<string, EndpointConditions>; targetPort?: number } = {},
): V1EndpointSlice {
  const svc = opts.service ?? 'hostnames';
  const port = opts.targetPort ?? TARGET_PORT;
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${svc}-abcde`, namespace: 'default', labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports: [
      { name: 'tcp', port, protocol: 'TCP' },
      { name: 'udp', port, protocol: 'UDP' },
    ],
    endpoints: pods.map((p) => ({
      addresses: [p.address],
      nodeName: p.node,
      targetRef: { kind: 'Pod', namespace: 'default', name: p.name },
      conditions: opts.conditions?.[p.name] ?? { ready: true, serving: true, terminating: false },
    })),
  };
}

export const backendPort = [{ port: TARGET_PORT, protocol: 'TCP' as const }];

/**
 * A "whoami" answer: the backend that answered and the peer address it saw. Over TCP the server
 * answers a bare name when the request line reaches it more than its grace period (25 ms) after
 * the connection: a busy machine's timing, not the datapath's; `peer` is then undefined.
 */
export function parseWhoami(answer: string): { pod: string; peer: string | undefined } {
  const m = /^(\S+)(?: (\d+\.\d+\.\d+\.\d+):\d+)?$/.exec(answer);
  if (!m) throw new Error(`not a whoami answer: ${JSON.stringify(answer)}`);
  return { pod: m[1]!, peer: m[2] };
}

/**
 * Every answer came from `pod` (when given), every answer that names its peer names `peer`, and
 * most do (see parseWhoami). Failed requests fail the check.
 */
export function checkWhoami(
  t: ExecutionContext,
  answers: readonly ({ ok: true; answer: string } | { ok: false; error: string })[],
  want: { pod?: string; peer: string },
  what: string,
): void {
  t.deepEqual(answers.filter((a) => !a.ok), [], `${what}: failed requests`);
  const parsed = answers.flatMap((a) => (a.ok ? [parseWhoami(a.answer)] : []));
  if (want.pod !== undefined) t.deepEqual([...new Set(parsed.map((w) => w.pod))], [want.pod], `${what}: answered by`);
  const peers = parsed.flatMap((w) => (w.peer === undefined ? [] : [w.peer]));
  t.deepEqual([...new Set(peers)], [want.peer], `${what}: peer seen by the backend`);
  t.true(peers.length * 2 >= parsed.length, `${what}: ${peers.length} of ${parsed.length} answers name their peer`);
}

/** χ² of counts against a uniform spread over `names` (absent names count 0). */
export function chiSquareUniform(byAnswer: Record<string, number>, names: readonly string[]): number {
  const total = names.reduce((s, n) => s + (byAnswer[n] ?? 0), 0);
  const expected = total / names.length;
  return names.reduce((s, n) => s + ((byAnswer[n] ?? 0) - expected) ** 2 / expected, 0);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
