import test from 'ava';

import { frontend, model, routing, service, slice } from './_fixture.js';

const CIP = 'ClusterIP 198.19.0.10:80/TCP';

test('several slices of one Service are merged', (t) => {
  const state = model(
    service('web', '198.19.0.10') +
      slice('web', 'web-a', [{ ip: '198.18.129.5', node: 'node-a' }]) +
      slice('web', 'web-b', [{ ip: '198.18.130.5', node: 'node-b' }, { ip: '198.18.131.5', node: 'node-c' }]),
  );
  t.deepEqual(frontend(state, CIP).clusterEndpoints, ['198.18.129.5:8080', '198.18.130.5:8080', '198.18.131.5:8080']);
});

test('an endpoint listed in two slices is used once, and the local copy wins', (t) => {
  const state = model(
    service('web', '198.19.0.10') +
      slice('web', 'web-a', [{ ip: '198.18.129.5', node: 'node-x' }]) +
      slice('web', 'web-b', [{ ip: '198.18.129.5', node: 'node-a' }]),
  );
  t.deepEqual(frontend(state, CIP).clusterEndpoints, ['198.18.129.5:8080']);
  t.deepEqual(frontend(state, CIP).localEndpoints, [], 'Cluster-only policies compute no local set');
  t.deepEqual(
    state.backends.map((b) => [b.key, b.nodeName, b.local]),
    [['198.18.129.5:8080/TCP', 'node-a', true]],
  );
});

test('endpoints are sorted by IP numerically, then port', (t) => {
  const state = model(
    service('web', '198.19.0.10') +
      slice('web', 'web-a', [{ ip: '198.18.128.10' }, { ip: '198.18.128.9' }, { ip: '198.18.128.100' }]),
  );
  t.deepEqual(frontend(state, CIP).clusterEndpoints, ['198.18.128.9:8080', '198.18.128.10:8080', '198.18.128.100:8080']);
});

test('named targetPort: each slice carries its own number for the port name', (t) => {
  // Two pod templates name "http" differently (8080 and 9090) during a rollout.
  const state = model(
    service('web', '198.19.0.10') +
      slice('web', 'web-old', [{ ip: '198.18.129.5' }], 8080) +
      slice('web', 'web-new', [{ ip: '198.18.129.6' }], 9090),
  );
  t.deepEqual(frontend(state, CIP).clusterEndpoints, ['198.18.129.5:8080', '198.18.129.6:9090']);
});

test('multiport: each Service port takes the slice port of the same name and protocol', (t) => {
  const state = model(`
apiVersion: v1
kind: Service
metadata: {name: multi, namespace: default}
spec:
  clusterIP: 198.19.0.20
  ports:
    - {name: http, port: 80, targetPort: web}
    - {name: dns, port: 53, protocol: UDP, targetPort: dns}
    - {name: dns-tcp, port: 53, protocol: TCP, targetPort: dns}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: multi-x
  namespace: default
  labels: {kubernetes.io/service-name: multi}
addressType: IPv4
ports:
  - {name: http, port: 8080, protocol: TCP}
  - {name: dns, port: 5353, protocol: UDP}
  - {name: dns-tcp, port: 5353, protocol: TCP}
endpoints:
  - addresses: [198.18.129.7]
`);
  t.deepEqual(
    state.frontends.map((f) => [f.key, f.service.portName, f.clusterEndpoints]),
    [
      ['ClusterIP 198.19.0.20:53/TCP', 'dns-tcp', ['198.18.129.7:5353']],
      ['ClusterIP 198.19.0.20:53/UDP', 'dns', ['198.18.129.7:5353']],
      ['ClusterIP 198.19.0.20:80/TCP', 'http', ['198.18.129.7:8080']],
    ],
  );
  t.deepEqual(
    state.backends.map((b) => b.key),
    ['198.18.129.7:5353/TCP', '198.18.129.7:5353/UDP', '198.18.129.7:8080/TCP'],
  );
});

test('slices without the service-name label are reported and ignored; IPv6 and FQDN slices are ignored', (t) => {
  const state = model(
    service('web', '198.19.0.10') +
      `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: orphan, namespace: default}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [198.18.137.9]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-v6, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
ports: [{name: http, port: 8080}]
endpoints: [{addresses: ["2001:db8:1:1::5"]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-fqdn, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: FQDN
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [db.example.com]}]
`,
  );
  t.deepEqual(routing(frontend(state, CIP)), { trafficPolicy: 'Cluster', action: 'reject', clusterEndpoints: [], localEndpoints: [] });
  t.deepEqual(state.problems, [
    { kind: 'EndpointSlice', namespace: 'default', name: 'orphan', reason: 'no kubernetes.io/service-name label; ignored' },
  ]);
});

test('a slice in another namespace does not feed a Service of the same name', (t) => {
  const other = slice('web', 'web-elsewhere', [{ ip: '198.18.129.5' }]).replace('namespace: default', 'namespace: other');
  t.is(frontend(model(service('web', '198.19.0.10') + other), CIP).action, 'reject');
});

test('endpoints with unset conditions count as ready and serving, not terminating', (t) => {
  const state = model(service('web', '198.19.0.10') + slice('web', 'web-a', [{ ip: '198.18.129.5' }]));
  t.deepEqual(routing(frontend(state, CIP)), {
    trafficPolicy: 'Cluster',
    action: 'forward',
    clusterEndpoints: ['198.18.129.5:8080'],
    localEndpoints: [],
  });
});

test('backends include endpoints that are not usable, so established flows keep their entry', (t) => {
  const state = model(
    service('web', '198.19.0.10') +
      slice('web', 'web-a', [
        { ip: '198.18.129.5' },
        { ip: '198.18.129.6', ready: false, serving: true, terminating: true },
        { ip: '198.18.129.7', ready: false, serving: false, terminating: false },
      ]),
  );
  t.deepEqual(frontend(state, CIP).clusterEndpoints, ['198.18.129.5:8080']);
  t.deepEqual(
    state.backends.map((b) => b.key),
    ['198.18.129.5:8080/TCP', '198.18.129.6:8080/TCP', '198.18.129.7:8080/TCP'],
  );
  const [group] = state.services;
  t.deepEqual(group?.backends, [state.backends[0]!.id]);
});
