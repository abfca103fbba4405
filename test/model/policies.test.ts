import test from 'ava';

import { frontend, model, routing, service, slice } from './_fixture.js';

const lb = (extra: string): string => `
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: prod}
spec:
  type: LoadBalancer
  clusterIP: 198.19.1.1
  ${extra}
  ports:
    - {name: https, port: 443, targetPort: 8443, nodePort: 31443}
status:
  loadBalancer:
    ingress: [{ip: 198.19.255.7}]
---`;

const shopSlice = (endpoints: string): string => `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: shop-1, namespace: prod, labels: {kubernetes.io/service-name: shop}}
addressType: IPv4
ports: [{name: https, port: 8443}]
endpoints: ${endpoints}
---`;

const LOCAL_AND_REMOTE = `
  - {addresses: [198.18.129.5], nodeName: node-a}
  - {addresses: [198.18.130.5], nodeName: node-b}`;
const REMOTE_ONLY = `
  - {addresses: [198.18.130.5], nodeName: node-b}`;

test('ETP Cluster: external frontends use every endpoint, masqueraded to other nodes, Maglev', (t) => {
  const state = model(lb('externalTrafficPolicy: Cluster') + shopSlice(LOCAL_AND_REMOTE));
  for (const key of ['LoadBalancer 198.19.255.7:443/TCP', 'NodePort 0.0.0.0:31443/TCP']) {
    const f = frontend(state, key);
    t.deepEqual(routing(f), { trafficPolicy: 'Cluster', action: 'forward', clusterEndpoints: ['198.18.129.5:8443', '198.18.130.5:8443'], localEndpoints: [] });
    t.is(f.masquerade, 'otherNodes');
    t.true(f.maglev);
    t.is(f.healthCheckNodePort, null);
  }
  t.false(frontend(state, 'ClusterIP 198.19.1.1:443/TCP').maglev, 'cluster-internal traffic picks randomly');
  t.deepEqual(state.healthChecks, []);
});

test('ETP Local with a local endpoint: external traffic only to it, client IP kept, health check says 1', (t) => {
  const state = model(lb('externalTrafficPolicy: Local\n  healthCheckNodePort: 32000') + shopSlice(LOCAL_AND_REMOTE));
  const f = frontend(state, 'LoadBalancer 198.19.255.7:443/TCP');
  t.deepEqual(routing(f), { trafficPolicy: 'Local', action: 'forward', clusterEndpoints: ['198.18.129.5:8443', '198.18.130.5:8443'], localEndpoints: ['198.18.129.5:8443'] });
  t.is(f.masquerade, 'none');
  t.is(f.healthCheckNodePort, 32000);
  t.is(f.externalTrafficPolicy, 'Local');
  t.is(f.internalTrafficPolicy, 'Cluster');
  // ETP does not touch ClusterIP traffic.
  t.deepEqual(routing(frontend(state, 'ClusterIP 198.19.1.1:443/TCP')).trafficPolicy, 'Cluster');
  t.deepEqual(state.healthChecks, [{ port: 32000, namespace: 'prod', name: 'shop', localEndpoints: 1 }]);
});

test('ETP Local without a local endpoint: external traffic dropped, in-node traffic short-circuits to the internal group', (t) => {
  const state = model(lb('externalTrafficPolicy: Local\n  healthCheckNodePort: 32000') + shopSlice(REMOTE_ONLY));
  t.is(frontend(state, 'NodePort 0.0.0.0:31443/TCP').action, 'drop');
  t.is(frontend(state, 'LoadBalancer 198.19.255.7:443/TCP').action, 'drop');
  t.is(frontend(state, 'ClusterIP 198.19.1.1:443/TCP').action, 'forward');
  const internal = state.services.find((s) => s.scope === 'internal')!;
  const external = state.services.find((s) => s.scope === 'external')!;
  t.is(external.shortCircuitServiceId, internal.id);
  t.deepEqual(external.backends, []);
  t.is(internal.backends.length, 1);
  t.deepEqual(state.healthChecks, [{ port: 32000, namespace: 'prod', name: 'shop', localEndpoints: 0 }]);
});

