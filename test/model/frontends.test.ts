import test from 'ava';

import { frontend, frontendKeys, model, service, slice } from './_fixture.js';

const ENDPOINT = slice('web', 'web-1', [{ ip: '198.18.130.5', node: 'node-b' }]);

const nodePort = (extraSpec = ''): string =>
  service('web', '198.19.0.10', `  type: NodePort\n${extraSpec}`).replace('targetPort: http', 'targetPort: http\n      nodePort: 30080') + ENDPOINT;

test('one frontend per (Service, port, protocol) and address kind', (t) => {
  const state = model(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 198.19.0.10
  clusterIPs: [198.19.0.10]
  externalIPs: [198.18.0.200, 198.18.0.201]
  ports:
    - {name: http, port: 80, nodePort: 30080}
    - {name: dns, port: 53, protocol: UDP, nodePort: 30053}
status:
  loadBalancer:
    ingress: [{ip: 198.19.255.7}, {hostname: lb.example.com}]
---
${ENDPOINT}`);
  t.deepEqual(frontendKeys(state), [
    'ClusterIP 198.19.0.10:53/UDP',
    'ClusterIP 198.19.0.10:80/TCP',
    'ExternalIP 198.18.0.200:53/UDP',
    'ExternalIP 198.18.0.200:80/TCP',
    'ExternalIP 198.18.0.201:53/UDP',
    'ExternalIP 198.18.0.201:80/TCP',
    'LoadBalancer 198.19.255.7:53/UDP',
    'LoadBalancer 198.19.255.7:80/TCP',
    'NodePort 0.0.0.0:30053/UDP',
    'NodePort 0.0.0.0:30080/TCP',
  ]);
  t.deepEqual(
    state.services.map((s) => s.key),
    ['default/web:dns/UDP#external', 'default/web:dns/UDP#internal', 'default/web:http/TCP#external', 'default/web:http/TCP#internal'],
  );
  const http = frontend(state, 'ExternalIP 198.18.0.201:80/TCP');
  t.deepEqual(http.service, { namespace: 'default', name: 'web', portName: 'http', protocol: 'TCP' });
  t.is(http.serviceId, frontend(state, 'NodePort 0.0.0.0:30080/TCP').serviceId, 'external kinds share a group and its Maglev table');
  t.not(http.serviceId, frontend(state, 'ClusterIP 198.19.0.10:80/TCP').serviceId);
});

test('NodePort: one wildcard frontend; node addresses are all non-loopback ones by default', (t) => {
  const state = model(nodePort());
  t.deepEqual(frontend(state, 'NodePort 0.0.0.0:30080/TCP').clusterEndpoints, ['198.18.130.5:8080']);
  t.deepEqual(state.nodePortAddresses, ['198.18.0.10', '198.18.1.10']);
});

test('NodePort: nodePortAddresses CIDRs restrict the node addresses, never to loopback', (t) => {
  t.deepEqual(model(nodePort(), { config: { nodePortAddresses: ['198.18.1.0/24', '127.0.0.0/8'] } }).nodePortAddresses, ['198.18.1.10']);
  t.deepEqual(model(nodePort(), { config: { nodePortAddresses: ['0.0.0.0/0'] } }).nodePortAddresses, ['198.18.0.10', '198.18.1.10']);
  t.deepEqual(model(nodePort(), { config: { nodePortAddresses: ['primary'] } }).nodePortAddresses, ['198.18.0.10']);
  t.deepEqual(model(nodePort(), { config: { nodePortAddresses: ['198.19.0.0/17'] } }).nodePortAddresses, []);
});

test('NodePort: an invalid nodePortAddresses entry is reported and matches nothing (never widens to all)', (t) => {
  const state = model(nodePort(), { config: { nodePortAddresses: ['bogus'] } });
  t.deepEqual(state.nodePortAddresses, []);
  t.deepEqual(state.problems, [{ kind: 'Config', namespace: '', name: 'nodePortAddresses', reason: '"bogus" is not a CIDR' }]);
});

test('LoadBalancer ingress: ipMode VIP or unset is used, Proxy is skipped', (t) => {
  const state = model(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 198.19.0.10
  ports: [{name: http, port: 80, nodePort: 30080}]
status:
  loadBalancer:
    ingress:
      - {ip: 198.19.255.7}
      - {ip: 198.19.255.8, ipMode: VIP}
      - {ip: 198.19.255.9, ipMode: Proxy}
---
${ENDPOINT}`);
  t.deepEqual(
    state.frontends.filter((f) => f.kind === 'LoadBalancer').map((f) => f.address),
    ['198.19.255.7', '198.19.255.8'],
  );
});

