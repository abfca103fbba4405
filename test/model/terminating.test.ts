import test from 'ava';

import { frontend, model, routing, service, slice, type EndpointSpec } from './_fixture.js';

// kube-proxy: use ready endpoints; when none is ready, use those that are serving && terminating,
// decided separately for the cluster-wide and the node-local sets (CategorizeEndpoints).

const TERMINATING = { ready: false, serving: true, terminating: true };
const CIP = 'ClusterIP 198.19.0.10:80/TCP';
const NODEPORT = 'NodePort 0.0.0.0:30080/TCP';

const nodePortService = (policy: 'Cluster' | 'Local'): string =>
  service('web', '198.19.0.10', `  type: NodePort\n  externalTrafficPolicy: ${policy}`).replace(
    'targetPort: http',
    'targetPort: http\n      nodePort: 30080',
  );

const cluster = (svc: string, endpoints: EndpointSpec[]) => model(svc + slice('web', 'web-1', endpoints));

test('ready endpoints are preferred: terminating ones are not used while any is ready', (t) => {
  const state = cluster(service('web', '198.19.0.10'), [
    { ip: '198.18.129.5', node: 'node-a', ...TERMINATING },
    { ip: '198.18.130.5', node: 'node-b' },
  ]);
  t.deepEqual(frontend(state, CIP).clusterEndpoints, ['198.18.130.5:8080']);
});

test('terminating endpoints that are not serving are never used: no endpoints → reject', (t) => {
  const state = cluster(service('web', '198.19.0.10'), [
    { ip: '198.18.129.5', ready: false, serving: false, terminating: true },
  ]);
  t.deepEqual(routing(frontend(state, CIP)), { trafficPolicy: 'Cluster', action: 'reject', clusterEndpoints: [], localEndpoints: [] });
});

test('variant 1, internalTrafficPolicy=Cluster: falls back to serving terminating endpoints', (t) => {
  const state = cluster(service('web', '198.19.0.10'), [
    { ip: '198.18.129.5', node: 'node-a', ...TERMINATING },
    { ip: '198.18.130.5', node: 'node-b', ...TERMINATING },
  ]);
  t.deepEqual(routing(frontend(state, CIP)), {
    trafficPolicy: 'Cluster',
    action: 'forward',
    clusterEndpoints: ['198.18.129.5:8080', '198.18.130.5:8080'],
    localEndpoints: [],
  });
});

test('variant 2, internalTrafficPolicy=Local: falls back to the local serving terminating endpoint', (t) => {
  const state = cluster(service('web', '198.19.0.10', '  internalTrafficPolicy: Local'), [
    { ip: '198.18.129.5', node: 'node-a', ...TERMINATING },
    { ip: '198.18.130.5', node: 'node-b' },
  ]);
  // The remote endpoint is ready, yet local traffic uses the terminating local one.
  t.deepEqual(routing(frontend(state, CIP)), {
    trafficPolicy: 'Local',
    action: 'forward',
    clusterEndpoints: [],
    localEndpoints: ['198.18.129.5:8080'],
  });
});

test('variant 3, externalTrafficPolicy=Cluster: NodePort falls back to serving terminating endpoints', (t) => {
  const state = cluster(nodePortService('Cluster'), [
    { ip: '198.18.129.5', node: 'node-a', ...TERMINATING },
    { ip: '198.18.130.5', node: 'node-b', ...TERMINATING },
  ]);
  t.deepEqual(routing(frontend(state, NODEPORT)), {
    trafficPolicy: 'Cluster',
    action: 'forward',
    clusterEndpoints: ['198.18.129.5:8080', '198.18.130.5:8080'],
    localEndpoints: [],
  });
});

test('variant 4, externalTrafficPolicy=Local: NodePort uses the local terminating endpoint, cluster set stays ready-only', (t) => {
  const state = cluster(nodePortService('Local'), [
    { ip: '198.18.129.5', node: 'node-a', ...TERMINATING },
    { ip: '198.18.130.5', node: 'node-b' },
  ]);
  t.deepEqual(routing(frontend(state, NODEPORT)), {
    trafficPolicy: 'Local',
    action: 'forward',
    clusterEndpoints: ['198.18.130.5:8080'],
    localEndpoints: ['198.18.129.5:8080'],
  });
  t.deepEqual(routing(frontend(state, CIP)), {
    trafficPolicy: 'Cluster',
    action: 'forward',
    clusterEndpoints: ['198.18.130.5:8080'],
    localEndpoints: ['198.18.129.5:8080'],
  });
});

test('externalTrafficPolicy=Local with only remote terminating endpoints: drop externally, not reject', (t) => {
  const state = cluster(nodePortService('Local'), [{ ip: '198.18.130.5', node: 'node-b', ...TERMINATING }]);
  t.deepEqual(routing(frontend(state, NODEPORT)), {
    trafficPolicy: 'Local',
    action: 'drop',
    clusterEndpoints: ['198.18.130.5:8080'],
    localEndpoints: [],
  });
});