test('ETP Local health check: only terminating local endpoints count as 0 (kube-proxy answers 503)', (t) => {
  const state = model(
    lb('externalTrafficPolicy: Local\n  healthCheckNodePort: 32000') +
      shopSlice(`
  - {addresses: [198.18.129.5], nodeName: node-a, conditions: {ready: false, serving: true, terminating: true}}
  - {addresses: [198.18.130.5], nodeName: node-b}`),
  );
  t.deepEqual(state.healthChecks, [{ port: 32000, namespace: 'prod', name: 'shop', localEndpoints: 0 }]);
  // ...while traffic still reaches the terminating local endpoint.
  t.is(frontend(state, 'LoadBalancer 198.19.255.7:443/TCP').action, 'forward');
});

test('ETP Local health check counts distinct local IPs across all ports', (t) => {
  const state = model(`
apiVersion: v1
kind: Service
metadata: {name: two, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 198.19.1.2
  externalTrafficPolicy: Local
  healthCheckNodePort: 32001
  ports:
    - {name: a, port: 80, nodePort: 30001}
    - {name: b, port: 81, nodePort: 30002}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: two-1, namespace: default, labels: {kubernetes.io/service-name: two}}
addressType: IPv4
ports: [{name: a, port: 8080}, {name: b, port: 8081}]
endpoints:
  - {addresses: [198.18.129.5], nodeName: node-a}
  - {addresses: [198.18.129.6], nodeName: node-a}
  - {addresses: [198.18.130.5], nodeName: node-b}
`);
  t.deepEqual(state.healthChecks, [{ port: 32001, namespace: 'default', name: 'two', localEndpoints: 2 }]);
});

test('ETP is ignored for ClusterIP Services (kube-proxy ExternalPolicyLocal), also for their externalIPs', (t) => {
  const state = model(
    service('web', '198.19.0.10', '  externalTrafficPolicy: Local\n  externalIPs: [198.18.0.200]') +
      slice('web', 'web-1', [{ ip: '198.18.130.5', node: 'node-b' }]),
  );
  const f = frontend(state, 'ExternalIP 198.18.0.200:80/TCP');
  t.deepEqual(routing(f), { trafficPolicy: 'Cluster', action: 'forward', clusterEndpoints: ['198.18.130.5:8080'], localEndpoints: [] });
  t.is(f.externalTrafficPolicy, 'Cluster');
});

test('ITP Local with a local endpoint: ClusterIP traffic stays on the node', (t) => {
  const state = model(
    service('web', '198.19.0.10', '  internalTrafficPolicy: Local') +
      slice('web', 'web-1', [{ ip: '198.18.129.5', node: 'node-a' }, { ip: '198.18.130.5', node: 'node-b' }]),
  );
  t.deepEqual(routing(frontend(state, 'ClusterIP 198.19.0.10:80/TCP')), {
    trafficPolicy: 'Local',
    action: 'forward',
    clusterEndpoints: [],
    localEndpoints: ['198.18.129.5:8080'],
  });
});

test('ITP Local without a local endpoint: drop (endpoints exist elsewhere), not reject', (t) => {
  const state = model(service('web', '198.19.0.10', '  internalTrafficPolicy: Local') + slice('web', 'web-1', [{ ip: '198.18.130.5', node: 'node-b' }]));
  t.is(frontend(state, 'ClusterIP 198.19.0.10:80/TCP').action, 'drop');
  t.deepEqual(state.services[0]?.backends, []);
});

test('no endpoints at all: every frontend rejects, whatever the policies', (t) => {
  const state = model(lb('externalTrafficPolicy: Local\n  healthCheckNodePort: 32000\n  internalTrafficPolicy: Local') + shopSlice('[]'));
  t.deepEqual(
    state.frontends.map((f) => [f.kind, f.action]),
    [
      ['ClusterIP', 'reject'],
      ['LoadBalancer', 'reject'],
      ['NodePort', 'reject'],
    ],
  );
});

test('ITP Local and ETP Cluster together: external traffic still uses the whole cluster', (t) => {
  const state = model(lb('internalTrafficPolicy: Local') + shopSlice(REMOTE_ONLY));
  t.is(frontend(state, 'ClusterIP 198.19.1.1:443/TCP').action, 'drop');
  t.deepEqual(routing(frontend(state, 'NodePort 0.0.0.0:31443/TCP')), {
    trafficPolicy: 'Cluster',
    action: 'forward',
    clusterEndpoints: ['198.18.130.5:8443'],
    localEndpoints: [],
  });
});
