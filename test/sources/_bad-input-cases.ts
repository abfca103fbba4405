// Valid objects and the bad-input corpus built from them: each bad input is a valid Service or
// EndpointSlice with one field broken the way a user, a buggy controller or a hand-written file
// breaks it, with the field its message must name. The reference for "bad" is what the API
// server's validation refuses (ValidateService, ValidateEndpointSlice).
export const GOOD_SERVICE = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'good', namespace: 'default', resourceVersion: '1' },
  spec: {
    type: 'NodePort',
    clusterIP: '198.19.0.10',
    clusterIPs: ['198.19.0.10'],
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
  },
};

export function goodSlice(endpoints: string[]): object {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'good-abc', namespace: 'default', labels: { 'kubernetes.io/service-name': 'good' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: endpoints.map((ip, i) => ({ addresses: [ip], conditions: { ready: true }, nodeName: i === 0 ? 'node-a' : 'node-b', zone: 'zone-a' })),
  };
}

export const GOOD_ENDPOINTS = ['198.18.129.5', '198.18.130.5'];
/** The good Service's change that must get through next to any bad object: a new endpoint. */
export const GOOD_ENDPOINTS_AFTER = [...GOOD_ENDPOINTS, '198.18.131.5'];

/** A valid Service using most fields, which the corpus breaks one field at a time. */
export const BAD_BASE_SERVICE = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'other', namespace: 'team-a', labels: { app: 'other' } },
  spec: {
    type: 'LoadBalancer',
    clusterIP: '198.19.0.20',
    clusterIPs: ['198.19.0.20'],
    externalIPs: ['198.18.200.1'],
    loadBalancerSourceRanges: ['198.18.0.0/16'],
    externalTrafficPolicy: 'Local',
    internalTrafficPolicy: 'Cluster',
    healthCheckNodePort: 32000,
    sessionAffinity: 'ClientIP',
    sessionAffinityConfig: { clientIP: { timeoutSeconds: 100 } },
    ports: [
      { name: 'http', port: 81, protocol: 'TCP', nodePort: 30081 },
      { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 },
    ],
  },
  status: { loadBalancer: { ingress: [{ ip: '198.18.201.1', ipMode: 'VIP' }] } },
};

export const BAD_BASE_SLICE = {
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'other-xyz', namespace: 'team-a', labels: { 'kubernetes.io/service-name': 'other' } },
  addressType: 'IPv4',
  ports: [
    { name: 'http', port: 8081, protocol: 'TCP' },
    { name: 'dns', port: 5353, protocol: 'UDP' },
  ],
  endpoints: [
    {
      addresses: ['198.18.129.9'],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: 'node-a',
      zone: 'zone-a',
      hints: { forZones: [{ name: 'zone-a' }] },
    },
  ],
};

export const DELETE = Symbol('delete');
type Path = readonly (string | number)[];

export interface BadInput {
  readonly name: string;
  readonly kind: 'Service' | 'EndpointSlice';
  /** The broken object. */
  readonly object: unknown;
  /** What the message must name: the field's path. */
  readonly field: string;
  /** The object's name as the message must give it (default: the base's). */
  readonly objectName?: string;
  readonly namespace?: string;
}

export function mutate(base: unknown, path: Path, value: unknown): unknown {
  const copy = structuredClone(base) as Record<string | number, unknown>;
  let at: Record<string | number, unknown> = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === DELETE) delete at[last];
  else at[last] = value;
  return copy;
}

const svc = (name: string, path: Path, value: unknown, field: string, objectName?: string): BadInput => ({
  name: `Service ${name}`,
  kind: 'Service',
  object: mutate(BAD_BASE_SERVICE, path, value),
  field,
  ...(objectName !== undefined ? { objectName } : {}),
});
const slc = (name: string, path: Path, value: unknown, field: string, objectName?: string): BadInput => ({
  name: `EndpointSlice ${name}`,
  kind: 'EndpointSlice',
  object: mutate(BAD_BASE_SLICE, path, value),
  field,
  ...(objectName !== undefined ? { objectName } : {}),
});

