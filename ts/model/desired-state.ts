import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import { categorizeEndpoints, type Categorized } from './categorize.js';
import { checkProxyConfig, selectNodePortAddresses, splitClusterCIDR, type NodeInfo, type ProxyConfig } from './config.js';
import { collectEndpoints, compareEndpoints, portKey, serviceKey, type EndpointInfo } from './endpoints.js';
import { IdAllocator } from './ids.js';
import { compareIPv4Text, isIPv6, parseCidr4, parseIPv4 } from '../util/ip.js';
import { ProblemList, unexpectedProblem, type Problem } from './problems.js';
import { FrontendRefusals, refusedFrontendProblem } from './refusals.js';
import { isProxied, parseService, serviceNamespace, type ServiceInfo, type ServicePortInfo } from './service.js';
import type {
  DesiredBackend,
  DesiredFrontend,
  DesiredHealthCheck,
  DesiredService,
  DesiredState,
  FrontendAction,
  FrontendKind,
  IdState,
  MasqueradeRules,
  Protocol,
  Scope,
  ServicePortRef,
  TrafficPolicy,
} from './types.js';

export interface ModelInput {
  readonly services: readonly V1Service[];
  readonly endpointSlices: readonly V1EndpointSlice[];
  readonly node: NodeInfo;
  readonly config: ProxyConfig;
  /** `ids` of the previous result, so live services and backends keep their numbers. */
  readonly previousIds?: IdState;
}

/** "ns/name:port" as kube-proxy's ServicePortName.String(), plus the protocol. */
export function servicePortName(ref: ServicePortRef): string {
  const port = ref.portName === '' ? '' : `:${ref.portName}`;
  return `${ref.namespace}/${ref.name}${port}/${ref.protocol}`;
}

export function backendKey(address: string, port: number, protocol: Protocol): string {
  // join() makes one flat string; a template literal makes a chain of cons strings, about twice
  // the memory of the key itself, and this key is kept for every backend.
  return [address, ':', port, '/', protocol].join('');
}

export interface GroupDraft {
  readonly key: string;
  readonly service: ServicePortRef;
  readonly scope: Scope;
  readonly trafficPolicy: TrafficPolicy;
  readonly endpoints: readonly EndpointInfo[];
  readonly action: FrontendAction;
  readonly info: ServiceInfo;
  readonly categorized: Categorized;
  readonly internalKey: string | null;
}

export interface FrontendDraft {
  readonly kind: FrontendKind;
  readonly address: string;
  readonly port: number;
  readonly group: GroupDraft;
}

export interface BackendDraft {
  readonly address: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly nodeName: string | null;
  readonly local: boolean;
}

/**
 * The desired dataplane state for one node, from Services, EndpointSlices, the node and the
 * config: a pure function following kube-proxy rule by rule (see docs/model.md). Never throws on
 * bad cluster input: what cannot be used is reported in `problems` and left out. Output arrays
 * are sorted, so equal inputs (in any order) give deeply equal results.
 */
