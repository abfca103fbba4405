// Frontends no Service may have, whoever claims first (ts/model/refusals.ts): another Service's
// ClusterIP as an externalIP or LoadBalancer IP, a node address on a port the agent serves there
// (healthz, metrics, health-check node ports) or on another Service's NodePort. Each is refused
// and reported; the rest of the Service, and node addresses on other ports, stay served.
import test from 'ava';

import type { AgentPort } from '../../ts/model/index.js';
import { frontendKeys, model, slice } from './_fixture.js';

const HEALTHZ: AgentPort = { address: '0.0.0.0', port: 10256, what: 'healthz' };
// NODE (helpers.ts) has 198.18.0.10 and 198.18.1.10.
const NODE_IP = '198.18.0.10';

interface Spec {
  ports?: string[];
  type?: string;
  externalIPs?: string[];
  lbIP?: string;
  extra?: string;
}

/** A Service `name` with ClusterIP `clusterIP`; ports as YAML flow mappings. */
function svc(name: string, clusterIP: string, spec: Spec = {}): string {
  const ports = spec.ports ?? ['{name: http, port: 80, targetPort: 8080}'];
  return `
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  type: ${spec.type ?? 'ClusterIP'}
  clusterIP: ${clusterIP}
  ports: [${ports.join(', ')}]
${spec.externalIPs ? `  externalIPs: [${spec.externalIPs.join(', ')}]\n` : ''}${spec.extra ?? ''}${spec.lbIP ? `status: {loadBalancer: {ingress: [{ip: ${spec.lbIP}}]}}\n` : ''}---
${slice(name, `${name}-1`, [{ ip: `198.18.130.${name.length}` }])}
---`;
}

const reasons = (state: ReturnType<typeof model>, name: string): string[] => state.problems.filter((p) => p.name === name).map((p) => p.reason);

test("an externalIP or LoadBalancer IP that is another Service's ClusterIP is refused on every port, not only the ClusterIP's", (t) => {
  const state = model(
    svc('victim', '198.19.0.10') +
      svc('thief', '198.19.0.11', { type: 'LoadBalancer', ports: ['{name: http, port: 8080, targetPort: 8080, nodePort: 30090}'], externalIPs: ['198.19.0.10', '198.19.255.1'], lbIP: '198.19.0.10' }),
  );
  const keys = frontendKeys(state);
  t.true(keys.includes('ClusterIP 198.19.0.10:80/TCP'), 'the victim keeps its ClusterIP');
  t.false(keys.includes('ExternalIP 198.19.0.10:8080/TCP'));
  t.false(keys.includes('LoadBalancer 198.19.0.10:8080/TCP'));
  t.true(keys.includes('ExternalIP 198.19.255.1:8080/TCP'), "the thief's other frontends are served");
  t.deepEqual(reasons(state, 'thief'), [
    'ExternalIP frontend 198.19.0.10:8080/TCP refused: 198.19.0.10 is the ClusterIP of default/victim',
    'LoadBalancer frontend 198.19.0.10:8080/TCP refused: 198.19.0.10 is the ClusterIP of default/victim',
  ]);
  t.deepEqual(reasons(state, 'victim'), []);
});

test("a node address as externalIP on the agent's healthz port is refused; on other ports, or UDP, it stays valid (as with kube-proxy)", (t) => {
  const state = model(
    svc('hostile', '198.19.0.11', {
      ports: ['{name: h, port: 10256, targetPort: 8080}', '{name: web, port: 8080, targetPort: 8080}', '{name: u, port: 10256, protocol: UDP, targetPort: 8080}'],
      externalIPs: [NODE_IP],
    }),
    { config: { agentPorts: [HEALTHZ] } },
  );
  const keys = frontendKeys(state);
  t.false(keys.includes(`ExternalIP ${NODE_IP}:10256/TCP`));
  t.true(keys.includes(`ExternalIP ${NODE_IP}:8080/TCP`));
  t.true(keys.includes(`ExternalIP ${NODE_IP}:10256/UDP`), 'the agent serves TCP only');
  t.deepEqual(reasons(state, 'hostile'), [`ExternalIP frontend ${NODE_IP}:10256/TCP refused: ${NODE_IP}:10256 is where the agent serves healthz on the node`]);
  // Without the agent's port in the config, nothing is refused: the rule is the agent's socket.
  t.true(frontendKeys(model(svc('hostile', '198.19.0.11', { ports: ['{name: h, port: 10256, targetPort: 8080}'], externalIPs: [NODE_IP] }))).includes(`ExternalIP ${NODE_IP}:10256/TCP`));
});

test('metrics bound on one node address: that address:port is refused, the other node address is not', (t) => {
  const state = model(svc('hostile', '198.19.0.11', { ports: ['{name: m, port: 10249, targetPort: 8080}'], type: 'LoadBalancer', lbIP: NODE_IP, externalIPs: ['198.18.1.10'], extra: '' }), {
    config: { agentPorts: [{ address: NODE_IP, port: 10249, what: 'metrics' }] },
  });
  const keys = frontendKeys(state);
  t.false(keys.includes(`LoadBalancer ${NODE_IP}:10249/TCP`));
  t.true(keys.includes('ExternalIP 198.18.1.10:10249/TCP'));
  t.deepEqual(reasons(state, 'hostile'), [`LoadBalancer frontend ${NODE_IP}:10249/TCP refused: ${NODE_IP}:10249 is where the agent serves metrics on the node`]);
});

