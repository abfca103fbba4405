// Every kind of problem the model reports has a stable CamelCase name: the reason of its Kubernetes
// Event (ts/sources/kube-events.ts), which users filter and alert on. Made from real model runs, so
// that a reworded message that loses its name fails here.
import test from 'ava';

import { admitService } from '../../ts/sources/admit.js';
import { problemReason, type Problem } from '../../ts/model/index.js';
import { model, service, slice } from './_fixture.js';

const reasons = (problems: readonly Problem[]) => [...new Set(problems.map(problemReason))].sort();

test('conflicts, refusals, duplicates, unsupported features, bad ports and config each have their name', (t) => {
  const state = model(
    service('victim', '198.19.0.10') +
      service('thief', '198.19.0.11', '  externalIPs: [198.19.0.10]') +
      service('twin', '198.19.0.12', '  externalIPs: [198.19.255.1]') +
      service('twin2', '198.19.0.13', '  externalIPs: [198.19.255.1]') +
      service('dup', '198.19.0.14') +
      service('dup', '198.19.0.15') +
      service('sctp', '198.19.0.16').replace('protocol: TCP', 'protocol: SCTP') +
      service('v6', '198.19.0.17', '  clusterIPs: [198.19.0.17, "2001:db8::17"]') +
      service('badport', '198.19.0.18').replace('  ports:\n', '  ports:\n    - {name: http, port: 80, protocol: TCP}\n') +
      slice('victim', 'victim-1', [{ ip: '198.18.130.5' }]),
    { config: { nodePortAddresses: ['not-a-cidr'] } },
  );
  const named = new Map(state.problems.map((p) => [`${p.name}: ${p.reason}`, problemReason(p)]));
  t.log([...named].map(([k, v]) => `${v}  ${k}`).join('\n'));
  t.deepEqual(reasons(state.problems), ['Duplicate', 'FrontendConflict', 'FrontendRefused', 'Invalid', 'InvalidConfiguration', 'Unsupported']);
  t.is(problemReason(state.problems.find((p) => p.name === 'thief')!), 'FrontendRefused');
  t.is(problemReason(state.problems.find((p) => p.name === 'twin')!), 'FrontendConflict');
  t.is(problemReason(state.problems.find((p) => p.name === 'sctp')!), 'Unsupported');
  t.is(problemReason(state.problems.find((p) => p.name === 'v6')!), 'Unsupported');
  t.is(problemReason(state.problems.find((p) => p.name === 'badport')!), 'Invalid');
});

test('set aside at admission: Rejected; health-check node port conflicts and the model guard have their own', (t) => {
  const admitted = admitService({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'bad', namespace: 'default' }, spec: { ports: '80' } } as never);
  t.false(admitted.ok);
  t.is(problemReason((admitted as { problem: Problem }).problem), 'Rejected');
  const hc = (name: string, ip: string) =>
    service(name, ip, '  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 32000').replace('targetPort: http', 'targetPort: http\n      nodePort: 3008' + ip.slice(-1));
  const state = model(hc('a', '198.19.0.21') + hc('b', '198.19.0.22'));
  t.deepEqual(reasons(state.problems), ['HealthCheckNodePortConflict']);
  t.is(problemReason({ kind: 'Service', namespace: 'x', name: 'y', reason: 'could not be used (boom); left out' }), 'Unusable');
  t.is(problemReason({ kind: 'Config', namespace: '', name: 'service ids', reason: 'no service id left for x' }), 'CapacityExceeded');
});