export function computeDesiredState(input: ModelInput): DesiredState {
  const { node, config } = input;
  const problems = new ProblemList();
  for (const problem of nodeAndConfigProblems(node, config)) problems.add(problem);
  const nodePortAddresses = selectNodePortAddresses(node, config);
  const masqueradeRules = masqueradeRulesOf(config);

  const endpointsByService = collectEndpoints(input.endpointSlices, node.name, problems);
  const groups = new Map<string, GroupDraft>();
  const frontends: FrontendDraft[] = [];
  const backends = new Map<string, BackendDraft>();
  const healthChecks: DesiredHealthCheck[] = [];

  for (const service of uniqueServices(input.services, problems)) {
    // Each Service is computed apart and only then added: an exception (input the source's
    // admission check should have refused, or a bug) is that Service's problem and leaves no half.
    let part: ServicePart | undefined;
    let own = new ProblemList();
    try {
      part = servicePart(service, endpointsByService, node, config, own);
    } catch (e) {
      // Only the exception is said (what was found before it may be its consequence).
      own = new ProblemList();
      own.add(unexpectedProblem('Service', serviceNamespace(service), service.metadata?.name, e));
      part = undefined;
    }
    for (const p of own.sorted()) problems.add(p);
    if (part === undefined) continue;
    for (const [ep, protocol] of part.backends) addBackend(backends, ep, protocol);
    for (const group of part.groups) groups.set(group.key, group);
    frontends.push(...part.frontends);
    if (part.healthCheck !== null) healthChecks.push(part.healthCheck);
  }

  const refusals = new FrontendRefusals(node, config, nodePortAddresses);
  for (const frontend of frontends) refusals.frontend(frontend, 1);
  for (const check of healthChecks) refusals.healthCheck(check, 1);
  const kept = resolveFrontendConflicts(frontends, refusals, problems);
  // An external group whose every frontend lost a conflict has nothing left to serve.
  const liveGroups = [...groups.values()].filter(
    (group) => group.scope === 'internal' || kept.some((frontend) => frontend.group === group),
  );

  const serviceIds = IdAllocator.from(input.previousIds?.services);
  for (const key of serviceIds.sync(liveGroups.map((group) => group.key)).exhausted) {
    problems.add({ kind: 'Config', namespace: '', name: 'service ids', reason: `no service id left for ${key}` });
  }
  const backendIds = IdAllocator.from(input.previousIds?.backends);
  for (const key of backendIds.sync(backends.keys()).exhausted) {
    problems.add({ kind: 'Config', namespace: '', name: 'backend ids', reason: `no backend id left for ${key}` });
  }

  const desiredServices = liveGroups
    .filter((group) => serviceIds.get(group.key) !== undefined)
    .map((group) => toDesiredService(group, serviceIds, backendIds))
    .sort((a, b) => compareText(a.key, b.key));
  const desiredFrontends = kept
    .filter((frontend) => serviceIds.get(frontend.group.key) !== undefined)
    .map((frontend) => toDesiredFrontend(frontend, serviceIds.get(frontend.group.key)!, masqueradeRules))
    .sort(compareFrontends);
  const desiredBackends: DesiredBackend[] = [...backends]
    .filter(([key]) => backendIds.get(key) !== undefined)
    .map(([key, draft]) => ({ id: backendIds.get(key)!, key, ...draft }))
    .sort(compareBackends);

  return {
    frontends: desiredFrontends,
    services: desiredServices,
    backends: desiredBackends,
    healthChecks: uniqueHealthChecks(healthChecks, problems),
    nodePortAddresses,
    problems: problems.sorted(),
    ids: { services: serviceIds.snapshot(), backends: backendIds.snapshot() },
  };
}

interface ServicePart {
  readonly backends: [EndpointInfo, Protocol][];
  readonly groups: GroupDraft[];
  readonly frontends: FrontendDraft[];
  readonly healthCheck: DesiredHealthCheck | null;
}

/** What one Service adds to the state (undefined: nothing, not proxied or unusable). */
function servicePart(
  service: V1Service,
  endpointsByService: ReadonlyMap<string, ReadonlyMap<string, EndpointInfo[]>>,
  node: NodeInfo,
  config: ProxyConfig,
  problems: ProblemList,
): ServicePart | undefined {
  if (!isProxied(service, config.proxyName).proxied) return undefined;
  const info = parseService(service, problems);
  if (info === undefined) return undefined;
  const serviceEndpoints = endpointsByService.get(serviceKey(info.namespace, info.name)) ?? new Map<string, EndpointInfo[]>();
  const part: ServicePart = { backends: [], groups: [], frontends: [], healthCheck: null };
  for (const port of info.ports) {
    const endpoints = serviceEndpoints.get(portKey(port.ref.portName, port.ref.protocol)) ?? [];
    for (const ep of endpoints) part.backends.push([ep, port.ref.protocol]);
    const drafts = groupsForPort(info, port, endpoints, node);
    for (const group of [drafts.internal, drafts.external]) if (group !== null) part.groups.push(group);
    part.frontends.push(...frontendsForPort(info, port, drafts.internal, drafts.external));
  }
  const healthCheck =
    info.healthCheckNodePort === null
      ? null
      : { port: info.healthCheckNodePort, namespace: info.namespace, name: info.name, localEndpoints: localReadyIPs(serviceEndpoints) };
  return { ...part, healthCheck };
}

