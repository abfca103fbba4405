/**
 * The per-service-port view both kube-proxy layouts are written from, taken from the model
 * (computeDesiredState) so that bpfproxy and the baselines agree on which Services are proxied,
 * which endpoints are usable (ready / serving+terminating, topology, Local policies), which
 * frontends exist and what is rejected or dropped. Only kube-proxy's presentation differs:
 * endpoints ordered by their "ip:port" string (kube-proxy's byEndpoint sort, endpointslicecache.go)
 * and service ports ordered by name (kube-proxy walks a Go map, i.e. randomly; a fixed order lets a
 * benchmark know which Service is matched last).
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import {
  collectEndpoints,
  computeDesiredState,
  splitClusterCIDR,
  cidrContains,
  parseCidr4,
  parseIPv4,
  type DesiredFrontend,
  type DesiredState,
  type NodeInfo,
  type ProxyConfig,
  type ServicePortRef,
} from '../model/index.js';
import { ProblemList } from '../model/problems.js';

export interface BaselineInput {
  services: V1Service[];
  endpointSlices: V1EndpointSlice[];
  /** The node the rules are generated for (as computeDesiredState takes it). */
  node: NodeInfo;
  config: ProxyConfig;
}

export interface Endpoint {
  /** "ip:port", kube-proxy's Endpoint.String(). */
  readonly key: string;
  readonly ip: string;
  readonly port: number;
}

/** One kube-proxy ServicePort (svcPortMap entry), IPv4 only. */
export interface ServicePortView {
  readonly ref: ServicePortRef;
  /** "ns/name" or "ns/name:port": kube-proxy's ServicePortName.String(). */
  readonly name: string;
  /** "tcp" | "udp" | "sctp": kube-proxy lowercases the protocol for hashes and rules. */
  readonly protocol: string;
  readonly clusterIPs: readonly string[];
  readonly port: number;
  /** 0 when none. */
  readonly nodePort: number;
  readonly externalIPs: readonly string[];
  readonly loadBalancerIPs: readonly string[];
  readonly loadBalancerSourceRanges: readonly string[];
  readonly affinitySeconds: number | null;
  readonly externalPolicyLocal: boolean;
  readonly internalPolicyLocal: boolean;
  readonly healthCheckNodePort: number;
  /** ExternallyAccessible(): a node port, external IPs or LoadBalancer IPs. */
  readonly externallyAccessible: boolean;
  /** Any usable endpoint anywhere (the model's action is not "reject"). */
  readonly hasEndpoints: boolean;
  readonly clusterEndpoints: readonly Endpoint[];
  readonly localEndpoints: readonly Endpoint[];
  /** clusterEndpoints ∪ localEndpoints: the endpoints that get an endpoint chain. */
  readonly reachableEndpoints: readonly Endpoint[];
  /** Every endpoint the slices list for this port, usable or not (counts toward largeClusterMode). */
  readonly allEndpointCount: number;
}

export interface BaselineView {
  readonly state: DesiredState;
  readonly servicePorts: readonly ServicePortView[];
  /** First IPv4 cluster CIDR: kube-proxy's ClusterCIDR local-traffic detector uses one per family. */
  readonly clusterCIDR: string | null;
  /** kube-proxy's nodeIP (for the source-range "allow from node" rule): the first node address. */
  readonly nodeIP: string | null;
  /** nodePortAddresses empty: NodePorts on every local address (kube-proxy's MatchAll). */
  readonly nodePortsOnAllAddresses: boolean;
  /** Addresses accepting NodePorts when not on all addresses. */
  readonly nodePortAddresses: readonly string[];
  readonly masqueradeAll: boolean;
  /** Sum of allEndpointCount (kube-proxy's totalEndpoints). */
  readonly totalEndpoints: number;
}

