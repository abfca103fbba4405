import test from 'ava';

import { backendKey, maglevTableFor } from '../../ts/model/index.js';
import { buildMaglevTable, resolveSlots } from '../../ts/maglev/index.js';
import { model } from './_fixture.js';

// One small cluster, the whole desired state spelled out: the form the dataplane diff consumes.
const CLUSTER = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: NodePort
  clusterIP: 198.19.0.10
  sessionAffinity: ClientIP
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
  - {addresses: [198.18.130.5], nodeName: node-b}
  - {addresses: [198.18.129.5], nodeName: node-a, conditions: {ready: false, serving: true, terminating: true}}
`;

test('a NodePort Service with one ready remote and one terminating local endpoint, in full', (t) => {
  const state = model(CLUSTER, { config: { clusterCIDR: '198.18.128.0/17' } });
  const ref = { namespace: 'shop', name: 'web', portName: 'http', protocol: 'TCP' };
  const common = {
    port: 80,
    protocol: 'TCP',
    service: ref,
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    trafficPolicy: 'Cluster',
    sessionAffinity: { timeoutSeconds: 10800 },
    loadBalancerSourceRanges: [],
    clusterEndpoints: ['198.18.130.5:8080'],
    localEndpoints: [],
    action: 'forward',
    healthCheckNodePort: null,
  };
  t.deepEqual(state, {
    frontends: [
      { ...common, key: 'ClusterIP 198.19.0.10:80/TCP', kind: 'ClusterIP', address: '198.19.0.10', serviceId: 2, masquerade: 'outsideClusterCIDR', detectLocal: true, maglev: false },
      { ...common, key: 'NodePort 0.0.0.0:30080/TCP', kind: 'NodePort', address: '0.0.0.0', port: 30080, serviceId: 1, masquerade: 'otherNodes', detectLocal: false, maglev: true },
    ],
    services: [
      { id: 1, key: 'shop/web:http/TCP#external', service: ref, scope: 'external', trafficPolicy: 'Cluster', backends: [2], action: 'forward', maglev: true, sessionAffinity: { timeoutSeconds: 10800 }, topologyMode: 'None', shortCircuitServiceId: null },
      { id: 2, key: 'shop/web:http/TCP#internal', service: ref, scope: 'internal', trafficPolicy: 'Cluster', backends: [2], action: 'forward', maglev: false, sessionAffinity: { timeoutSeconds: 10800 }, topologyMode: 'None', shortCircuitServiceId: null },
    ],
    backends: [
      { id: 1, key: '198.18.129.5:8080/TCP', address: '198.18.129.5', port: 8080, protocol: 'TCP', nodeName: 'node-a', local: true },
      { id: 2, key: '198.18.130.5:8080/TCP', address: '198.18.130.5', port: 8080, protocol: 'TCP', nodeName: 'node-b', local: false },
    ],
    healthChecks: [],
    nodePortAddresses: ['198.18.0.10', '198.18.1.10'],
    problems: [],
    ids: {
      services: { assigned: [['shop/web:http/TCP#external', 1], ['shop/web:http/TCP#internal', 2]], released: [], next: 3, first: 1, last: 0xffffffff },
      backends: { assigned: [['198.18.129.5:8080/TCP', 1], ['198.18.130.5:8080/TCP', 2]], released: [], next: 3, first: 1, last: 0xffffffff },
    },
  });
});

test('the output is plain data: a JSON round trip changes nothing', (t) => {
  const state = model(CLUSTER);
  t.deepEqual(JSON.parse(JSON.stringify(state)), state);
});

test('maglevTableFor: external groups get a table of backend ids named by their stable keys', (t) => {
  const state = model(`
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: default}
spec:
  type: NodePort
  clusterIP: 198.19.0.10
  ports: [{name: http, port: 80, nodePort: 30080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-1, namespace: default, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [198.18.129.5]}, {addresses: [198.18.130.5]}]
`);
  const byId = new Map(state.backends.map((b) => [b.id, b]));
  const external = state.services.find((s) => s.scope === 'external')!;
  const internal = state.services.find((s) => s.scope === 'internal')!;
  const table = maglevTableFor(external, byId, 251)!;
  const keys = [backendKey('198.18.129.5', 8080, 'TCP'), backendKey('198.18.130.5', 8080, 'TCP')];
  const idOf = (key: string) => state.backends.find((b) => b.key === key)!.id;
  t.deepEqual(table, resolveSlots(buildMaglevTable(keys, 251), idOf));
  t.is(maglevTableFor(internal, byId, 251), undefined, 'ClusterIP traffic does not use Maglev');
});
