// Random small clusters, including some malformed values: the input of the model's property tests.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import fc from 'fast-check';

import { resolveProxyConfig } from '../../ts/model/index.js';
import { NODE } from './_fixture.js';

const ip = (prefix: string) => fc.integer({ min: 1, max: 6 }).map((n) => `${prefix}.${n}`);
export const arbService = fc.record({
  name: fc.constantFrom('a', 'b', 'c'),
  namespace: fc.constantFrom('default', 'default', 'prod'),
  type: fc.constantFrom('ClusterIP', 'NodePort', 'NodePort', 'LoadBalancer', 'LoadBalancer', 'ExternalName', 'Weird'),
  clusterIP: fc.oneof({ arbitrary: ip('10.96.0'), weight: 4 }, { arbitrary: fc.constantFrom('None', '', '198.19.0.999'), weight: 1 }),
  externalIPs: fc.array(ip('192.0.2'), { maxLength: 2 }),
  etp: fc.constantFrom(undefined, 'Cluster', 'Local'),
  itp: fc.constantFrom(undefined, 'Cluster', 'Local'),
  lbIPs: fc.array(ip('203.0.113'), { maxLength: 2 }),
  ports: fc.array(
    fc.record({
      // Mostly the ports the slices carry; some malformed ones for the problem paths.
      base: fc.constantFrom(
        { name: 'http', port: 80, protocol: 'TCP' },
        { name: 'http', port: 80, protocol: 'TCP' },
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'x', port: 70000, protocol: 'TCP' },
        { name: 'y', port: 81, protocol: 'ICMP' },
        { name: 'z', port: 82, protocol: 'SCTP' },
      ),
      nodePort: fc.constantFrom(undefined, 30080, 30053),
    }),
    { maxLength: 3 },
  ),
});
export const arbSlice = fc.record({
  service: fc.constantFrom('a', 'b', 'c'),
  namespace: fc.constantFrom('default', 'default', 'prod'),
  suffix: fc.constantFrom('1', '2', '3'),
  ports: fc.constantFrom<V1EndpointSlice['ports']>(
    [
      { name: 'http', port: 8080, protocol: 'TCP' },
      { name: 'dns', port: 5353, protocol: 'UDP' },
    ],
    [{ name: 'http', port: 9090, protocol: 'TCP' }],
    [{ name: 'x', port: 8080, protocol: 'TCP' }],
  ),
  endpoints: fc.array(
    fc.record({
      ip: ip('10.244.1'),
      node: fc.constantFrom('node-a', 'node-b'),
      // Mostly ready, so that forwarding states are common; the rest covers the fallbacks.
      ready: fc.constantFrom(true, true, true, false),
      serving: fc.constantFrom(true, true, false),
      terminating: fc.boolean(),
      zones: fc.constantFrom(undefined, ['zone-a'], ['zone-b']),
    }),
    { maxLength: 4 },
  ),
});

export type ValueOf<A> = A extends fc.Arbitrary<infer T> ? T : never;

/** Any port list of the shape arbService makes (the dense pools of other tests have their own). */
type ServiceSketch = Omit<ValueOf<typeof arbService>, 'ports'> & {
  ports: readonly { base: { name: string; port: number; protocol: string }; nodePort: number | undefined }[];
};

export function toService(s: ServiceSketch, index: number): V1Service {
  return {
    metadata: { name: s.name, namespace: s.namespace, uid: String(index) },
    spec: {
      type: s.type,
      clusterIP: s.clusterIP,
      externalIPs: s.externalIPs,
      ...(s.etp ? { externalTrafficPolicy: s.etp } : {}),
      ...(s.itp ? { internalTrafficPolicy: s.itp } : {}),
      healthCheckNodePort: 32000,
      ports: s.ports.map((p) => ({ ...p.base, ...(p.nodePort ? { nodePort: p.nodePort } : {}) })),
    },
    status: { loadBalancer: { ingress: s.lbIPs.map((lbIP) => ({ ip: lbIP })) } },
  };
}

export function toSlice(s: ValueOf<typeof arbSlice>): V1EndpointSlice {
  return {
    metadata: { name: `${s.service}-${s.suffix}`, namespace: s.namespace, labels: { 'kubernetes.io/service-name': s.service } },
    addressType: 'IPv4',
    ports: s.ports,
    endpoints: s.endpoints.map((e) => ({
      addresses: [e.ip],
      nodeName: e.node,
      conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating },
      ...(e.zones ? { hints: { forZones: e.zones.map((name) => ({ name })) } } : {}),
    })),
  };
}

export const arbCluster = fc.record({
  // Unique names: duplicates are a separate, tested case and would hide everything else here.
  services: fc.uniqueArray(arbService, { maxLength: 5, selector: (s) => `${s.namespace}/${s.name}` }).map((list) => list.map(toService)),
  slices: fc.uniqueArray(arbSlice, { maxLength: 5, selector: (s) => `${s.namespace}/${s.service}-${s.suffix}` }).map((list) => list.map(toSlice)),
});
// The agent's health endpoint on every node address: what refusals.ts keeps Services off.
export const config = resolveProxyConfig({ clusterCIDR: '198.18.128.0/17', agentPorts: [{ address: '0.0.0.0', port: 10256, what: 'healthz' }] });
export const node = { ...NODE };
