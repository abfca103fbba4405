/**
 * A deterministic synthetic cluster for scale runs: n ClusterIP Services × k ready endpoints, in
 * the lab's address plan (ClusterIPs from 198.19.0.0/17, endpoints from the cluster CIDR
 * 198.18.128.0/17). Services are named bench/svc-00000… so that sorted order is creation order:
 * the Service with index n−1 is the last rule of KUBE-SERVICES (the worst case for iptables).
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import { formatIPv4, parseIPv4, resolveProxyConfig, type NodeInfo } from '../model/index.js';
import type { BaselineInput } from './service-ports.js';

export const SYNTHETIC_NAMESPACE = 'bench';
export const SYNTHETIC_CLUSTER_CIDR = '198.18.128.0/17';
export const SYNTHETIC_PORT = 80;
export const SYNTHETIC_TARGET_PORT = 8080;
/** ClusterIPs .0.1 … .127.254 of 198.19.0.0/17. */
export const MAX_SYNTHETIC_SERVICES = 32_766;

const SERVICE_BASE = parseIPv4('198.19.0.0')!;
const POD_BASE = parseIPv4('198.18.128.0')!;
/** Host numbers 1 … 32766 of the /17; beyond that the next endpoints take the next target port. */
const POD_HOSTS = 32_766;

export interface SyntheticOptions {
  /** The node the rules are for (default node-1 of the lab: 198.18.0.11, pod CIDR 198.18.129.0/24). */
  node?: NodeInfo;
  /** Node names endpoints are spread over, round-robin (default node-1, node-2). */
  endpointNodes?: readonly string[];
}

export function syntheticServiceName(i: number): string {
  return `svc-${String(i).padStart(5, '0')}`;
}

export function syntheticClusterIP(i: number): string {
  return formatIPv4(SERVICE_BASE + 1 + i);
}

/** Endpoint j of Service i: a unique ip:port in the cluster CIDR. */
export function syntheticEndpoint(i: number, j: number, endpointsPerService: number): { ip: string; port: number } {
  const e = i * endpointsPerService + j;
  return { ip: formatIPv4(POD_BASE + 1 + (e % POD_HOSTS)), port: SYNTHETIC_TARGET_PORT + Math.floor(e / POD_HOSTS) };
}

export function syntheticService(i: number): V1Service {
  const name = syntheticServiceName(i);
  const clusterIP = syntheticClusterIP(i);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: SYNTHETIC_NAMESPACE },
    spec: {
      type: 'ClusterIP',
      clusterIP,
      clusterIPs: [clusterIP],
      ports: [{ name: 'http', port: SYNTHETIC_PORT, protocol: 'TCP', targetPort: 'http' as never }],
    },
  };
}

function sliceOf(i: number, part: number, port: number, endpoints: { ip: string; nodeName: string }[]): V1EndpointSlice {
  const service = syntheticServiceName(i);
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${service}-${part}`, namespace: SYNTHETIC_NAMESPACE, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port, protocol: 'TCP' }],
    endpoints: endpoints.map((ep) => ({
      addresses: [ep.ip],
      nodeName: ep.nodeName,
      conditions: { ready: true, serving: true, terminating: false },
    })),
  };
}

/** Slices of Service i: one per target port in use (one, except where the address range wraps). */
export function syntheticSlices(i: number, endpointsPerService: number, endpointNodes: readonly string[] = ['node-1', 'node-2']): V1EndpointSlice[] {
  const byPort = new Map<number, { ip: string; nodeName: string }[]>();
  for (let j = 0; j < endpointsPerService; j++) {
    const { ip, port } = syntheticEndpoint(i, j, endpointsPerService);
    byPort.set(port, [...(byPort.get(port) ?? []), { ip, nodeName: endpointNodes[(i + j) % endpointNodes.length]! }]);
  }
  return [...byPort].map(([port, endpoints], part) => sliceOf(i, part, port, endpoints));
}

/** n Services × k endpoints, deterministic: equal arguments give equal inputs. */
export function generateScale(n: number, endpointsPerService: number, options: SyntheticOptions = {}): BaselineInput {
  if (!Number.isInteger(n) || n < 0 || n > MAX_SYNTHETIC_SERVICES) throw new RangeError(`n = ${n} is outside 0…${MAX_SYNTHETIC_SERVICES}`);
  if (!Number.isInteger(endpointsPerService) || endpointsPerService < 0 || endpointsPerService > 1000) {
    throw new RangeError(`endpointsPerService = ${endpointsPerService} is outside 0…1000`);
  }
  const services: V1Service[] = [];
  const endpointSlices: V1EndpointSlice[] = [];
  for (let i = 0; i < n; i++) {
    services.push(syntheticService(i));
    if (endpointsPerService > 0) endpointSlices.push(...syntheticSlices(i, endpointsPerService, options.endpointNodes));
  }
  return {
    services,
    endpointSlices,
    node: options.node ?? { name: 'node-1', addresses: ['198.18.0.11'], podCIDRs: ['198.18.129.0/24'] },
    config: resolveProxyConfig({ clusterCIDR: SYNTHETIC_CLUSTER_CIDR }),
  };
}
