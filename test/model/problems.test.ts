import test from 'ava';

import { frontendKeys, model, service, slice } from './_fixture.js';

// Malformed input never throws: the Service (or only the port) is left out and reported.

const GOOD = service('good', '198.19.0.10') + slice('good', 'good-1', [{ ip: '198.18.130.5' }]);

const cases: [string, string, string, string?][] = [
  ['bad clusterIP', service('bad', '198.19.0.300'), 'clusterIP "198.19.0.300" is not an IP address'],
  ['octal-looking clusterIP', service('bad', '010.96.0.1'), 'clusterIP "010.96.0.1" is not an IP address'],
  ['bad externalIP', service('bad', '198.19.0.11', '  externalIPs: [not-an-ip]'), 'externalIP "not-an-ip" is not an IP address'],
  [
    'invalid source range (fails closed)',
    service('bad', '198.19.0.11', '  type: LoadBalancer\n  loadBalancerSourceRanges: [198.18.0.0/33]'),
    'loadBalancerSourceRange "198.18.0.0/33" is not a CIDR',
  ],
  ['unknown type', service('bad', '198.19.0.11', '  type: Magic'), 'unknown spec.type "Magic"'],
  ['unknown traffic policy', service('bad', '198.19.0.11', '  internalTrafficPolicy: Nearby'), 'unknown internalTrafficPolicy "Nearby"'],
  [
    'affinity timeout out of range',
    service('bad', '198.19.0.11', '  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}'),
    'sessionAffinity timeoutSeconds 0 is outside 1…86400',
  ],
];

for (const [title, yaml, reason] of cases) {
  test(`${title}: that Service is reported and left out, others still work`, (t) => {
    const state = model(yaml + GOOD);
    t.deepEqual(frontendKeys(state), ['ClusterIP 198.19.0.10:80/TCP']);
    t.deepEqual(state.problems, [{ kind: 'Service', namespace: 'default', name: 'bad', reason }]);
  });
}

test('a bad port only drops that port', (t) => {
  const state = model(`
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: default}
spec:
  clusterIP: 198.19.0.12
  ports:
    - {name: ok, port: 80}
    - {name: big, port: 70000}
    - {name: icmp, port: 81, protocol: ICMP}
    - {name: np, port: 82, nodePort: -1}
    - {name: ok, port: 83}
---
${GOOD}`);
  t.deepEqual(frontendKeys(state), ['ClusterIP 198.19.0.10:80/TCP', 'ClusterIP 198.19.0.12:80/TCP']);
  t.deepEqual(state.problems, [
    { kind: 'Service', namespace: 'default', name: 'svc', port: 'big', reason: 'port 70000 is outside 1…65535' },
    { kind: 'Service', namespace: 'default', name: 'svc', port: 'icmp', reason: 'unknown protocol "ICMP"' },
    { kind: 'Service', namespace: 'default', name: 'svc', port: 'np', reason: 'nodePort -1 is outside 1…65535' },
    { kind: 'Service', namespace: 'default', name: 'svc', port: 'ok', reason: 'duplicate port (same name or number and protocol); only the first is used' },
  ]);
});

test('bad endpoints and slice ports are reported; the rest of the slice is used', (t) => {
  const state = model(`
${service('web', '198.19.0.10')}
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {port: 9090}, {name: http, port: 0, protocol: UDP}]
endpoints:
  - addresses: [198.18.130.5]
  - addresses: [198.18.130.500]
  - addresses: []
`);
  t.deepEqual(state.frontends[0]?.clusterEndpoints, ['198.18.130.5:8080']);
  t.deepEqual(
    state.problems.map((p) => p.reason),
    [
      'a port has no name; ignored',
      'endpoint address "198.18.130.500" is not an IPv4 address; ignored',
      'port "http": 0 is outside 1…65535; ignored',
    ],
  );
});

test('a Service listed twice is ambiguous: both copies are left out and reported', (t) => {
  const state = model(service('dup', '198.19.0.20') + service('dup', '198.19.0.21') + GOOD);
  t.deepEqual(frontendKeys(state), ['ClusterIP 198.19.0.10:80/TCP']);
  t.deepEqual(state.problems, [
    { kind: 'Service', namespace: 'default', name: 'dup', reason: 'Service listed more than once; all copies ignored' },
  ]);
});

test('ETP Local load balancer without a healthCheckNodePort: traffic works, no health check, reported', (t) => {
  const state = model(
    service('lb', '198.19.0.30', '  type: LoadBalancer\n  externalTrafficPolicy: Local') + slice('lb', 'lb-1', [{ ip: '198.18.129.5', node: 'node-a' }]),
  );
  t.deepEqual(state.healthChecks, []);
  t.deepEqual(frontendKeys(state), ['ClusterIP 198.19.0.30:80/TCP']);
  t.deepEqual(state.problems.map((p) => p.reason), ['healthCheckNodePort undefined is not a port; no health check served']);
});

test('garbage objects (no spec, no metadata) do not throw', (t) => {
  const state = model(`
apiVersion: v1
kind: Service
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
---
${GOOD}`);
  t.deepEqual(frontendKeys(state), ['ClusterIP 198.19.0.10:80/TCP']);
  t.deepEqual(state.problems.map((p) => [p.kind, p.reason]), [['EndpointSlice', 'no kubernetes.io/service-name label; ignored']]);
});

test('bad config values are reported as Config problems', (t) => {
  const state = model(GOOD, { config: { clusterCIDR: '198.18.128.0/17,nope', maglevTableSize: 1000, snatPortRange: { min: 70000, max: 1 } } });
  t.deepEqual(
    state.problems.map((p) => [p.name, p.reason]),
    [
      ['clusterCIDR', '"nope" is not a CIDR'],
      ['maglevTableSize', 'Maglev table size 1000 is not prime'],
      ['snatPortRange', '70000…1 is not a port range within 1024…65535'],
    ],
  );
  t.is(state.frontends[0]?.masquerade, 'outsideClusterCIDR', 'the valid clusterCIDR part still applies');
});

test('an SCTP port is reported as not served, not dropped without a word; the Service\'s other ports are served', (t) => {
  const yaml = service('sig', '198.19.0.10').replace('      protocol: TCP\n', '      protocol: TCP\n    - name: sctp\n      port: 9999\n      protocol: SCTP\n') + slice('sig', 'sig-1', [{ ip: '198.18.130.5' }]);
  const state = model(yaml);
  t.true(state.problems.some((p) => p.name === 'sig' && p.port === 'sctp' && /SCTP is not served by bpfproxy yet/.test(p.reason)));
  t.true(state.frontends.some((f) => f.key === 'ClusterIP 198.19.0.10:80/TCP'));
});
