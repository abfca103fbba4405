/**
 * The traffic matrix: real traffic through agent-run labs (`Lab.up`, one agent per node started
 * with the lab's own agent configuration, as `bpfproxy lab up` does), with the kernel's offloads as
 * veths come (TSO/GSO/GRO on). Every cell is (agent configuration, XDP mode, source, frontend) and
 * runs a `whoami` (which backend answered, which peer it saw), a 16 MiB download and a 16 MiB
 * upload (SHA-256 checked end to end) and an 8 KB UDP datagram echoed back. What each cell must
 * give is declared in `expect` below, from kube-proxy's rules; the run prints the matrix.
 *
 * Three lab shapes: `routed` (a route per node's pod CIDR, GKE-like), `vxlan` (the same cells over
 * a flannel-like overlay: pod-to-pod legs are VXLAN-encapsulated between the nodes) and `two uplinks`
 * (node-1 also on a second node network through eth1, and a client there reaching its frontends).
 */
import type { ExecutionContext } from 'ava';
import type { V1Service } from '@kubernetes/client-node';

import { agentLabFor, hostnamesManifest, hostnamesService, liveService } from '../lab-agent/_fixture.js';
import { eventually } from '../helpers/wait.js';

import { applyManifests } from '../../ts/lab/file-api/apply.js';
import type { Manifest } from '../../ts/lab/file-api/manifests.js';
import type { Lab } from '../../ts/lab/topology.js';

export const MiB = 1024 * 1024;
export const BULK_BYTES = 16 * MiB;
const UDP_PAYLOAD = 8 * 1024;

/** Agent configurations users run: the lab's (clusterCIDR set), kube-proxy's default (none), masqueradeAll. */
export const CONFIGS = {
  clusterCIDR: {},
  noClusterCIDR: { clusterCIDR: '' },
  masqueradeAll: { masqueradeAll: true },
} as const satisfies Record<string, Record<string, unknown>>;
export type ConfigName = keyof typeof CONFIGS;
export type XdpMode = 'generic' | 'off';
export const VARIANTS = ['routed', 'vxlan', 'two uplinks'] as const;
export type Variant = (typeof VARIANTS)[number];

/**
 * Sources: a pod on the backend's node (node-1), a pod on the other node, each node itself, an
 * outside client; with two uplinks, a client on the second node network, which reaches node-1
 * only, through its eth1.
 */
export const SOURCES = ['pod-node-1', 'pod-node-2', 'node-1', 'node-2', 'client'] as const;
export type Source = (typeof SOURCES)[number] | 'client (eth1)';
/**
 * Frontends of three Services: "hostnames", a LoadBalancer whose one endpoint is a pod on node-1
 * (LB IPs route to node-2); "local", a NodePort with externalTrafficPolicy Local and the same
 * endpoint; "empty", a ClusterIP/NodePort with no endpoint at all.
 */
export const FRONTENDS = [
  'ClusterIP', 'NodePort node-1', 'NodePort node-2', 'LoadBalancer', 'ETP Local node-1', 'ETP Local node-2', 'no endpoints (ClusterIP)', 'no endpoints (NodePort)',
] as const;
/**
 * Frontends of the two-uplink lab: node-1's on its second address (198.18.2.11), the LoadBalancer
 * IP, which the second network routes to that address, and "far", a NodePort whose one endpoint is a
 * pod on node-2 (so node-1 masquerades, sends on eth0 and answers back out of eth1).
 */
export const ETH1_FRONTENDS = ['NodePort node-1 (eth1)', 'LoadBalancer (eth1)', 'ETP Local node-1 (eth1)', 'no endpoints (NodePort eth1)', 'far NodePort node-1 (eth1)'] as const;
export type Frontend = (typeof FRONTENDS)[number] | (typeof ETH1_FRONTENDS)[number] | 'far NodePort node-1';

/** The two-uplink lab's cells: the eth1 client on each, and the eth0 client on node-1 as before. */
const TWO_UPLINK_CELLS: [Source, Frontend][] = [
  ...ETH1_FRONTENDS.map((f): [Source, Frontend] => ['client (eth1)', f]),
  ['client', 'NodePort node-1'],
  ['client', 'far NodePort node-1'],
];

/** What a cell must give. */
export type Expectation =
  | {
      outcome: 'works';
      /** The peer the backend sees: the client's own address, or a node's (masqueraded). */
      peer: 'client' | 'node-1' | 'node-2';
    }
  /** Refused at once (TCP RST, ICMP port unreachable): kube-proxy's REJECT of a Service with no endpoints. */
  | { outcome: 'refused' }
  /** Dropped (a Local policy with no endpoint on the node): the client times out. */
  | { outcome: 'dropped' };