export function baselineView(input: BaselineInput): BaselineView {
  const state = computeDesiredState(input);
  const byPort = new Map<string, DesiredFrontend[]>();
  for (const frontend of state.frontends) {
    const key = portId(frontend.service);
    byPort.set(key, [...(byPort.get(key) ?? []), frontend]);
  }
  const slices = collectEndpoints(input.endpointSlices, input.node.name, new ProblemList());

  const servicePorts: ServicePortView[] = [];
  for (const key of [...byPort.keys()].sort(compareText)) {
    const frontends = byPort.get(key)!;
    const first = frontends[0]!;
    const of = (kind: DesiredFrontend['kind']) => frontends.filter((f) => f.kind === kind);
    const clusterIP = of('ClusterIP');
    const internal = clusterIP[0] ?? first;
    const external = frontends.find((f) => f.kind !== 'ClusterIP');
    const nodePort = of('NodePort')[0];
    const lb = of('LoadBalancer');
    const cluster = toEndpoints(first.clusterEndpoints);
    const local = toEndpoints(first.localEndpoints);
    const reachable = new Map<string, Endpoint>();
    for (const ep of [...cluster, ...local]) reachable.set(ep.key, ep);
    const ref = first.service;
    const portName = ref.portName === '' ? '' : `:${ref.portName}`;
    servicePorts.push({
      ref,
      name: `${ref.namespace}/${ref.name}${portName}`,
      protocol: ref.protocol.toLowerCase(),
      clusterIPs: clusterIP.map((f) => f.address),
      port: frontends.find((f) => f.kind !== 'NodePort')?.port ?? 0,
      nodePort: nodePort?.port ?? 0,
      externalIPs: of('ExternalIP').map((f) => f.address),
      loadBalancerIPs: lb.map((f) => f.address),
      loadBalancerSourceRanges: lb[0]?.loadBalancerSourceRanges ?? [],
      affinitySeconds: first.sessionAffinity?.timeoutSeconds ?? null,
      externalPolicyLocal: first.externalTrafficPolicy === 'Local',
      internalPolicyLocal: first.internalTrafficPolicy === 'Local',
      healthCheckNodePort: (external ?? internal).healthCheckNodePort ?? 0,
      externallyAccessible: external !== undefined,
      hasEndpoints: first.action !== 'reject',
      clusterEndpoints: cluster,
      localEndpoints: local,
      reachableEndpoints: [...reachable.values()].sort((a, b) => compareText(a.key, b.key)),
      allEndpointCount: slices.get(`${ref.namespace}/${ref.name}`)?.get(`${ref.portName}/${ref.protocol}`)?.length ?? 0,
    });
  }

  const clusterCIDR = splitClusterCIDR(input.config.clusterCIDR).find((cidr) => parseCidr4(cidr) !== undefined) ?? null;
  return {
    state,
    servicePorts,
    clusterCIDR,
    nodeIP: input.node.addresses[0] ?? null,
    nodePortsOnAllAddresses: input.config.nodePortAddresses.length === 0,
    nodePortAddresses: state.nodePortAddresses,
    masqueradeAll: input.config.masqueradeAll,
    totalEndpoints: servicePorts.reduce((sum, sp) => sum + sp.allEndpointCount, 0),
  };
}

function portId(ref: ServicePortRef): string {
  // Sorts as kube-proxy's ServicePortName string, protocol last.
  return `${ref.namespace}/${ref.name}${ref.portName === '' ? '' : `:${ref.portName}`}\u0000${ref.protocol}`;
}

function toEndpoints(keys: readonly string[]): Endpoint[] {
  return keys
    .map((key) => {
      const colon = key.lastIndexOf(':');
      return { key, ip: key.slice(0, colon), port: Number(key.slice(colon + 1)) };
    })
    .sort((a, b) => compareText(a.key, b.key));
}

export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether an IPv4 address lies in an IPv4 CIDR (false for anything unparsable). */
export function inCidr(cidr: string, ip: string): boolean {
  const parsed = parseCidr4(cidr);
  const address = parseIPv4(ip);
  return parsed !== undefined && address !== undefined && cidrContains(parsed, address);
}
