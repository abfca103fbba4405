// Slim objects (ts/sources/slim.ts) keep every field the agent reads: the model computes the same
// desired state from them as from the objects the API serves, and the node view is the same. A model
// change that starts reading a field the slim copy drops fails here.
import test from 'ava';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';

import { nodeDeletionReason, nodeInfoFrom } from '../../ts/agent/node-info.js';
import { computeDesiredState, resolveProxyConfig } from '../../ts/model/index.js';
import { slim, slimEndpointSlice, slimNode, slimService } from '../../ts/sources/slim.js';
import { arbCluster } from '../model/_arbitrary-cluster.js';

const config = resolveProxyConfig({ clusterCIDR: '198.18.128.0/17' });
const node = { name: 'node-1', addresses: ['198.18.0.11'], podCIDRs: ['198.18.129.0/24'], zone: 'zone-a' };

/** What every API object carries and the proxy never reads, as `kubectl get -o yaml` shows it. */
function apiNoise(manager: string): object {
  return {
    uid: '6f1c7e0e-3a52-4c1e-9a51-2f0f5d1d8a11',
    generation: 3,
    creationTimestamp: '2026-11-22T07:00:00Z',
    ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'owner', uid: 'b3a1', controller: true, blockOwnerDeletion: true }],
    managedFields: [
      {
        manager,
        operation: 'Update',
        apiVersion: 'v1',
        time: '2026-11-22T07:00:00Z',
        fieldsType: 'FieldsV1',
        fieldsV1: { 'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } }, 'f:spec': { 'f:ports': { 'k:{"port":80,"protocol":"TCP"}': { '.': {}, 'f:port': {} } } } },
      },
    ],
  };
}

function fullService(name: string, spec: Record<string, unknown>, extra: { labels?: Record<string, string>; ingress?: Record<string, unknown>[] } = {}): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: 'prod',
      resourceVersion: '1042',
      labels: { app: name, 'app.kubernetes.io/managed-by': 'Helm', ...extra.labels },
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ spec }), 'meta.helm.sh/release-name': name },
      ...apiNoise('kubectl-client-side-apply'),
    },
    spec: {
      selector: { app: name },
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      allocateLoadBalancerNodePorts: true,
      publishNotReadyAddresses: false,
      trafficDistribution: 'PreferClose',
      ...spec,
    } as V1Service['spec'],
    status: {
      loadBalancer: { ingress: extra.ingress ?? [] },
      conditions: [{ type: 'LoadBalancerReady', status: 'True', lastTransitionTime: '2026-11-22T07:00:00Z', reason: 'Ok', message: '' }],
    } as unknown as V1Service['status'],
  };
}

const services: V1Service[] = [
  fullService('web', {
    type: 'LoadBalancer',
    clusterIP: '198.19.0.10',
    clusterIPs: ['198.19.0.10', 'fd00::10'],
    externalIPs: ['198.18.200.1'],
    loadBalancerSourceRanges: ['198.18.0.0/16', '2001:db8::/32'],
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: 32100,
    ports: [
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP', nodePort: 30080, appProtocol: 'http' },
      { name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP', nodePort: 30053 },
    ],
  }, { ingress: [{ ip: '198.18.250.1', ipMode: 'VIP', ports: [{ port: 80, protocol: 'TCP' }] }, { ip: '198.18.250.2', ipMode: 'Proxy' }, { hostname: 'lb.example' }] }),
  fullService('sticky', {
    type: 'NodePort',
    clusterIP: '198.19.0.11',
    internalTrafficPolicy: 'Local',
    sessionAffinity: 'ClientIP',
    sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
    ports: [{ name: 'http', port: 8080, targetPort: 8080, protocol: 'TCP', nodePort: 30081 }],
  }),
  fullService('other-proxy', { clusterIP: '198.19.0.12', ports: [{ port: 80 }] }, { labels: { 'service.kubernetes.io/service-proxy-name': 'someone-else' } }),
  fullService('headless-label', { clusterIP: '198.19.0.13', ports: [{ port: 80 }] }, { labels: { 'service.kubernetes.io/headless': '' } }),
  fullService('headless', { clusterIP: 'None', ports: [{ port: 80 }] }),
  fullService('external-name', { type: 'ExternalName', externalName: 'example.com' }),
  // Malformed values: the model reports them, and must report the same from the slim copy.
  fullService('broken', { clusterIP: '198.19.0.14', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } }, ports: [{ port: 80 }] }),
  fullService('bad-ports', { clusterIP: '198.19.0.15', ports: [{ name: 'a', port: 70000 }, { name: 'b', port: 81, protocol: 'ICMP' }, { name: 'c', port: 82, nodePort: -1 }, { name: 'd', port: 83 }] }),
  fullService('weird-type', { type: 'Magic', clusterIP: '198.19.0.16', externalTrafficPolicy: 'Sometimes' }),
  fullService('bad-range', { type: 'LoadBalancer', clusterIP: '198.19.0.17', loadBalancerSourceRanges: ['not-a-cidr'], ports: [{ port: 80, nodePort: 30090 }] }),
  fullService('affinity-default', { clusterIP: '198.19.0.18', sessionAffinity: 'ClientIP', ports: [{ name: 'x', port: 80 }] }),
];