/**
 * kube-proxy's rules, as bpfproxy applies them. ClusterIP: masquerade only with masqueradeAll (a
 * pod's own node address) or from outside the cluster CIDR. External frontends: the node that
 * translated masquerades when the backend is on another node (its reply must come back), and keeps
 * the client's address when the backend is its own (a deliberate difference: kube-proxy masquerades
 * all ETP Cluster traffic). Pods reaching a NodePort of another node enter through its uplink.
 */
export function expect(config: ConfigName, source: Source, frontend: Frontend): Expectation {
  if (source === 'node-1' || source === 'node-2') return expectFromNode(source, frontend);
  const podNode = source === 'pod-node-1' ? 'node-1' : 'node-2';
  const detectLocal = config !== 'noClusterCIDR';
  switch (frontend) {
    case 'no endpoints (ClusterIP)':
    case 'no endpoints (NodePort)':
    case 'no endpoints (NodePort eth1)':
      return { outcome: 'refused' };
    // node-1 answers NodePorts on both of its addresses (both are in its Node object, and kube-proxy
    // answers on every node address by default); the backend is its own: the client's address kept.
    case 'NodePort node-1 (eth1)':
    case 'ETP Local node-1 (eth1)':
    case 'LoadBalancer (eth1)':
      return { outcome: 'works', peer: 'client' };
    // The backend is on node-2: node-1 masquerades to its primary address, whichever uplink the
    // client came in through.
    case 'far NodePort node-1':
    case 'far NodePort node-1 (eth1)':
      return { outcome: 'works', peer: 'node-1' };
    case 'ETP Local node-1':
      // The endpoint is node-1's: every source reaches it with its own address (pods of node-1
      // through their veth, the others as external or, with a detector, cluster traffic).
      return { outcome: 'works', peer: 'client' };
    case 'ETP Local node-2':
      // pod-node-2: its own veth, internal: every endpoint, its address kept. An outside client is
      // external: node-2 has no local endpoint, dropped. pod-node-1 enters node-2's uplink: cluster
      // traffic when the cluster CIDRs tell (every endpoint, masqueraded back through node-2),
      // else external like any client.
      if (source === 'pod-node-2') return { outcome: 'works', peer: 'client' };
      if (source === 'pod-node-1' && detectLocal) return { outcome: 'works', peer: 'node-2' };
      return { outcome: 'dropped' };
    case 'ClusterIP':
      if (source === 'client') throw new Error('outside clients do not route ClusterIPs');
      return { outcome: 'works', peer: config === 'masqueradeAll' ? podNode : 'client' };
    case 'NodePort node-1':
      // Translated by node-1 (pod-node-1: its own veth; the others: node-1's uplink); the backend is local.
      return { outcome: 'works', peer: 'client' };
    case 'NodePort node-2':
      // pod-node-2: translated on its own veth, internal traffic: the pod's address is kept (the
      // reply passes node-2 anyway; kube-proxy masquerades it, KUBE-EXT under ETP Cluster). The
      // others enter node-2's uplink, and the backend is on node-1: node-2 masquerades.
      return { outcome: 'works', peer: source === 'pod-node-2' ? 'client' : 'node-2' };
    case 'LoadBalancer':
      // Pods translate LB IPs on their own veth (internal traffic, no masquerade); outside clients
      // route them to node-2, which masquerades to the backend on node-1.
      return { outcome: 'works', peer: source === 'client' ? 'node-2' : 'client' };
  }
}

/**
 * The node itself as the client: its own connections leave with its own address, through the
 * service device, or through lo to its own NodePorts (internal traffic: ETP Local does not narrow
 * it). Another node's NodePort is that node's external traffic: node-1 keeps node-2's address (its
 * endpoint is local), node-2 masquerades node-1's (the endpoint is on node-1), and node-2's ETP
 * Local NodePort drops node-1 (no endpoint on node-2; a node address is no cluster source).
 */
