import test from 'ava';

import { frontendKeys, model, service, slice } from './_fixture.js';

const endpoints = (svc: string): string => slice(svc, `${svc}-1`, [{ ip: '198.18.130.5', node: 'node-b' }]);

test('a ClusterIP Service with a cluster IP is proxied', (t) => {
  const state = model(service('web', '198.19.0.10') + endpoints('web'));
  t.deepEqual(frontendKeys(state), ['ClusterIP 198.19.0.10:80/TCP']);
  t.deepEqual(state.problems, []);
});

test('headless Services (clusterIP None or empty) are skipped silently', (t) => {
  const state = model(service('none', 'None') + endpoints('none') + service('empty', '""') + endpoints('empty'));
  t.deepEqual(state.frontends, []);
  t.deepEqual(state.services, []);
  t.deepEqual(state.backends, [], 'endpoints of unproxied Services are not backends');
  t.deepEqual(state.problems, []);
});

test('ExternalName Services are skipped even with a cluster IP set', (t) => {
  const state = model(service('ext', '198.19.0.11', '  type: ExternalName\n  externalName: example.com'));
  t.deepEqual(state.frontends, []);
  t.deepEqual(state.problems, []);
});

test('service-proxy-name: skipped unless it names us', (t) => {
  const other = service('other', '198.19.0.12', '', '  labels:\n    service.kubernetes.io/service-proxy-name: someone-else');
  const ours = service('ours', '198.19.0.13', '', '  labels:\n    service.kubernetes.io/service-proxy-name: bpfproxy');
  t.deepEqual(frontendKeys(model(other + ours)), ['ClusterIP 198.19.0.13:80/TCP']);
  t.deepEqual(frontendKeys(model(other + ours, { config: { proxyName: 'someone-else' } })), ['ClusterIP 198.19.0.12:80/TCP']);
});

test('the service.kubernetes.io/headless label skips a Service whatever its value', (t) => {
  const labelled = service('h', '198.19.0.14', '', '  labels:\n    service.kubernetes.io/headless: ""');
  t.deepEqual(model(labelled + endpoints('h')).frontends, []);
});