function fullSlice(name: string, service: string, endpoints: Record<string, unknown>[], extra: Record<string, unknown> = {}): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      namespace: 'prod',
      resourceVersion: '2077',
      generateName: `${service}-`,
      labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io', app: service },
      annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-11-22T07:00:01Z', 'unrelated/annotation': 'x'.repeat(200) },
      ...apiNoise('kube-controller-manager'),
    },
    addressType: 'IPv4',
    ports: [
      { name: 'http', port: 9376, protocol: 'TCP', appProtocol: 'http' },
      { name: 'dns', port: 5353, protocol: 'UDP' },
    ],
    endpoints: endpoints.map((e, i) => ({
      hostname: `pod-${i}`,
      targetRef: { kind: 'Pod', namespace: 'prod', name: `${service}-pod-${i}`, uid: `uid-${i}` },
      deprecatedTopology: { 'kubernetes.io/hostname': 'x' },
      ...e,
    })),
    ...extra,
  } as unknown as V1EndpointSlice;
}

const ready = { ready: true, serving: true, terminating: false };
const slices: V1EndpointSlice[] = [
  fullSlice('web-a', 'web', [
    { addresses: ['198.18.128.5', '198.18.128.99'], nodeName: 'node-1', zone: 'zone-a', conditions: ready, hints: { forZones: [{ name: 'zone-a' }], forNodes: [{ name: 'node-1' }] } },
    { addresses: ['198.18.128.6'], nodeName: 'node-2', zone: 'zone-b', conditions: ready, hints: { forZones: [{ name: 'zone-b' }], forNodes: [{ name: 'node-2' }] } },
    { addresses: ['198.18.128.7'], nodeName: 'node-1', conditions: { ready: false, serving: true, terminating: true } },
  ]),
  fullSlice('web-b', 'web', [{ addresses: ['198.18.128.8'], nodeName: 'node-3', conditions: { ready: false, serving: false, terminating: true } }, { addresses: ['fd00::8'] }, { addresses: [] }]),
  fullSlice('sticky-a', 'sticky', [{ addresses: ['198.18.128.9'], nodeName: 'node-2', zone: 'zone-b', conditions: ready }, { addresses: ['198.18.128.10'] }], {
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { port: 1 }, { name: 'q', port: 0 }, { name: 'r', port: 5, protocol: 'GRE' }],
  }),
  fullSlice('sticky-v6', 'sticky', [{ addresses: ['fd00::9'], conditions: ready }], { addressType: 'IPv6' }),
  fullSlice('orphan', '', [{ addresses: ['198.18.128.11'], conditions: ready }]),
  fullSlice('affinity-default-a', 'affinity-default', [{ addresses: ['not-an-ip'], conditions: ready }, { addresses: ['198.18.128.12'], conditions: {} }], {
    ports: [{ name: 'x', port: 80, protocol: 'TCP' }],
  }),
];