test('externalIPs get frontends on the Service port, without any node owning them', (t) => {
  const state = model(service('web', '198.19.0.10', '  externalIPs: [198.19.255.50]') + ENDPOINT);
  const f = frontend(state, 'ExternalIP 198.19.255.50:80/TCP');
  t.deepEqual([f.action, f.maglev, f.masquerade, f.clusterEndpoints], ['forward', true, 'otherNodes', ['198.18.130.5:8080']]);
});

test('sessionAffinity ClientIP: default timeout 10800 s, explicit timeout kept, None means no affinity', (t) => {
  const byDefault = model(service('web', '198.19.0.10', '  sessionAffinity: ClientIP') + ENDPOINT);
  t.deepEqual(frontend(byDefault, 'ClusterIP 198.19.0.10:80/TCP').sessionAffinity, { timeoutSeconds: 10800 });
  t.deepEqual(byDefault.services[0]!.sessionAffinity, { timeoutSeconds: 10800 });
  const explicit = model(
    service('web', '198.19.0.10', '  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}') + ENDPOINT,
  );
  t.deepEqual(frontend(explicit, 'ClusterIP 198.19.0.10:80/TCP').sessionAffinity, { timeoutSeconds: 60 });
  const none = model(service('web', '198.19.0.10', '  sessionAffinity: None') + ENDPOINT);
  t.is(frontend(none, 'ClusterIP 198.19.0.10:80/TCP').sessionAffinity, null);
});

