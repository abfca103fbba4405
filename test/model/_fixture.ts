import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

import {
  computeDesiredState,
  resolveProxyConfig,
  type DesiredFrontend,
  type DesiredState,
  type IdState,
  type NodeInfo,
  type ProxyConfigInput,
} from '../../ts/model/index.js';

export interface Cluster {
  services: V1Service[];
  endpointSlices: V1EndpointSlice[];
}

/** Services and EndpointSlices from a multi-document YAML string, as kubectl would read them. */
export function parseCluster(yaml: string): Cluster {
  const cluster: Cluster = { services: [], endpointSlices: [] };
  for (const document of parseAllDocuments(yaml)) {
    if (document.errors.length > 0) throw document.errors[0];
    const object = document.toJS() as { kind?: string } | null;
    if (object === null) continue;
    if (object.kind === 'Service') cluster.services.push(object as V1Service);
    else if (object.kind === 'EndpointSlice') cluster.endpointSlices.push(object as V1EndpointSlice);
    else throw new Error(`unexpected kind ${String(object.kind)}`);
  }
  return cluster;
}

/** The node the tests run "on": node-a in zone-a, with a loopback address that must never be used. */
export const NODE: NodeInfo = {
  name: 'node-a',
  addresses: ['198.18.0.10', '198.18.1.10', '127.0.0.1'],
  zone: 'zone-a',
  podCIDRs: ['198.18.129.0/24'],
};

export interface ModelOptions {
  node?: Partial<NodeInfo>;
  config?: ProxyConfigInput;
  previousIds?: IdState;
}

export function model(yaml: string, options: ModelOptions = {}): DesiredState {
  const cluster = parseCluster(yaml);
  return computeDesiredState({
    ...cluster,
    node: { ...NODE, ...options.node },
    config: resolveProxyConfig(options.config),
    ...(options.previousIds ? { previousIds: options.previousIds } : {}),
  });
}

/** The frontend with this key ("ClusterIP 198.19.0.10:80/TCP"); throws so a typo fails loudly. */
export function frontend(state: DesiredState, key: string): DesiredFrontend {
  const found = state.frontends.find((f) => f.key === key);
  if (found === undefined) throw new Error(`no frontend ${key}; have ${state.frontends.map((f) => f.key).join(', ')}`);
  return found;
}

export function frontendKeys(state: DesiredState): string[] {
  return state.frontends.map((f) => f.key);
}

/** Endpoint lists and action of a frontend: what most rules are about. */
export function routing(f: DesiredFrontend): Pick<DesiredFrontend, 'action' | 'clusterEndpoints' | 'localEndpoints' | 'trafficPolicy'> {
  return {
    trafficPolicy: f.trafficPolicy,
    action: f.action,
    clusterEndpoints: f.clusterEndpoints,
    localEndpoints: f.localEndpoints,
  };
}

/** A one-port ClusterIP Service "web" (port 80 → named target "http"). Extra spec lines are indented YAML. */
export function service(name: string, clusterIP: string, extraSpec = '', metadata = ''): string {
  return `
apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: default
${metadata}
spec:
  clusterIP: ${clusterIP}
  ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: http
${extraSpec}
---`;
}

export interface EndpointSpec {
  ip: string;
  node?: string;
  zone?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  forZones?: string[];
  forNodes?: string[];
}

/** An EndpointSlice for service `svc`, port "http"/TCP on `port`. */
export function slice(svc: string, name: string, endpoints: EndpointSpec[], port = 8080): string {
  const eps = endpoints
    .map((ep) => {
      const lines = [`    - addresses: ["${ep.ip}"]`];
      if (ep.node !== undefined) lines.push(`      nodeName: ${ep.node}`);
      if (ep.zone !== undefined) lines.push(`      zone: ${ep.zone}`);
      const conditions = (['ready', 'serving', 'terminating'] as const).filter((c) => ep[c] !== undefined);
      if (conditions.length > 0) {
        lines.push('      conditions:');
        for (const c of conditions) lines.push(`        ${c}: ${String(ep[c])}`);
      }
      if (ep.forZones !== undefined || ep.forNodes !== undefined) {
        lines.push('      hints:');
        if (ep.forZones !== undefined) lines.push(`        forZones: [${ep.forZones.map((z) => `{name: ${z}}`).join(', ')}]`);
        if (ep.forNodes !== undefined) lines.push(`        forNodes: [${ep.forNodes.map((n) => `{name: ${n}}`).join(', ')}]`);
      }
      return lines.join('\n');
    })
    .join('\n');
  return `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}
  namespace: default
  labels:
    kubernetes.io/service-name: ${svc}
addressType: IPv4
ports:
  - name: http
    port: ${port}
    protocol: TCP
endpoints:
${endpoints.length > 0 ? eps : '  []'}
---`;
}