const P = ['spec', 'ports'] as const;
const P0 = [...P, 0] as const;
const LBSR = ['spec', 'loadBalancerSourceRanges'] as const;
const INGRESS = ['status', 'loadBalancer', 'ingress'] as const;
const AFFINITY_TIMEOUT = ['spec', 'sessionAffinityConfig', 'clientIP', 'timeoutSeconds'] as const;
const E0 = ['endpoints', 0] as const;

export const BAD_INPUTS: readonly BadInput[] = [
  // Service ports
  svc('ports is a string', P, '80', 'spec.ports'),
  svc('ports is a number', P, 5, 'spec.ports'),
  svc('ports holds null', P, [null], 'spec.ports[0]'),
  svc('ports is empty', P, [], 'spec.ports'),
  svc('ports is an object', P, { port: 80 }, 'spec.ports'),
  svc('port is a string', [...P0, 'port'], '80', 'spec.ports[0].port'),
  svc('port is 0', [...P0, 'port'], 0, 'spec.ports[0].port'),
  svc('port is 70000', [...P0, 'port'], 70000, 'spec.ports[0].port'),
  svc('port is 1.5', [...P0, 'port'], 1.5, 'spec.ports[0].port'),
  svc('port is negative', [...P0, 'port'], -1, 'spec.ports[0].port'),
  svc('port is null', [...P0, 'port'], null, 'spec.ports[0].port'),
  svc('port is missing', [...P0, 'port'], DELETE, 'spec.ports[0].port'),
  svc('port is true', [...P0, 'port'], true, 'spec.ports[0].port'),
  svc('nodePort is a string', [...P0, 'nodePort'], '30081', 'spec.ports[0].nodePort'),
  svc('nodePort is 99999', [...P0, 'nodePort'], 99999, 'spec.ports[0].nodePort'),
  svc('protocol is lower case', [...P0, 'protocol'], 'tcp', 'spec.ports[0].protocol'),
  svc('protocol is ICMP', [...P0, 'protocol'], 'ICMP', 'spec.ports[0].protocol'),
  svc('protocol is a number', [...P0, 'protocol'], 6, 'spec.ports[0].protocol'),
  svc('port name is a number', [...P0, 'name'], 5, 'spec.ports[0].name'),
  svc('port name is not a DNS label', [...P0, 'name'], 'HTTP_1', 'spec.ports[0].name'),
  svc('two ports share a name', [...P, 1, 'name'], 'http', 'spec.ports[1].name'),
  svc('two ports share number and protocol', [...P, 1], { name: 'again', port: 81, protocol: 'TCP' }, 'spec.ports[1].port'),
  svc('a port without a name among two', [...P0, 'name'], DELETE, 'spec.ports[0].name'),
  svc('nodePort on a ClusterIP Service', ['spec'], { type: 'ClusterIP', clusterIP: '198.19.0.20', ports: [{ name: 'http', port: 81, nodePort: 30081 }] }, 'spec.ports[0].nodePort'),
  // loadBalancerSourceRanges
  svc('loadBalancerSourceRanges is a number', LBSR, 5, 'spec.loadBalancerSourceRanges'),
  svc('loadBalancerSourceRanges is a string', LBSR, '198.18.0.0/16', 'spec.loadBalancerSourceRanges'),
  svc('a source range is not a CIDR', LBSR, ['not-a-cidr'], 'spec.loadBalancerSourceRanges[0]'),
  svc('a source range is a number', LBSR, [5], 'spec.loadBalancerSourceRanges[0]'),
  svc('a source range has prefix 33', LBSR, ['198.18.0.0/33'], 'spec.loadBalancerSourceRanges[0]'),
  svc('source ranges on a NodePort Service', ['spec', 'type'], 'NodePort', 'spec.loadBalancerSourceRanges'),
  // status
  svc('ingress is a string', INGRESS, 'x', 'status.loadBalancer.ingress'),
  svc('ingress holds null', INGRESS, [null], 'status.loadBalancer.ingress[0]'),
  svc('ingress ip is not an IP', [...INGRESS, 0, 'ip'], 'nope', 'status.loadBalancer.ingress[0].ip'),
  svc('ingress ip is a number', [...INGRESS, 0, 'ip'], 5, 'status.loadBalancer.ingress[0].ip'),
  svc('ingress ipMode is unknown', [...INGRESS, 0, 'ipMode'], 'Magic', 'status.loadBalancer.ingress[0].ipMode'),
  svc('loadBalancer status is a string', ['status', 'loadBalancer'], 'x', 'status.loadBalancer'),
  svc('status is a number', ['status'], 5, 'status'),
  // type, addresses
  svc('type is unknown', ['spec', 'type'], 'Weird', 'spec.type'),
  svc('type is a number', ['spec', 'type'], 5, 'spec.type'),
  svc('clusterIP is a number', ['spec', 'clusterIP'], 5, 'spec.clusterIP'),
  svc('clusterIP is not an IP', ['spec', 'clusterIP'], 'abc', 'spec.clusterIP'),
  svc('clusterIP is 0.0.0.0', ['spec'], { type: 'NodePort', clusterIP: '0.0.0.0', ports: [{ name: 'http', port: 81, nodePort: 30081 }] }, 'spec.clusterIP'),
  svc('clusterIP is loopback', ['spec', 'clusterIP'], '127.0.0.1', 'spec.clusterIP'),
  svc('clusterIP is multicast', ['spec', 'clusterIP'], '224.0.0.1', 'spec.clusterIP'),
  svc('clusterIPs is a string', ['spec', 'clusterIPs'], '198.19.0.20', 'spec.clusterIPs'),
  svc('clusterIPs[0] differs from clusterIP', ['spec', 'clusterIPs'], ['198.19.0.21'], 'spec.clusterIPs[0]'),
  svc('clusterIPs has two IPv4', ['spec', 'clusterIPs'], ['198.19.0.20', '198.19.0.22'], 'spec.clusterIPs'),
  svc('externalIPs is a string', ['spec', 'externalIPs'], '198.18.200.1', 'spec.externalIPs'),
  svc('an externalIP is a number', ['spec', 'externalIPs'], [5], 'spec.externalIPs[0]'),
  svc('an externalIP has an octet 300', ['spec', 'externalIPs'], ['198.18.200.300'], 'spec.externalIPs[0]'),
  svc('an externalIP is 0.0.0.0', ['spec', 'externalIPs'], ['0.0.0.0'], 'spec.externalIPs[0]'),
  svc('an externalIP is link-local', ['spec', 'externalIPs'], ['169.254.1.1'], 'spec.externalIPs[0]'),
  // policies, affinity, health check
  svc('externalTrafficPolicy is unknown', ['spec', 'externalTrafficPolicy'], 'Global', 'spec.externalTrafficPolicy'),
  svc('externalTrafficPolicy is a boolean', ['spec', 'externalTrafficPolicy'], true, 'spec.externalTrafficPolicy'),
  svc('internalTrafficPolicy is lower case', ['spec', 'internalTrafficPolicy'], 'local', 'spec.internalTrafficPolicy'),
  svc('sessionAffinity is unknown', ['spec', 'sessionAffinity'], 'Cookie', 'spec.sessionAffinity'),
  svc('affinity timeout is a string', AFFINITY_TIMEOUT, '100', 'spec.sessionAffinityConfig.clientIP.timeoutSeconds'),
  svc('affinity timeout is 0', AFFINITY_TIMEOUT, 0, 'spec.sessionAffinityConfig.clientIP.timeoutSeconds'),
  svc('affinity timeout is over a day', AFFINITY_TIMEOUT, 86401, 'spec.sessionAffinityConfig.clientIP.timeoutSeconds'),
  svc('sessionAffinityConfig is a string', ['spec', 'sessionAffinityConfig'], 'x', 'spec.sessionAffinityConfig'),
  svc('healthCheckNodePort is a string', ['spec', 'healthCheckNodePort'], '32000', 'spec.healthCheckNodePort'),
  svc('healthCheckNodePort is 70000', ['spec', 'healthCheckNodePort'], 70000, 'spec.healthCheckNodePort'),
  // metadata, spec
  svc('name is a number', ['metadata', 'name'], 5, 'metadata.name', '5'),
  svc('name is not a DNS label', ['metadata', 'name'], 'Bad_Name', 'metadata.name', 'Bad_Name'),
  svc('labels is a string', ['metadata', 'labels'], 'x', 'metadata.labels'),
  svc('a label value is a number', ['metadata', 'labels'], { 'service.kubernetes.io/service-proxy-name': 5 }, 'metadata.labels["service.kubernetes.io/service-proxy-name"]'),
  svc('spec is a string', ['spec'], 'x', 'spec'),
  svc('spec is null', ['spec'], null, 'spec'),
  // EndpointSlice ports
  slc('ports is a number', ['ports'], 5, 'ports'),
  slc('ports is a string', ['ports'], '8081', 'ports'),
  slc('ports holds null', ['ports'], [null], 'ports[0]'),
  slc('port is a string', ['ports', 0, 'port'], '8081', 'ports[0].port'),
  slc('port is 0', ['ports', 0, 'port'], 0, 'ports[0].port'),
  slc('port is 65536', ['ports', 0, 'port'], 65536, 'ports[0].port'),
  slc('protocol is lower case', ['ports', 0, 'protocol'], 'tcp', 'ports[0].protocol'),
  slc('port name is a number', ['ports', 0, 'name'], 5, 'ports[0].name'),
  slc('port name is not a DNS label', ['ports', 0, 'name'], 'Http', 'ports[0].name'),
  slc('two ports share a name', ['ports', 1, 'name'], 'http', 'ports[1].name'),
  // endpoints
  slc('endpoints holds null', ['endpoints'], [null], 'endpoints[0]'),
  slc('endpoints is a string', ['endpoints'], 'x', 'endpoints'),
  slc('addresses is a string', [...E0, 'addresses'], '198.18.129.9', 'endpoints[0].addresses'),
  slc('addresses is empty', [...E0, 'addresses'], [], 'endpoints[0].addresses'),
  slc('addresses is missing', [...E0, 'addresses'], DELETE, 'endpoints[0].addresses'),
  slc('an address is a number', [...E0, 'addresses'], [5], 'endpoints[0].addresses[0]'),
  slc('an IPv6 address in an IPv4 slice', [...E0, 'addresses'], ['2001:db8::1'], 'endpoints[0].addresses[0]'),
  slc('an address has an octet 999', [...E0, 'addresses'], ['198.18.129.999'], 'endpoints[0].addresses[0]'),
  slc('ready is the string "false"', [...E0, 'conditions', 'ready'], 'false', 'endpoints[0].conditions.ready'),
  slc('ready is 1', [...E0, 'conditions', 'ready'], 1, 'endpoints[0].conditions.ready'),
  slc('serving is the string "true"', [...E0, 'conditions', 'serving'], 'true', 'endpoints[0].conditions.serving'),
  slc('terminating is "no"', [...E0, 'conditions', 'terminating'], 'no', 'endpoints[0].conditions.terminating'),
  slc('conditions is a string', [...E0, 'conditions'], 'ready', 'endpoints[0].conditions'),
  slc('nodeName is a number', [...E0, 'nodeName'], 5, 'endpoints[0].nodeName'),
  slc('zone is a list', [...E0, 'zone'], ['zone-a'], 'endpoints[0].zone'),
  slc('hints is a string', [...E0, 'hints'], 'x', 'endpoints[0].hints'),
  slc('forZones is a string', [...E0, 'hints', 'forZones'], 'zone-a', 'endpoints[0].hints.forZones'),
  slc('a zone hint name is a number', [...E0, 'hints', 'forZones'], [{ name: 5 }], 'endpoints[0].hints.forZones[0].name'),
  slc('a zone hint is null', [...E0, 'hints', 'forZones'], [null], 'endpoints[0].hints.forZones[0]'),
  // addressType, metadata
  slc('addressType is IPv5', ['addressType'], 'IPv5', 'addressType'),
  slc('addressType is missing', ['addressType'], DELETE, 'addressType'),
  slc('addressType is a number', ['addressType'], 4, 'addressType'),
  slc('labels is a number', ['metadata', 'labels'], 5, 'metadata.labels'),
  slc('the service-name label is a number', ['metadata', 'labels', 'kubernetes.io/service-name'], 5, 'metadata.labels["kubernetes.io/service-name"]'),
  slc('name is not a DNS subdomain', ['metadata', 'name'], 'Bad_Slice', 'metadata.name', 'Bad_Slice'),
  { ...slc('metadata is a string', ['metadata'], 'x', 'metadata', ''), namespace: 'default' },
];
