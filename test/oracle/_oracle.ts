/**
 * The upstream oracle's machinery: the recorded kube-proxy cases (packet-flow-cases.json, from
 * hack/record-packet-flow-cases.sh), their addresses moved into the lab's 198.18.0.0/15, and each
 * case run through bpfproxy the way the agent runs: its config code (resolveAgentConfig,
 * datapathConfigFor), its node view (slimNode, nodeInfoFrom), the model to entries, the reconciler
 * into a loaded datapath's maps, and `bpfproxy explain`'s engine over those maps.
 */
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';

import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

import type { DatapathConfig } from '../../ts/abi/config.js';
import { resolveAgentConfig, type AgentConfig } from '../../ts/agent/config.js';
import { datapathConfigFor } from '../../ts/agent/datapath-config.js';
import { nodeInfoFrom } from '../../ts/agent/node-info.js';
import { explainSettings } from '../../ts/cli/explain.js';
import { computeEntries } from '../../ts/dataplane/entries.js';
import type { Reconciler } from '../../ts/dataplane/reconciler.js';
import { explainPacket, type Explanation, type Ingress } from '../../ts/explain/explain.js';
import type { MapReader, NodeSettings } from '../../ts/explain/map-reader.js';
import { formatIPv4, IncrementalModel, maskOf, parseCidr4, parseIPv4, type NodeInfo } from '../../ts/model/index.js';
import { slim } from '../../ts/sources/slim.js';

// ---- the recorded file ----------------------------------------------------------------------

export interface Scenario {
  id: string;
  from: string[];
  nodeName: string;
  nodeIP: string;
  nodeIPs: string[];
  settings: {
    ipFamily: 'IPv4' | 'IPv6';
    masqueradeAll: boolean;
    /** kube-proxy's local-traffic detector as an iptables match (["-s", CIDR]); null: none. */
    localDetector: string[] | null;
    nodePortMatchAll: boolean;
    nodePortIPs: string[];
  };
  backendSettings: Record<string, { localhostNodePorts?: boolean; serviceCIDRs?: string }[]>;
  services: V1Service[];
  endpointSlices: V1EndpointSlice[];
}

export interface Case {
  id: string;
  scenario: string;
  sourceIP: string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  destIP: string;
  destPort: number;
  /** "ip:port, ip:port", or DROP, REJECT, ACCEPT, or "" (no rule matched). */
  output: string;
  masq: boolean;
  backends: string[];
  names: string[];
}

export function loadRecorded(): { kubernetes: string; scenarios: Map<string, Scenario>; cases: Case[] } {
  const file = JSON.parse(readFileSync(new URL('./packet-flow-cases.json', import.meta.url), 'utf8')) as {
    kubernetes: string;
    scenarios: Scenario[];
    cases: Case[];
  };
  return { kubernetes: file.kubernetes, scenarios: new Map(file.scenarios.map((s) => [s.id, s])), cases: file.cases };
}

// ---- addresses --------------------------------------------------------------------------------

/**
 * Upstream's addresses → the lab plan (shared/reference/lab.md: nodes 198.18.0.x, pods
 * 198.18.128.0/17, Services 198.19.0.0/16 with load balancer addresses at its top). Blocks keep
 * their host bits, so every CIDR inside a block keeps its members (203.0.113.0/25 still holds .2
 * and not .130); blocks are disjoint on both sides. Nothing is ever sent to an upstream address.
 */
const BLOCKS: [from: string, to: string][] = [
  ['192.168.0.0/17', '198.18.0.0/17'], // the node's subnets (node addresses, its external IP)
  ['10.0.0.0/18', '198.18.128.0/18'], // pods (10.0.0.0/8, the cluster CIDR) …
  ['10.180.0.0/18', '198.18.192.0/18'], // … and endpoints
  ['172.30.0.0/17', '198.19.0.0/17'], // ClusterIPs
  ['203.0.113.0/24', '198.19.200.0/24'], // outside clients
  ['1.2.3.4/32', '198.19.255.1/32'], // load balancer and external IPs
  ['5.6.7.8/32', '198.19.255.2/32'],
  ['9.10.11.12/32', '198.19.255.3/32'],
];
/** CIDRs wider than a block: the cluster CIDR and nftables' service CIDR (each holds exactly the blocks above it maps to). */
const CIDR_ALIASES: Record<string, string> = { '10.0.0.0/8': '198.18.128.0/17', '172.30.0.0/16': '198.19.0.0/17' };

const blocks = BLOCKS.map(([from, to]) => ({ from: parseCidr4(from)!, to: parseCidr4(to)! }));