const fullNode: V1Node = {
  apiVersion: 'v1',
  kind: 'Node',
  metadata: {
    name: 'node-1',
    resourceVersion: '555',
    labels: { 'topology.kubernetes.io/zone': 'zone-a', 'kubernetes.io/hostname': 'node-1', 'node.kubernetes.io/instance-type': 'm5.large' },
    annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' },
    deletionTimestamp: '2026-11-22T08:00:00Z' as unknown as Date,
    ...apiNoise('kubelet'),
  },
  spec: { podCIDR: '198.18.129.0/24', podCIDRs: ['198.18.129.0/24', 'fd00:1::/64'], providerID: 'kind://node-1', taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule', value: '123' }] },
  status: {
    addresses: [
      { type: 'Hostname', address: 'node-1' },
      { type: 'ExternalIP', address: '198.18.1.11' },
      { type: 'InternalIP', address: '198.18.0.11' },
      { type: 'InternalIP', address: 'fd00::11' },
    ],
    capacity: { cpu: '2', memory: '8Gi' },
    conditions: [{ type: 'Ready', status: 'True' }],
    images: [{ names: ['registry.example/app:1'], sizeBytes: 123456 }],
    nodeInfo: { kubeletVersion: 'v1.31.0' } as NonNullable<V1Node['status']>['nodeInfo'],
  },
};

function stateOf(svcs: V1Service[], eps: V1EndpointSlice[], nodeInfo = node) {
  return computeDesiredState({ services: svcs, endpointSlices: eps, node: nodeInfo, config });
}

test('the model computes the same desired state from slim objects as from full API objects', (t) => {
  const full = stateOf(services, slices);
  const slimmed = stateOf(services.map(slimService), slices.map(slimEndpointSlice));
  t.deepEqual(slimmed, full);
  // The fixture reaches the model's interesting paths, so the equality above says something.
  t.true(full.frontends.length >= 8, `${full.frontends.length} frontends`);
  t.true(full.problems.length >= 8, `${full.problems.length} problems`);
  t.true(full.services.some((s) => s.sessionAffinity !== null));
  t.true(full.healthChecks.length === 1);
  // Every node-local variant too (locality, zone hints, node hints).
  for (const n of [{ ...node, name: 'node-2', zone: 'zone-b' }, { ...node, name: 'node-3' }, { ...node, zone: 'zone-c' }]) {
    t.deepEqual(stateOf(services.map(slimService), slices.map(slimEndpointSlice), n), stateOf(services, slices, n), n.name);
  }
});

test('the node view and the deletion check are the same from a slim Node', (t) => {
  const slimmed = slimNode(fullNode);
  t.deepEqual(nodeInfoFrom(slimmed, 'node-1', ['198.18.9.9']), nodeInfoFrom(fullNode, 'node-1', ['198.18.9.9']));
  t.is(nodeDeletionReason(slimmed), nodeDeletionReason(fullNode));
  t.truthy(nodeDeletionReason(fullNode));
  const { deletionTimestamp: _, ...alive } = fullNode.metadata!;
  const notDeleted = { ...fullNode, metadata: alive, spec: { podCIDR: '198.18.129.0/24' } };
  t.deepEqual(nodeInfoFrom(slimNode(notDeleted), 'node-1', []), nodeInfoFrom(notDeleted, 'node-1', []));
  t.is(nodeDeletionReason(slimNode(notDeleted)), undefined);
});

test('a slim object holds only what is read: no managedFields, annotations, targetRefs or status the proxy ignores', (t) => {
  t.deepEqual(slimEndpointSlice(slices[0]!), {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: 'web-a',
      namespace: 'prod',
      resourceVersion: '2077',
      labels: { 'kubernetes.io/service-name': 'web' },
      annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-11-22T07:00:01Z' },
    },
    addressType: 'IPv4',
    ports: [
      { name: 'http', port: 9376, protocol: 'TCP' },
      { name: 'dns', port: 5353, protocol: 'UDP' },
    ],
    endpoints: [
      { addresses: ['198.18.128.5'], nodeName: 'node-1', zone: 'zone-a', conditions: ready, hints: { forZones: [{ name: 'zone-a' }], forNodes: [{ name: 'node-1' }] } },
      { addresses: ['198.18.128.6'], nodeName: 'node-2', zone: 'zone-b', conditions: ready, hints: { forZones: [{ name: 'zone-b' }], forNodes: [{ name: 'node-2' }] } },
      { addresses: ['198.18.128.7'], nodeName: 'node-1', conditions: { ready: false, serving: true, terminating: true } },
    ],
  });
  t.deepEqual(slimService(services[2]!).metadata, {
    name: 'other-proxy',
    namespace: 'prod',
    resourceVersion: '1042',
    uid: '6f1c7e0e-3a52-4c1e-9a51-2f0f5d1d8a11',
    creationTimestamp: '2026-11-22T07:00:00Z',
    labels: { 'service.kubernetes.io/service-proxy-name': 'someone-else' },
  });
  t.deepEqual(slimService(services[0]!).status, { loadBalancer: { ingress: [{ ip: '198.18.250.1', ipMode: 'VIP' }, { ip: '198.18.250.2', ipMode: 'Proxy' }, {}] } });
  t.deepEqual(slimNode(fullNode), {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node-1', resourceVersion: '555', labels: { 'topology.kubernetes.io/zone': 'zone-a' }, deletionTimestamp: '2026-11-22T08:00:00Z' as unknown as Date },
    spec: { podCIDR: '198.18.129.0/24', podCIDRs: ['198.18.129.0/24', 'fd00:1::/64'], taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }] },
    status: { addresses: fullNode.status!.addresses },
  });
  const size = (o: unknown) => JSON.stringify(o).length;
  const before = size([...services, ...slices]);
  const after = size([...services.map(slimService), ...slices.map(slimEndpointSlice)]);
  t.log(`JSON size of the fixture: ${before} → ${after} characters`);
  t.true(after < before / 3);
});

