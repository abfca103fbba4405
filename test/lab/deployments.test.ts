// Deployments → lab pods: parsing, placement across nodes, scaling up and down, re-creation.
import test from 'ava';

import { ownerOf, parseDeployment, planDeletion, planDeployment, type ExistingPod } from '../../ts/lab/file-api/deployments.js';
import { parseManifests } from '../../ts/lab/file-api/manifests.js';
import { hostnamesDeployment } from '../helpers/hostnames.js';

function existing(names: string[], extra: Partial<ExistingPod> = {}): ExistingPod[] {
  return names.map((name) => ({ name, owner: 'Deployment/default/hostnames', ports: [{ port: 9376, protocol: 'TCP' as const }], labels: { app: 'hostnames' }, ...extra }));
}

test('a Deployment parses into pods with its container ports, labels and a short grace period', (t) => {
  const d = parseDeployment(hostnamesDeployment(2, { ports: [{ containerPort: 9376 }, { containerPort: 53, protocol: 'UDP', name: 'dns' } as never] }));
  t.deepEqual(d, {
    name: 'hostnames',
    namespace: 'default',
    replicas: 2,
    selector: { app: 'hostnames' },
    labels: { app: 'hostnames' },
    ports: [{ port: 9376, protocol: 'TCP' }, { port: 53, protocol: 'UDP', name: 'dns' }],
    gracePeriodSeconds: 1,
    hostNetwork: false,
  });
  t.is(ownerOf(d), 'Deployment/default/hostnames');
});

test('a hostNetwork Deployment makes hostNetwork pods; switching it re-creates them', (t) => {
  const dep = hostnamesDeployment(2);
  dep.spec!.template.spec!.hostNetwork = true;
  const d = parseDeployment(dep);
  t.true(d.hostNetwork);
  t.deepEqual(planDeployment(d, [], 2).add.map((p) => [p.name, p.node, p.hostNetwork]), [['hostnames-1', 1, true], ['hostnames-2', 2, true]]);
  t.deepEqual(planDeployment(d, existing(['hostnames-1', 'hostnames-2']), 2).terminate, ['hostnames-1', 'hostnames-2'], 'pod network → hostNetwork');
  t.deepEqual(planDeployment(d, existing(['hostnames-1', 'hostnames-2'], { hostNetwork: true }), 2), { terminate: [], add: [], relabel: [] });
});

test('bad Deployments are refused with the field named', (t) => {
  const noPorts = hostnamesDeployment(1, { ports: [] });
  t.throws(() => parseDeployment(noPorts), { message: /declare at least one/ });
  const mismatch = hostnamesDeployment(1);
  mismatch.spec!.template.metadata!.labels = { app: 'other' };
  t.throws(() => parseDeployment(mismatch), { message: /selector` does not match template `labels`/ });
  t.throws(() => parseDeployment(hostnamesDeployment(-1)), { message: /spec\.replicas/ });
});

test('replicas spread round-robin over the nodes; scaling adds and terminates the highest indices', (t) => {
  const d3 = parseDeployment(hostnamesDeployment(3));
  t.deepEqual(planDeployment(d3, [], 2), {
    terminate: [],
    relabel: [],
    add: [
      { name: 'hostnames-1', node: 1, ports: [{ port: 9376, protocol: 'TCP' }], labels: { app: 'hostnames' } },
      { name: 'hostnames-2', node: 2, ports: [{ port: 9376, protocol: 'TCP' }], labels: { app: 'hostnames' } },
      { name: 'hostnames-3', node: 1, ports: [{ port: 9376, protocol: 'TCP' }], labels: { app: 'hostnames' } },
    ],
  });
  // Up from 1 to 3 adds 2 and 3; down from 3 to 1 terminates 2 and 3.
  t.deepEqual(planDeployment(d3, existing(['hostnames-1']), 2).add.map((p) => p.name), ['hostnames-2', 'hostnames-3']);
  const down = planDeployment(parseDeployment(hostnamesDeployment(1)), existing(['hostnames-3', 'hostnames-1', 'hostnames-2']), 2);
  t.deepEqual(down, { terminate: ['hostnames-2', 'hostnames-3'], add: [], relabel: [] });
  // Same replicas: nothing to do.
  t.deepEqual(planDeployment(d3, existing(['hostnames-1', 'hostnames-2', 'hostnames-3']), 2), { terminate: [], add: [], relabel: [] });
  t.deepEqual(planDeletion('Deployment/default/hostnames', existing(['hostnames-2', 'hostnames-1'])).terminate, ['hostnames-1', 'hostnames-2']);
});

test('new container ports re-create the pods; new labels change them in place; foreign pods are not taken over', (t) => {
  const moved = planDeployment(parseDeployment(hostnamesDeployment(1, { ports: [{ containerPort: 8080 }] })), existing(['hostnames-1']), 2);
  t.deepEqual(moved.terminate, ['hostnames-1']);
  t.deepEqual(moved.add.map((p) => [p.name, p.ports]), [['hostnames-1', [{ port: 8080, protocol: 'TCP' }]]]);
  const relabelled = hostnamesDeployment(1);
  relabelled.spec!.template.metadata!.labels = { app: 'hostnames', tier: 'web' };
  t.deepEqual(planDeployment(parseDeployment(relabelled), existing(['hostnames-1']), 2), { terminate: [], add: [], relabel: [{ name: 'hostnames-1', labels: { app: 'hostnames', tier: 'web' } }] });
  t.throws(() => planDeployment(parseDeployment(hostnamesDeployment(1)), existing(['hostnames-1'], { owner: undefined }), 2), { message: /does not own/ });
});

test('manifests: several documents and Lists; unknown kinds and versions refused', (t) => {
  const text = `apiVersion: apps/v1
kind: Deployment
metadata: {name: a}
spec: {}
---
kind: List
items:
- {apiVersion: v1, kind: Service, metadata: {name: b, namespace: x}}
- {kind: EndpointSlice, metadata: {name: c}}
`;
  t.deepEqual(
    parseManifests(text, 'f.yaml').map((m) => [m.kind, m.object.metadata!.namespace, m.object.metadata!.name, m.object.apiVersion]),
    [
      ['Deployment', 'default', 'a', 'apps/v1'],
      ['Service', 'x', 'b', 'v1'],
      ['EndpointSlice', 'default', 'c', 'discovery.k8s.io/v1'],
    ],
  );
  t.throws(() => parseManifests('kind: Pod\nmetadata: {name: p}\n', 'f.yaml'), { message: /f\.yaml: kind 'Pod' is not something the lab runs/ });
  t.throws(() => parseManifests('apiVersion: v2\nkind: Service\nmetadata: {name: p}\n', 'f.yaml'), { message: /apiVersion 'v2'/ });
  t.throws(() => parseManifests('kind: Service\n', 'f.yaml'), { message: /without metadata\.name/ });
  t.throws(() => parseManifests('a: [\n', 'f.yaml'), { message: /^f\.yaml: / });
});