function expectFromNode(source: 'node-1' | 'node-2', frontend: (typeof FRONTENDS)[number] | Frontend): Expectation {
  const other = source === 'node-1' ? 'node-2' : 'node-1';
  switch (frontend) {
    case 'no endpoints (ClusterIP)':
    case 'no endpoints (NodePort)':
      return { outcome: 'refused' };
    case 'ClusterIP':
    case 'LoadBalancer':
      return { outcome: 'works', peer: source };
    case 'NodePort node-1':
    case 'NodePort node-2':
    case 'ETP Local node-1':
    case 'ETP Local node-2': {
      const owner = frontend.endsWith('node-1') ? 'node-1' : 'node-2';
      if (owner === source) return { outcome: 'works', peer: source };
      if (frontend === `ETP Local ${other}` && other === 'node-2') return { outcome: 'dropped' };
      return { outcome: 'works', peer: owner === 'node-1' ? source : 'node-2' };
    }
    default:
      throw new Error(`the nodes are no source in the two-uplink lab (${frontend})`);
  }
}

export function cellAsExpected(c: CellResult): boolean {
  const gap = knownGap(c.variant, c.source, c.frontend);
  return Object.entries(c.checks).every(([check, v]) => (gap?.check === check ? gap.fails.test(v) : v === 'ok' || v === OK_AFTER_PMTU));
}

/**
 * Cells that do not work yet, each declared with the check that fails and how, so that the matrix
 * shows them and a change either way fails the test (then update this).
 *
 * On the VXLAN overlay, a node's own 8 KB UDP datagram to a ClusterIP or LoadBalancer IP whose
 * endpoint is the node's own pod: the node's stack fragments it at the service device's MTU (1500)
 * before the datapath translates the fragments (tc_host_egress) to the pod, whose veth has the
 * overlay's MTU (1450). Too big, no DF: it goes on whole (lib/fib.h) and the pod's veth drops it.
 * kube-proxy NATs in OUTPUT before the stack fragments, at the pod route's MTU, so it works there.
 * The fix belongs to the service device: its MTU no larger than any pod interface's.
 */
export function knownGap(variant: Variant, source: Source, frontend: Frontend): { check: keyof CellResult['checks']; fails: RegExp } | undefined {
  if (variant === 'vxlan' && source === 'node-1' && (frontend === 'ClusterIP' || frontend === 'LoadBalancer')) return { check: 'udp', fails: /^timeout/ };
  return undefined;
}

/**
 * The node's first 8 KB datagram to its own address (a NodePort here) leaves lo whole (lo's MTU is
 * 64 KiB) and is too big for the backend's path once translated: the datapath answers
 * fragmentation needed, as a router would, the socket reports EMSGSIZE and the node's stack
 * fragments every later datagram to that address. A client sends again, as applications do on
 * EMSGSIZE; the matrix says so.
 */
const OK_AFTER_PMTU = 'ok (after one EMSGSIZE: path MTU learnt)';

export interface CellResult {
  variant: Variant;
  config: ConfigName;
  xdp: XdpMode;
  source: Source;
  frontend: Frontend;
  expected: Expectation;
  /** What happened, one word per check: ok, or the failure. */
  checks: { whoami: string; download: string; upload: string; udp: string };
}

function sourceNamespace(source: Source): string {
  return { client: 'client-1', 'client (eth1)': 'client-2', 'pod-node-1': 'pod-client-1', 'pod-node-2': 'pod-client-2', 'node-1': 'node-1', 'node-2': 'node-2' }[source];
}

interface Target {
  address: string;
  port: number;
  udpPort: number;
  /** The pod that must answer. */
  backend: string;
}

/**
 * Runs every cell of one (lab shape, config, XDP mode) on one lab. `agentConfig`: settings on top
 * of the matrix's (to show what a cell gives with another agent configuration).
 */