/** What is wrong with the node or the config, whatever the Services. */
export function nodeAndConfigProblems(node: NodeInfo, config: ProxyConfig): Problem[] {
  const problems = [...checkProxyConfig(config)];
  for (const address of node.addresses) {
    if (parseIPv4(address) === undefined) {
      problems.push({
        kind: 'Node',
        namespace: '',
        name: node.name,
        reason: isIPv6(address) ? `address ${address} skipped: IPv6 is not supported yet` : `address ${JSON.stringify(address)} is not an IP address`,
      });
    }
  }
  return problems;
}

export function masqueradeRulesOf(config: ProxyConfig): MasqueradeRules {
  const detectLocal = splitClusterCIDR(config.clusterCIDR).some((cidr) => parseCidr4(cidr) !== undefined);
  return { clusterIP: config.masqueradeAll ? 'all' : detectLocal ? 'outsideClusterCIDR' : 'none', detectLocal };
}

export function duplicateServiceProblem(copy: V1Service): Problem {
  return {
    kind: 'Service',
    namespace: serviceNamespace(copy),
    name: copy.metadata?.name ?? '',
    reason: 'Service listed more than once; all copies ignored',
  };
}

/** Services sorted by namespace/name; a name listed twice is ambiguous, so neither copy is used. */
function uniqueServices(services: readonly V1Service[], problems: ProblemList): V1Service[] {
  const byKey = new Map<string, V1Service[]>();
  for (const service of services) {
    const key = serviceKey(serviceNamespace(service), service.metadata?.name ?? '');
    byKey.set(key, [...(byKey.get(key) ?? []), service]);
  }
  const unique: V1Service[] = [];
  for (const key of [...byKey.keys()].sort(compareText)) {
    const copies = byKey.get(key)!;
    if (copies.length === 1) {
      unique.push(copies[0]!);
    } else {
      problems.add(duplicateServiceProblem(copies[0]!));
    }
  }
  return unique;
}

export function addBackend(backends: Map<string, BackendDraft>, ep: EndpointInfo, protocol: Protocol): void {
  const key = backendKey(ep.address, ep.port, protocol);
  const existing = backends.get(key);
  // The same ip:port can appear under several Services; a local claim wins, as in kube-proxy.
  if (existing === undefined || (ep.local && !existing.local)) {
    backends.set(key, { address: ep.address, port: ep.port, protocol, nodeName: ep.nodeName, local: ep.local });
  }
}

export function groupsForPort(
  info: ServiceInfo,
  port: ServicePortInfo,
  endpoints: readonly EndpointInfo[],
  node: NodeInfo,
): { internal: GroupDraft; external: GroupDraft | null } {
  // kube-proxy's ExternallyAccessible / UsesClusterEndpoints / UsesLocalEndpoints.
  const externallyAccessible = port.nodePort !== 0 || info.loadBalancerIPs.length > 0 || info.externalIPs.length > 0;
  const categorized = categorizeEndpoints(endpoints, {
    usesClusterEndpoints: !info.internalPolicyLocal || (externallyAccessible && !info.externalPolicyLocal),
    usesLocalEndpoints: info.internalPolicyLocal || (externallyAccessible && info.externalPolicyLocal),
    nodeName: node.name,
    zone: node.zone ?? '',
  });
  const name = servicePortName(port.ref);
  const make = (scope: Scope, local: boolean, internalKey: string | null): GroupDraft => {
    const chosen = local ? categorized.local : categorized.cluster;
    return {
      key: `${name}#${scope}`,
      service: port.ref,
      scope,
      trafficPolicy: local ? 'Local' : 'Cluster',
      endpoints: chosen,
      action: !categorized.hasAnyEndpoints ? 'reject' : chosen.length === 0 ? 'drop' : 'forward',
      info,
      categorized,
      internalKey,
    };
  };
  const internal = make('internal', info.internalPolicyLocal, null);
  const external = externallyAccessible
    ? make('external', info.externalPolicyLocal, info.externalPolicyLocal ? internal.key : null)
    : null;
  return { internal, external };
}