test('slim copies share repeated short strings (node names, protocols) and never alias the original', (t) => {
  const a = slimEndpointSlice(slices[0]!);
  const b = slimEndpointSlice(JSON.parse(JSON.stringify(slices[0])) as V1EndpointSlice);
  t.not(a.endpoints, slices[0]!.endpoints);
  t.not(a.endpoints[0], slices[0]!.endpoints[0]);
  t.deepEqual(a, b);
  // Malformed shapes pass through as they are, for the model to report.
  const odd = { kind: 'EndpointSlice', metadata: { name: 'odd', labels: 'x' }, ports: 'nope', endpoints: [null, 'x', { addresses: 'abc' }] };
  t.deepEqual(slim('EndpointSlice', odd), odd);
});

test('random clusters with API noise added: the same desired state from slim copies', (t) => {
  fc.assert(
    fc.property(arbCluster, fc.constantFrom('node-a', 'node-b'), (cluster, nodeName) => {
      const noisy = <T extends { metadata?: object }>(o: T, i: number): T => ({ ...o, metadata: { ...o.metadata, ...apiNoise(`m${i}`), annotations: { a: 'b' } } });
      const svcs = cluster.services.map(noisy);
      const eps = cluster.slices.map(noisy);
      const n = { ...node, name: nodeName, zone: 'zone-a' };
      const full = stateOf(svcs, eps, n);
      const slimmed = stateOf(svcs.map(slimService), eps.map(slimEndpointSlice), n);
      t.deepEqual(slimmed, full);
    }),
    { numRuns: 300 },
  );
});

test('the lab and the README YAML read the same through slim copies', (t) => {
  // Objects written the way people write them (YAML, defaults left out).
  const docs = parseAllDocuments(`apiVersion: v1
kind: Service
metadata: { name: hostnames }
spec:
  type: NodePort
  clusterIP: 198.19.0.10
  ports: [{ name: http, port: 80, targetPort: 9376, nodePort: 30080 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: hostnames-x, labels: { kubernetes.io/service-name: hostnames } }
addressType: IPv4
ports: [{ name: http, port: 9376 }]
endpoints:
  - { addresses: [198.18.128.5], nodeName: node-1 }
  - { addresses: [198.18.128.6], nodeName: node-2, conditions: { ready: false } }
`).map((d) => d.toJS() as { kind: string });
  const svcs = docs.filter((d) => d.kind === 'Service') as V1Service[];
  const eps = docs.filter((d) => d.kind === 'EndpointSlice') as V1EndpointSlice[];
  t.deepEqual(stateOf(svcs.map(slimService), eps.map(slimEndpointSlice)), stateOf(svcs, eps));
});