test('loadBalancerSourceRanges: normalized, sorted, on LoadBalancer frontends only', (t) => {
  const state = model(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 198.19.0.10
  loadBalancerSourceRanges: [" 198.18.1.0/24", 198.19.2.3/15]
  externalIPs: [198.18.0.200]
  ports: [{name: http, port: 80, nodePort: 30080}]
status: {loadBalancer: {ingress: [{ip: 198.19.255.7}]}}
---
${ENDPOINT}`);
  t.deepEqual(frontend(state, 'LoadBalancer 198.19.255.7:80/TCP').loadBalancerSourceRanges, ['198.18.0.0/15', '198.18.1.0/24']);
  // kube-proxy filters only the LB IP; NodePort and externalIPs stay open.
  t.deepEqual(frontend(state, 'NodePort 0.0.0.0:30080/TCP').loadBalancerSourceRanges, []);
  t.deepEqual(frontend(state, 'ExternalIP 198.18.0.200:80/TCP').loadBalancerSourceRanges, []);
});

test('masquerade: ClusterIP from outside clusterCIDR, everything with masqueradeAll, none without a clusterCIDR', (t) => {
  const yaml = service('web', '198.19.0.10') + ENDPOINT;
  const cip = 'ClusterIP 198.19.0.10:80/TCP';
  const rules = (config: Record<string, unknown>, key = cip) => {
    const f = frontend(model(yaml, { config }), key);
    return [f.masquerade, f.detectLocal];
  };
  t.deepEqual(rules({}), ['none', false], "kube-proxy's default: no local-traffic detector, no masquerade by source");
  t.deepEqual(rules({ clusterCIDR: '198.18.128.0/17' }), ['outsideClusterCIDR', true]);
  t.deepEqual(rules({ clusterCIDR: '198.18.128.0/17', masqueradeAll: true }), ['all', true]);
  t.deepEqual(rules({ masqueradeAll: true }), ['all', false]);
});

test('masqueradeAll concerns ClusterIP traffic only: never ETP Local, and ETP Cluster keeps its own rule', (t) => {
  const yaml = nodePort('  externalTrafficPolicy: Local');
  const state = model(yaml, { config: { clusterCIDR: '198.18.128.0/17', masqueradeAll: true } });
  t.is(frontend(state, 'NodePort 0.0.0.0:30080/TCP').masquerade, 'none');
  t.true(frontend(state, 'NodePort 0.0.0.0:30080/TCP').detectLocal, 'cluster sources reaching an ETP Local NodePort are told apart');
  t.is(frontend(state, 'ClusterIP 198.19.0.10:80/TCP').masquerade, 'all');
});

test('an IPv6 cluster IP of a dual-stack Service is set aside with a note; the IPv4 one works', (t) => {
  const state = model(
    service('web', '198.19.0.10', '  clusterIPs: [198.19.0.10, "2001:db8:ffff::a"]\n  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: PreferDualStack') + ENDPOINT,
  );
  t.deepEqual(frontendKeys(state), ['ClusterIP 198.19.0.10:80/TCP']);
  t.deepEqual(state.problems, [
    { kind: 'Service', namespace: 'default', name: 'web', reason: 'clusterIP 2001:db8:ffff::a skipped: IPv6 is not supported yet' },
  ]);
});

test('an IPv6-only Service has nothing for the IPv4 dataplane', (t) => {
  const state = model(service('web', '"2001:db8:ffff::a"'));
  t.deepEqual(state.frontends, []);
  t.is(state.problems.length, 1);
});

test('two Services claiming the same externalIP:port, neither with a creation time: the first by name wins (a tie-break only), the other is reported', (t) => {
  const state = model(
    service('alpha', '198.19.0.10', '  externalIPs: [198.18.0.200]') +
      service('beta', '198.19.0.11', '  externalIPs: [198.18.0.200]') +
      slice('alpha', 'alpha-1', [{ ip: '198.18.130.5' }]) +
      slice('beta', 'beta-1', [{ ip: '198.18.130.6' }]),
  );
  t.deepEqual(frontend(state, 'ExternalIP 198.18.0.200:80/TCP').service.name, 'alpha');
  t.deepEqual(state.problems, [
    {
      kind: 'Service',
      namespace: 'default',
      name: 'beta',
      port: 'http',
      reason: 'ExternalIP frontend 198.18.0.200:80/TCP is already used by default/alpha:http/TCP; ignored',
    },
  ]);
  t.false(state.services.some((s) => s.key === 'default/beta:http/TCP#external'), 'a group left without frontends is dropped');
});

const created = (at: string, uid: string) => `  creationTimestamp: '${at}'\n  uid: ${uid}`;

test('frontend conflicts go to the older Service (creationTimestamp, then uid), never to the name', (t) => {
  const yaml = (zuluAt: string, alphaAt: string) =>
    service('zulu', '198.19.0.10', '  externalIPs: [198.19.255.50]', created(zuluAt, 'u-zulu')) +
    service('alpha', '198.19.0.11', '  externalIPs: [198.19.255.50]', created(alphaAt, 'u-alpha')) +
    slice('zulu', 'zulu-1', [{ ip: '198.18.130.5' }]) +
    slice('alpha', 'alpha-1', [{ ip: '198.18.130.6' }]);
  const winner = (state: ReturnType<typeof model>) => frontend(state, 'ExternalIP 198.19.255.50:80/TCP').service.name;
  t.is(winner(model(yaml('2026-01-01T00:00:00Z', '2026-06-01T00:00:00Z'))), 'zulu', 'the older one, whatever its name');
  t.is(winner(model(yaml('2026-06-01T00:00:00Z', '2026-01-01T00:00:00Z'))), 'alpha');
  t.is(winner(model(yaml('2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'))), 'alpha', 'same second: the uid decides (u-alpha < u-zulu)');
});

test("an externalIP naming another Service's ClusterIP never takes it, however old: allocated addresses first", (t) => {
  const state = model(
    service('victim', '198.19.0.10', '', created('2026-06-01T00:00:00Z', 'u-victim')) +
      service('thief', '198.19.0.11', '  externalIPs: [198.19.0.10]', created('2020-01-01T00:00:00Z', 'u-thief')) +
      slice('victim', 'victim-1', [{ ip: '198.18.130.5' }]) +
      slice('thief', 'thief-1', [{ ip: '198.18.130.6' }]),
  );
  t.is(frontend(state, 'ClusterIP 198.19.0.10:80/TCP').service.name, 'victim');
  t.false(frontendKeys(state).includes('ExternalIP 198.19.0.10:80/TCP'));
  t.true(state.problems.some((p) => p.name === 'thief' && /ExternalIP frontend 198\.19\.0\.10:80\/TCP refused: 198\.19\.0\.10 is the ClusterIP of default\/victim/.test(p.reason)));
});