export function frontendsForPort(
  info: ServiceInfo,
  port: ServicePortInfo,
  internal: GroupDraft,
  external: GroupDraft | null,
): FrontendDraft[] {
  const drafts: FrontendDraft[] = info.clusterIPs.map((address) => ({
    kind: 'ClusterIP',
    address,
    port: port.port,
    group: internal,
  }));
  if (external === null) return drafts;
  for (const address of info.externalIPs) drafts.push({ kind: 'ExternalIP', address, port: port.port, group: external });
  for (const address of info.loadBalancerIPs) drafts.push({ kind: 'LoadBalancer', address, port: port.port, group: external });
  if (port.nodePort !== 0) drafts.push({ kind: 'NodePort', address: '0.0.0.0', port: port.nodePort, group: external });
  return drafts;
}

/**
 * Two service ports claiming the same address:port/protocol (a shared externalIP, a hand-written
 * duplicate ClusterIP) cannot both own a map key. kube-proxy's winner depends on map iteration
 * order; ours is decided as the API server would have allocated them (orderFrontendClaims), and
 * the others are reported. Frontends no one may have (refusals.ts) are reported and never win.
 */
function resolveFrontendConflicts(frontends: readonly FrontendDraft[], refusals: FrontendRefusals, problems: ProblemList): FrontendDraft[] {
  const byKey = new Map<string, FrontendDraft[]>();
  for (const frontend of frontends) {
    const key = frontendClaimKey(frontend);
    byKey.set(key, [...(byKey.get(key) ?? []), frontend]);
  }
  const kept: FrontendDraft[] = [];
  for (const [key, claims] of byKey) {
    const decided = decideFrontendClaims(key, claims, refusals);
    if (decided.winner !== undefined) kept.push(decided.winner);
    for (const p of decided.problems) problems.add(p);
  }
  return kept;
}

/** One claim key's winner, if any, and what its other claims are told. */
export function decideFrontendClaims(
  key: string,
  claims: readonly FrontendDraft[],
  refusals: FrontendRefusals,
): { winner: FrontendDraft | undefined; problems: Problem[] } {
  const problems: Problem[] = [];
  const eligible: FrontendDraft[] = [];
  for (const claim of claims) {
    const reason = refusals.refusal(claim);
    if (reason === undefined) eligible.push(claim);
    else problems.push(refusedFrontendProblem(key, claim, reason));
  }
  const ordered = orderFrontendClaims(eligible);
  const winner = ordered[0];
  for (const loser of ordered.slice(1)) problems.push(frontendConflictProblem(key, loser, winner!));
  return { winner, problems };
}

/** address:port/protocol: what two frontends must not share. */
export function frontendClaimKey(frontend: FrontendDraft): string {
  return `${frontend.address}:${frontend.port}/${frontend.group.service.protocol}`;
}

/**
 * Claims on one frontend key, the winner first, as the API server would have allocated them: the
 * addresses and ports it allocates (ClusterIPs, nodePorts) before those anyone may write
 * (externalIPs, LoadBalancer ingress IPs), so that nobody takes another Service's ClusterIP; then
 * the older Service (creationTimestamp, then uid). The name only breaks ties between objects that
 * carry neither (hand-written files), so that the result stays deterministic.
 */
export function orderFrontendClaims(claims: readonly FrontendDraft[]): FrontendDraft[] {
  return [...claims].sort((a, b) => {
    const ai = a.group.info;
    const bi = b.group.info;
    return (
      CLAIM_RANK[a.kind] - CLAIM_RANK[b.kind] ||
      (ai.createdAt === bi.createdAt ? 0 : ai.createdAt < bi.createdAt ? -1 : 1) ||
      compareText(ai.uid, bi.uid) ||
      compareText(servicePortName(a.group.service), servicePortName(b.group.service)) ||
      compareText(a.kind, b.kind)
    );
  });
}

/** Allocated by the API server (unique by construction) before written by users. */
const CLAIM_RANK: Record<FrontendKind, number> = { ClusterIP: 0, NodePort: 0, LoadBalancer: 1, ExternalIP: 1 };

export function frontendConflictProblem(key: string, loser: FrontendDraft, winner: FrontendDraft): Problem {
  const ref = loser.group.service;
  return {
    kind: 'Service',
    namespace: ref.namespace,
    name: ref.name,
    port: ref.portName === '' ? String(loser.port) : ref.portName,
    reason: `${loser.kind} frontend ${key} is already used by ${servicePortName(winner.group.service)}; ignored`,
  };
}