export async function runLabCells(t: ExecutionContext, variant: Variant, config: ConfigName, xdp: XdpMode, agentConfig: Record<string, unknown> = {}): Promise<CellResult[]> {
  const twoUplinks = variant === 'two uplinks';
  const { lab } = await agentLabFor(
    t,
    {
      nodes: 2,
      clients: 1,
      lbRoute: { mode: 'node', node: 2 },
      ...(variant === 'vxlan' && { podNetwork: 'vxlan' as const }),
      ...(twoUplinks && { secondNetwork: { nodes: [1], clients: 1 } }),
    },
    { config: { ...CONFIGS[config], xdpMode: xdp, ...agentConfig } },
  );
  const ports = (['TCP', 'UDP'] as const).map((protocol) => ({ name: protocol.toLowerCase(), protocol, port: 80, targetPort: 9376 as never }));
  // far-1 by hand: the lab's deployment controller puts a Deployment's first pod on node-1.
  if (twoUplinks) await lab.addPod({ name: 'far-1', node: 'node-2', labels: { app: 'far' }, ports: [{ port: 9376, protocol: 'TCP' }] });
  await applyManifests(lab, [
    backendOnNode1(),
    hostnamesService({ type: 'LoadBalancer', ports }),
    namedService('local', { type: 'NodePort', externalTrafficPolicy: 'Local', selector: { app: 'hostnames' }, ports }),
    namedService('empty', { type: 'NodePort', selector: { app: 'nobody' }, ports }),
    ...(twoUplinks ? [namedService('far', { type: 'NodePort', selector: { app: 'far' }, ports })] : []),
  ]);
  if (!twoUplinks) for (const k of [1, 2]) await lab.addPod({ name: `pod-client-${k}`, node: `node-${k}`, ports: [{ port: 8080, protocol: 'TCP' }] });
  const svc = liveService(lab);
  const local = liveService(lab, 'local');
  const empty = liveService(lab, 'empty');
  const eth1 = lab.node('node-1').secondUplink?.address ?? '';
  const onNode = (s: typeof svc, address: string, backend = 'hostnames-1'): Target => ({ address, port: nodePortOf(s, 'TCP'), udpPort: nodePortOf(s, 'UDP'), backend });
  const nodePort = (s: typeof svc, node: string) => onNode(s, lab.node(node).address);
  const lb = svc.status!.loadBalancer!.ingress![0]!.ip!;
  const far = twoUplinks ? liveService(lab, 'far') : undefined;
  const targets = (frontend: Frontend): Target => {
    switch (frontend) {
      case 'ClusterIP': return { address: svc.spec!.clusterIP!, port: 80, udpPort: 80, backend: 'hostnames-1' };
      case 'NodePort node-1': return nodePort(svc, 'node-1');
      case 'NodePort node-2': return nodePort(svc, 'node-2');
      case 'LoadBalancer':
      case 'LoadBalancer (eth1)': return { address: lb, port: 80, udpPort: 80, backend: 'hostnames-1' };
      case 'ETP Local node-1': return nodePort(local, 'node-1');
      case 'ETP Local node-2': return nodePort(local, 'node-2');
      case 'no endpoints (ClusterIP)': return { address: empty.spec!.clusterIP!, port: 80, udpPort: 80, backend: '' };
      case 'no endpoints (NodePort)': return nodePort(empty, 'node-1');
      case 'NodePort node-1 (eth1)': return onNode(svc, eth1);
      case 'ETP Local node-1 (eth1)': return onNode(local, eth1);
      case 'no endpoints (NodePort eth1)': return onNode(empty, eth1);
      case 'far NodePort node-1': return onNode(far!, lab.node('node-1').address, 'far-1');
      case 'far NodePort node-1 (eth1)': return onNode(far!, eth1, 'far-1');
    }
  };
  const cells: [Source, Frontend][] = twoUplinks
    ? TWO_UPLINK_CELLS
    : SOURCES.flatMap((source) => FRONTENDS.filter((f) => !(source === 'client' && f.includes('ClusterIP'))).map((f): [Source, Frontend] => [source, f]));
  // The agents program what `applyManifests` wrote within a sync or two: wait until every cell that
  // must work answers once (bounded), so that no cell measures the agents' start-up instead. One that
  // never does is not failed here: its cell below measures and reports it.
  for (const [source, frontend] of cells) {
    if (expect(config, source, frontend).outcome !== 'works') continue;
    const target = targets(frontend);
    await eventually(
      `${source} → ${frontend} to answer once`,
      () => lab.request(sourceNamespace(source), { address: target.address, port: target.port, payload: 'whoami\n', timeoutMs: 1000 }),
      ([r]) => r!.ok,
      { timeoutMs: 15_000, intervalMs: 200 },
    ).catch(() => undefined);
  }
  const out: CellResult[] = [];
  for (const [source, frontend] of cells) {
    const expected = expect(config, source, frontend);
    out.push({ variant, config, xdp, source, frontend, expected, checks: await runCell(lab, source, targets(frontend), expected) });
  }
  return out;
}