/** An upstream IPv4 address in the lab; throws for one outside the plan (add a block). */
export function labAddress(ip: string): string {
  const n = parseIPv4(ip);
  if (n === undefined) throw new Error(`'${ip}' is not IPv4`);
  for (const { from, to } of blocks) {
    if (from.prefix === to.prefix && ((n & maskOf(from.prefix)) >>> 0) === from.base) {
      return formatIPv4((to.base | (n & ~maskOf(from.prefix))) >>> 0);
    }
  }
  throw new Error(`upstream address ${ip} has no lab block: add one to BLOCKS`);
}

export function labCidr(cidr: string): string {
  const alias = CIDR_ALIASES[cidr];
  if (alias) return alias;
  const c = parseCidr4(cidr);
  if (!c) throw new Error(`'${cidr}' is not an IPv4 CIDR`);
  const inside = blocks.find(({ from }) => from.prefix <= c.prefix && ((c.base & maskOf(from.prefix)) >>> 0) === from.base);
  if (!inside) throw new Error(`upstream CIDR ${cidr} is not inside one lab block: add a block or an alias`);
  return `${labAddress(formatIPv4(c.base))}/${c.prefix}`;
}

const isLoopback = (ip: string) => ip.startsWith('127.') || ip === '::1';

/** Every IPv4 address or CIDR string in an object moved into the lab (IPv6 ones are kept: the model sets them aside). */
function translateObject<T>(o: T): T {
  return JSON.parse(JSON.stringify(o), (_k, v: unknown) => {
    if (typeof v !== 'string') return v;
    // Spaces around a value are kept: upstream tests that they are tolerated (" 203.0.113.0/25").
    const [, pre, text, post] = /^(\s*)(.*?)(\s*)$/.exec(v)!;
    if (isIPv4(text!)) return pre + labAddress(text!) + post;
    if (/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(text!)) return pre + labCidr(text!) + post;
    return v;
  }) as T;
}

// ---- a scenario as the agent would run it ---------------------------------------------------

export interface Prepared {
  agent: AgentConfig;
  node: NodeInfo;
  nodeIp: string;
  /** What the agent loads the programs with (rodata, the cluster CIDR set). */
  datapath: DatapathConfig;
  settings: NodeSettings;
  services: V1Service[];
  endpointSlices: V1EndpointSlice[];
}

export class Untranslatable extends Error {}

/** The agent's configuration, node view and objects for a scenario; Untranslatable for IPv6 ones. */
export function prepare(s: Scenario): Prepared {
  if (s.settings.ipFamily !== 'IPv4') throw new Untranslatable('IPv6 (the datapath is IPv4 only)');
  const detector = s.settings.localDetector;
  let clusterCIDR: string | undefined;
  if (detector) {
    if (detector.length !== 2 || detector[0] !== '-s') throw new Error(`local detector ${detector.join(' ')}: only detect-local by cluster CIDR is translated`);
    clusterCIDR = labCidr(detector[1]!);
  }
  const nodeIPs = s.nodeIPs.filter((ip) => isIPv4(ip) && !isLoopback(ip)).map(labAddress);
  const nodePortIPs = s.settings.nodePortIPs.filter((ip) => isIPv4(ip) && !isLoopback(ip)).map(labAddress);
  // kube-proxy's resolved node-port addresses as /32s; only localhost: a CIDR no node address is in.
  const nodePortAddresses = s.settings.nodePortMatchAll ? undefined : nodePortIPs.length > 0 ? nodePortIPs.map((ip) => `${ip}/32`) : ['127.0.0.1/32'];
  const agent = resolveAgentConfig(
    {
      ...(clusterCIDR !== undefined && { clusterCIDR }),
      masqueradeAll: s.settings.masqueradeAll,
      ...(nodePortAddresses && { nodePortAddresses }),
    },
    {},
    s.nodeName,
  );
  const nodeObject: V1Node = {
    metadata: { name: s.nodeName },
    status: { addresses: nodeIPs.map((address) => ({ type: 'InternalIP', address })) },
  };
  const nodeIp = labAddress(s.nodeIP);
  const node = nodeInfoFrom(slim('Node', nodeObject), s.nodeName, [nodeIp]).info;
  const datapath = datapathConfigFor(agent, nodeIp).config;
  return {
    agent,
    node,
    nodeIp,
    datapath,
    // The hooks the agent attaches: tc_host_egress only on a service device (bpfproxy0 unless turned off), tc_lo_egress always, XDP unless off.
    settings: { ...explainSettings(datapath), hooks: { hostEgress: agent.serviceInterface !== '', loEgress: true, xdp: agent.xdpMode !== 'off' } },
    services: s.services.map((o) => slim('Service', translateObject(o))),
    endpointSlices: s.endpointSlices.map((o) => slim('EndpointSlice', translateObject(o))),
  };
}