export function toDesiredService(group: GroupDraft, serviceIds: IdAllocator, backendIds: IdAllocator): DesiredService {
  return {
    id: serviceIds.get(group.key)!,
    key: group.key,
    service: group.service,
    scope: group.scope,
    trafficPolicy: group.trafficPolicy,
    backends: group.endpoints.flatMap((ep) => {
      const id = backendIds.get(backendKey(ep.address, ep.port, group.service.protocol));
      return id === undefined ? [] : [id];
    }),
    action: group.action,
    maglev: group.scope === 'external',
    sessionAffinity: group.info.sessionAffinity,
    topologyMode: group.categorized.topologyMode,
    shortCircuitServiceId: group.internalKey === null ? null : (serviceIds.get(group.internalKey) ?? null),
  };
}

export function toDesiredFrontend(frontend: FrontendDraft, serviceId: number, masquerade: MasqueradeRules): DesiredFrontend {
  const { group, kind, address, port } = frontend;
  const { info, categorized } = group;
  const external = kind !== 'ClusterIP';
  return {
    key: `${kind} ${address}:${port}/${group.service.protocol}`,
    kind,
    address,
    port,
    protocol: group.service.protocol,
    service: group.service,
    serviceId,
    trafficPolicy: group.trafficPolicy,
    externalTrafficPolicy: info.externalPolicyLocal ? 'Local' : 'Cluster',
    internalTrafficPolicy: info.internalPolicyLocal ? 'Local' : 'Cluster',
    sessionAffinity: info.sessionAffinity,
    loadBalancerSourceRanges: kind === 'LoadBalancer' ? [...info.loadBalancerSourceRanges].sort(compareText) : [],
    clusterEndpoints: categorized.cluster.map((ep) => ep.key),
    localEndpoints: categorized.local.map((ep) => ep.key),
    action: group.action,
    masquerade: !external ? masquerade.clusterIP : info.externalPolicyLocal ? 'none' : 'otherNodes',
    // External frontends need it only under ETP Local (cluster sources then reach every endpoint);
    // under ETP Cluster every source already does.
    detectLocal: masquerade.detectLocal && (!external || info.externalPolicyLocal),
    maglev: external,
    healthCheckNodePort: info.healthCheckNodePort,
  };
}

/**
 * kube-proxy's LocalReadyEndpoints: distinct IPs (not ip:port) of ready endpoints on this node
 * over all ports of the Service. Terminating endpoints are not ready, so they count 0 → 503.
 */
export function localReadyIPs(serviceEndpoints: ReadonlyMap<string, readonly EndpointInfo[]>): number {
  const ips = new Set<string>();
  for (const endpoints of serviceEndpoints.values()) {
    for (const ep of endpoints) if (ep.local && ep.ready) ips.add(ep.address);
  }
  return ips.size;
}

function uniqueHealthChecks(checks: readonly DesiredHealthCheck[], problems: ProblemList): DesiredHealthCheck[] {
  const sorted = [...checks].sort(compareHealthChecks);
  return sorted.filter((check, index) => {
    const previous = sorted[index - 1];
    if (previous === undefined || previous.port !== check.port) return true;
    problems.add(healthCheckConflictProblem(check, previous));
    return false;
  });
}

/** By port, then by Service: on a shared port the first one serves. */
export function compareHealthChecks(a: DesiredHealthCheck, b: DesiredHealthCheck): number {
  return a.port - b.port || compareText(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`);
}

export function healthCheckConflictProblem(check: DesiredHealthCheck, winner: DesiredHealthCheck): Problem {
  return {
    kind: 'Service',
    namespace: check.namespace,
    name: check.name,
    reason: `healthCheckNodePort ${check.port} is already used by ${winner.namespace}/${winner.name}; no health check served`,
  };
}

export function compareBackends(a: DesiredBackend, b: DesiredBackend): number {
  return compareEndpoints(a, b) || compareText(a.protocol, b.protocol);
}

const KIND_ORDER: Record<FrontendKind, number> = { ClusterIP: 0, ExternalIP: 1, LoadBalancer: 2, NodePort: 3 };

export function compareFrontends(a: DesiredFrontend, b: DesiredFrontend): number {
  return (
    KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
    compareIPv4Text(a.address, b.address) ||
    a.port - b.port ||
    compareText(a.protocol, b.protocol)
  );
}

export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