test("a node address as externalIP on another Service's health-check node port is refused", (t) => {
  const local = svc('local', '198.19.0.10', {
    type: 'LoadBalancer',
    ports: ['{name: http, port: 80, targetPort: 8080, nodePort: 30080}'],
    extra: '  externalTrafficPolicy: Local\n  healthCheckNodePort: 32000\n',
    lbIP: '198.19.255.7',
  });
  const state = model(local + svc('hostile', '198.19.0.11', { ports: ['{name: hc, port: 32000, targetPort: 8080}'], externalIPs: [NODE_IP, '198.19.255.9'] }));
  t.deepEqual(state.healthChecks.map((h) => h.port), [32000]);
  t.false(frontendKeys(state).includes(`ExternalIP ${NODE_IP}:32000/TCP`));
  t.true(frontendKeys(state).includes('ExternalIP 198.19.255.9:32000/TCP'), 'not a node address: no health check there');
  t.deepEqual(reasons(state, 'hostile'), [`ExternalIP frontend ${NODE_IP}:32000/TCP refused: ${NODE_IP} is a node address and 32000 the health-check node port of default/local`]);
});

test("a node address as externalIP on another Service's NodePort is refused (the exact frontend would shadow the NodePort's wildcard)", (t) => {
  const victim = svc('victim', '198.19.0.10', { type: 'NodePort', ports: ['{name: http, port: 80, targetPort: 8080, nodePort: 30080}'] });
  const hostile = svc('hostile', '198.19.0.11', { ports: ['{name: np, port: 30080, targetPort: 8080}'], externalIPs: [NODE_IP, '198.18.1.10'] });
  const state = model(victim + hostile);
  t.true(frontendKeys(state).includes('NodePort 0.0.0.0:30080/TCP'));
  t.false(frontendKeys(state).some((k) => k.startsWith('ExternalIP') && k.endsWith(':30080/TCP')));
  t.deepEqual(reasons(state, 'hostile'), [
    `ExternalIP frontend ${NODE_IP}:30080/TCP refused: ${NODE_IP} is a node address and 30080/TCP the NodePort of default/victim`,
    'ExternalIP frontend 198.18.1.10:30080/TCP refused: 198.18.1.10 is a node address and 30080/TCP the NodePort of default/victim',
  ]);
  // A node address where NodePorts do not answer (nodePortAddresses) shadows nothing: valid.
  const narrowed = model(victim + hostile, { config: { nodePortAddresses: ['198.18.0.0/24'] } });
  t.true(frontendKeys(narrowed).includes('ExternalIP 198.18.1.10:30080/TCP'));
  t.false(frontendKeys(narrowed).includes(`ExternalIP ${NODE_IP}:30080/TCP`));
});

test('a hand-written nodePort on the agent\'s healthz port is refused; the Service keeps its ClusterIP', (t) => {
  const state = model(svc('hostile', '198.19.0.11', { type: 'NodePort', ports: ['{name: http, port: 80, targetPort: 8080, nodePort: 10256}'] }), { config: { agentPorts: [HEALTHZ] } });
  t.deepEqual(frontendKeys(state), ['ClusterIP 198.19.0.11:80/TCP']);
  t.deepEqual(reasons(state, 'hostile'), ['NodePort frontend 0.0.0.0:10256/TCP refused: port 10256 is where the agent serves healthz on the node']);
});

test('a refused frontend never wins, even against a younger claim on the same key', (t) => {
  // victim (ClusterIP 198.19.0.10) and two externalIP claims on 198.19.255.1:80; the older claimant
  // is refused on another frontend only, so it still wins this one.
  const state = model(
    svc('victim', '198.19.0.10') +
      svc('older', '198.19.0.11', { externalIPs: ['198.19.0.10', '198.19.255.1'], extra: '' }).replace('namespace: default}', "namespace: default, creationTimestamp: '2020-01-01T00:00:00Z', uid: a}") +
      svc('younger', '198.19.0.12', { externalIPs: ['198.19.255.1'] }).replace('namespace: default}', "namespace: default, creationTimestamp: '2026-01-01T00:00:00Z', uid: b}"),
  );
  t.is(state.frontends.find((f) => f.key === 'ExternalIP 198.19.255.1:80/TCP')?.service.name, 'older');
  t.deepEqual(reasons(state, 'older'), ['ExternalIP frontend 198.19.0.10:80/TCP refused: 198.19.0.10 is the ClusterIP of default/victim']);
  t.deepEqual(reasons(state, 'younger'), ['ExternalIP frontend 198.19.255.1:80/TCP is already used by default/older:http/TCP; ignored']);
});