/** A full sync, as the agent's syncer does it: the model of the objects, its entries, the reconciler. */
export function sync(reconciler: Reconciler, p: Prepared): string[] {
  const model = IncrementalModel.build({ services: p.services, endpointSlices: p.endpointSlices, node: p.node, config: p.agent.proxy });
  const result = reconciler.apply(computeEntries(model.state({ cache: false }), p.agent.proxy.maglevTableSize));
  return result.failures.map((f) => JSON.stringify(f));
}

// ---- one packet ------------------------------------------------------------------------------

/** What happens to a new flow, in the oracle's terms. */
export interface Outcome {
  /** Endpoints (lab addresses, sorted), or what happens instead. */
  to: string[] | 'DROP' | 'REJECT' | 'UNTOUCHED';
  /** Whether the source is rewritten; 'mixed' when it depends on the endpoint chosen. */
  masq: 'yes' | 'no' | 'mixed' | 'n/a';
  /** bpfproxy only: the endpoints reached with the client's address kept. */
  unmasqueraded?: string[];
}

export function expectedOutcome(c: Case): Outcome {
  if (c.output === 'DROP' || c.output === 'REJECT') return { to: c.output, masq: 'n/a' };
  // ACCEPT: a filter rule lets the packet in untranslated (a health-check NodePort); "": no rule.
  if (c.output === 'ACCEPT' || c.output === '') return { to: 'UNTOUCHED', masq: 'n/a' };
  const to = c.output.split(', ').map((ep) => {
    const i = ep.lastIndexOf(':');
    return `${labAddress(ep.slice(0, i))}:${ep.slice(i + 1)}`;
  });
  return { to: [...new Set(to)].sort(), masq: c.masq ? 'yes' : 'no' };
}

/** How a source reaches this node. */
export type Source = 'pod' | 'other-node pod' | 'node' | 'outside';

/**
 * The sources a case's source address stands for. Upstream's rules see only the address: one in
 * the cluster CIDR is a pod, of this node or (for NodePorts, load balancer and external IPs) of
 * another node, and both must get upstream's answer; a node address is the node itself.
 */
export function sourcesOf(s: Scenario, c: Case): Source[] {
  // A load balancer address as source is the node's own packet SNATed to it (upstream's "same node
  // to LB, SNATted to LB" cases: a cloud load balancer's hairpin).
  const lbIPs = s.services.flatMap((svc) => svc.status?.loadBalancer?.ingress?.map((i) => i.ip) ?? []);
  if (s.nodeIPs.includes(c.sourceIP) || lbIPs.includes(c.sourceIP)) return ['node'];
  if (c.sourceIP.startsWith('10.')) { // upstream's pod CIDR, 10.0.0.0/8, with or without a detector
    const toClusterIP = s.services.some((svc) => svc.spec?.clusterIP === c.destIP);
    return toClusterIP ? ['pod'] : ['pod', 'other-node pod'];
  }
  return ['outside'];
}

export function untranslatable(s: Scenario, c: Case): string | undefined {
  if (s.settings.ipFamily !== 'IPv4' || !isIPv4(c.sourceIP) || !isIPv4(c.destIP)) return 'IPv6 (the datapath is IPv4 only)';
  if (c.protocol === 'SCTP') return 'SCTP (the datapath translates TCP and UDP)';
  if (isLoopback(c.sourceIP) || isLoopback(c.destIP)) return 'localhost NodePorts (route_localnet; bpfproxy does not serve 127.0.0.1)';
  return undefined;
}

/** Which hook sees the packet first, as the agent attaches them; null: none (the stack alone). */
export function ingressOf(source: Source, c: Case, p: Prepared): Ingress | null {
  if (source === 'pod') return 'pod';
  if (source === 'other-node pod' || source === 'outside') return 'uplink';
  // The node's own packets meet tc_host_egress on the service device, where the agent routes service
  // addresses, or tc_lo_egress when sent to one of its own addresses (explain tells the two apart,
  // and knows whether each is attached).
  return 'host';
}

/** Caches Maglev tables: a case samples many flows of one table. */
export function cachingReader(r: MapReader): MapReader {
  const tables = new Map<number, Uint32Array | null>();
  return {
    ...r,
    maglevTable: (id) => {
      if (!tables.has(id)) tables.set(id, r.maglevTable(id));
      return tables.get(id)!;
    },
  };
}