async function runCell(lab: Lab, source: Source, target: Target, expected: Expectation): Promise<CellResult['checks']> {
  const ns = sourceNamespace(source);
  if (expected.outcome !== 'works') {
    // The refusal (or silence) must be what both protocols get; no transfer to try.
    const want = expected.outcome === 'refused' ? 'refused' : 'timeout';
    const got = async (protocol: 'TCP' | 'UDP', port: number) => {
      const [r] = await lab.request(ns, { address: target.address, port, protocol, payload: protocol === 'TCP' ? 'whoami\n' : 'whoami', timeoutMs: 2000 });
      return r!.ok ? `answered by ${r!.answer}` : r!.error === want ? 'ok' : r!.error;
    };
    return { whoami: await got('TCP', target.port), download: 'ok', upload: 'ok', udp: await got('UDP', target.udpPort) };
  }
  const peerAddress = expected.peer === 'client' ? addressOf(lab, ns) : lab.node(expected.peer).address;
  const [who] = await lab.request(ns, { address: target.address, port: target.port, payload: 'whoami\n', timeoutMs: 3000 });
  let whoami = who!.ok ? 'ok' : who!.error;
  if (who!.ok) {
    const [pod, peer] = who!.answer.split(' ');
    const host = peer?.slice(0, peer.lastIndexOf(':'));
    if (pod !== target.backend) whoami = `answered by ${pod}`;
    else if (host !== peerAddress) whoami = `peer ${host}, expected ${peerAddress}`;
  }
  const bulk = async (direction: 'download' | 'upload') => {
    const r = await lab.transfer(ns, { address: target.address, port: target.port, direction, bytes: BULK_BYTES, timeoutMs: 30_000 });
    return r.ok ? 'ok' : `${r.error} (${r.message})`;
  };
  const download = await bulk('download');
  const upload = await bulk('upload');
  const payload = 'x'.repeat(UDP_PAYLOAD);
  const echo = async () => (await lab.request(ns, { address: target.address, port: target.udpPort, protocol: 'UDP', payload: `echo ${payload}`, timeoutMs: 3000 }))[0]!;
  let u = await echo();
  const emsgsize = (source === 'node-1' || source === 'node-2') && !u.ok && /EMSGSIZE/.test(u.message);
  if (emsgsize) u = await echo();
  const udp = !u.ok ? `${u.error} (${u.message})` : u.answer !== payload ? `answer of ${u.answer.length} bytes` : emsgsize ? OK_AFTER_PMTU : 'ok';
  return { whoami, download, upload, udp };
}

function addressOf(lab: Lab, ns: string): string {
  if (ns.startsWith('client-')) return lab.status().clients.find((c) => c.name === ns)!.address;
  return lab.pod(ns).address;
}

function nodePortOf(svc: ReturnType<typeof liveService>, protocol: 'TCP' | 'UDP'): number {
  return svc.spec!.ports!.find((p) => (p.protocol ?? 'TCP') === protocol)!.nodePort!;
}

function namedService(name: string, spec: NonNullable<V1Service['spec']>): Manifest {
  return { kind: 'Service', object: { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec } };
}

/** Deployment hostnames: one pod, on node-1, answering TCP and UDP on 9376. */
function backendOnNode1(): Manifest {
  return hostnamesManifest(1, { nodeSelector: { 'kubernetes.io/hostname': 'node-1' } });
}

/** The matrix as a table, one line a cell, for the test output. */
export function formatMatrix(cells: readonly CellResult[]): string {
  const expectation = (c: CellResult) => {
    const e = c.expected;
    return (e.outcome === 'works' ? `works, peer ${e.peer}` : e.outcome) + (knownGap(c.variant, c.source, c.frontend) ? ' (known gap: UDP)' : '');
  };
  const bulk = (c: CellResult, v: string) => (c.expected.outcome === 'works' ? v : '-');
  const rows = cells.map((c) => [c.variant, c.config, c.xdp, c.source, c.frontend, expectation(c), c.checks.whoami, bulk(c, c.checks.download), bulk(c, c.checks.upload), c.checks.udp]);
  const head = ['lab', 'config', 'xdp', 'source', 'frontend', 'expected', 'TCP', '16 MiB down', '16 MiB up', 'UDP 8 KB'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => Math.min(40, r[i]!.length))));
  const line = (r: string[]) => r.map((v, i) => v.slice(0, 40).padEnd(widths[i]!)).join('  ').trimEnd();
  const summary = (label: string, of: readonly CellResult[]) => {
    const failed = of.filter((c) => !cellAsExpected(c)).length;
    const gaps = of.filter((c) => knownGap(c.variant, c.source, c.frontend)).length;
    return `${label}: ${of.length} cells, ${of.length - failed} as expected, ${failed} not${gaps ? `, ${gaps} of them declared known gaps` : ''}`;
  };
  const variants = VARIANTS.filter((v) => cells.some((c) => c.variant === v));
  const perVariant = variants.length > 1 ? variants.map((v) => summary(`  ${v}`, cells.filter((c) => c.variant === v))) : [];
  return [line(head), ...rows.map(line), summary('matrix', cells), ...perVariant].join('\n');
}