/** Client ports to sample when one flow's answer is one Maglev entry (external traffic). */
const SAMPLE_PORTS = Array.from({ length: 128 }, (_, i) => 40000 + i * 7);

export function runCase(maps: MapReader, p: Prepared, c: Case, ingress: Ingress | null): { outcome: Outcome; explanations: Explanation[] } {
  if (ingress === null) return { outcome: { to: 'UNTOUCHED', masq: 'n/a' }, explanations: [] };
  const src = labAddress(c.sourceIP);
  const base = { src, dst: labAddress(c.destIP), dport: c.destPort, proto: c.protocol.toLowerCase() as 'tcp' | 'udp', ingress };
  const first = explainPacket(maps, p.settings, { ...base, sport: SAMPLE_PORTS[0]! });
  const maglev = first.steps.some((st) => st.id === 'backend' && st.data?.method === 'maglev');
  const explanations = maglev ? [first, ...SAMPLE_PORTS.slice(1).map((sport) => explainPacket(maps, p.settings, { ...base, sport }))] : [first];
  const verdicts = new Set(explanations.map((e) => e.verdict));
  if (verdicts.size !== 1) throw new Error(`case ${c.id}: flows of one packet disagree (${[...verdicts].join(', ')})`);
  const v = first.verdict;
  if (v === 'drop') return { outcome: { to: 'DROP', masq: 'n/a' }, explanations };
  if (v === 'reject') return { outcome: { to: 'REJECT', masq: 'n/a' }, explanations };
  if (v === 'pass') return { outcome: { to: 'UNTOUCHED', masq: 'n/a' }, explanations };
  const translations = explanations.flatMap((e) => (e.outcomes ? e.outcomes.map((o) => o.translated) : [e.translated!]));
  const to = [...new Set(translations.map((t) => `${t.dst}:${t.dport}`))].sort();
  const snat = new Set(translations.map((t) => t.src !== src));
  const unmasqueraded = [...new Set(translations.filter((t) => t.src === src).map((t) => `${t.dst}:${t.dport}`))].sort();
  return { outcome: { to, masq: snat.size > 1 ? 'mixed' : snat.has(true) ? 'yes' : 'no', unmasqueraded }, explanations };
}

export function sameOutcome(a: Outcome, b: Outcome): boolean {
  if (Array.isArray(a.to) !== Array.isArray(b.to)) return false;
  if (!Array.isArray(a.to)) return a.to === b.to;
  // Which endpoints keep the client is known for bpfproxy's answers (explain, real traffic) only.
  const kept = a.unmasqueraded && b.unmasqueraded ? a.unmasqueraded.join() === b.unmasqueraded.join() : true;
  return JSON.stringify(a.to) === JSON.stringify(b.to) && a.masq === b.masq && kept;
}

export const formatOutcome = (o: Outcome) => (Array.isArray(o.to) ? `${o.to.join(', ')} masq=${o.masq}` : o.to);

// ---- what a case is about ---------------------------------------------------------------------

export type FrontendKind = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalIP';

/** The Service port a case's packet is addressed to (upstream addresses), if any. */
export function frontendOf(s: Scenario, c: Case): { kind: FrontendKind; service: V1Service } | undefined {
  for (const service of s.services) {
    const spec = service.spec ?? {};
    for (const port of spec.ports ?? []) {
      if ((port.protocol ?? 'TCP') !== c.protocol) continue;
      if (port.port === c.destPort) {
        if (spec.clusterIP === c.destIP) return { kind: 'ClusterIP', service };
        if (service.status?.loadBalancer?.ingress?.some((i) => i.ip === c.destIP)) return { kind: 'LoadBalancer', service };
        if (spec.externalIPs?.includes(c.destIP)) return { kind: 'ExternalIP', service };
      }
      if (port.nodePort === c.destPort && s.settings.nodePortIPs.includes(c.destIP)) return { kind: 'NodePort', service };
    }
  }
  return undefined;
}

/** The endpoints (lab address:port) on this scenario's node. */
export function localEndpoints(s: Scenario): Set<string> {
  const local = new Set<string>();
  for (const slice of s.endpointSlices) {
    for (const ep of slice.endpoints) {
      if (ep.nodeName !== s.nodeName) continue;
      for (const a of ep.addresses) if (isIPv4(a)) for (const p of slice.ports ?? []) local.add(`${labAddress(a)}:${p.port}`);
    }
  }
  return local;
}
