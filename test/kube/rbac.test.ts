/**
 * deploy/base/rbac.yaml against a real apiserver with RBAC on: the agent's ServiceAccount can do all the
 * source needs (the source syncs with its token), each read rule is needed (without it the source
 * is refused and says so), and it is refused what it must not do.
 */
import { readFileSync } from 'node:fs';

import { parseAllDocuments } from 'yaml';

import type { ControlPlane } from '../../ts/kube/control-plane.js';
import { KubeSource } from '../../ts/sources/kube-source.js';
import { apply, kubeAfterAlways, kubeBefore, kubeTest, node, recorder, startPlane, waitFor } from './support.js';

const RBAC = new URL('../../deploy/base/rbac.yaml', import.meta.url);
let cp: ControlPlane | undefined;

kubeBefore(async (t) => {
  cp = await startPlane(t);
  await cp.kubectl(['apply', '-f', '-'], { input: readFileSync(RBAC, 'utf8') });
  await apply(cp, node('node-1', 'zone-a'));
});
kubeAfterAlways(async () => {
  await cp?.stop();
});

function plane(): ControlPlane {
  if (!cp) throw new Error('no control plane');
  return cp;
}

const token = async (sa: string) => (await plane().kubectl(['create', 'token', sa, '-n', 'kube-system', '--duration=1h'])).trim();

async function canI(tok: string, verb: string, resource: string): Promise<boolean> {
  const out = await plane()
    .kubectl(['auth', 'can-i', verb, resource, '--all-namespaces', `--token=${tok}`])
    .catch((e: Error) => e.message);
  return /^yes\s*$/m.test(out);
}

kubeTest('the ClusterRole holds exactly the rules the agent needs', (t) => {
  const docs = parseAllDocuments(readFileSync(RBAC, 'utf8')).map((d) => d.toJS() as { kind: string; rules?: unknown[] });
  const role = docs.find((d) => d.kind === 'ClusterRole')!;
  const norm = (role.rules as Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>)
    .flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`))))
    .sort();
  t.deepEqual(
    norm,
    [
      '/events:create', '/events:patch', '/nodes:get', '/nodes:list', '/nodes:watch',
      '/services:get', '/services:list', '/services:watch',
      'discovery.k8s.io/endpointslices:get', 'discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch',
      'events.k8s.io/events:create', 'events.k8s.io/events:patch',
      'networking.k8s.io/servicecidrs:get', 'networking.k8s.io/servicecidrs:list', 'networking.k8s.io/servicecidrs:watch',
    ].sort(),
  );
});

kubeTest('the bpfproxy ServiceAccount syncs a KubeSource and may record events, and nothing else', async (t) => {
  const c = plane();
  const tok = await token('bpfproxy');
  const r = recorder();
  const src = new KubeSource({ kubeConfig: c.kubeConfig(tok, 'bpfproxy'), nodeName: 'node-1', log: (m) => t.log(m) });
  t.teardown(() => src.stop());
  await src.start(r.events);
  await waitFor('synced as the ServiceAccount', () => r.synced);
  t.true(r.services.has('default/kubernetes'));
  t.true(r.nodes.has('/node-1'));
  t.true(r.serviceCIDRs.has('/kubernetes'), 'the API server\'s default ServiceCIDR');
  t.deepEqual(r.health, [], 'never refused');

  for (const [verb, resource] of [
    ['create', 'events'], ['patch', 'events'], ['create', 'events.events.k8s.io'], ['patch', 'events.events.k8s.io'],
  ] as const) {
    t.true(await canI(tok, verb, resource), `may ${verb} ${resource}`);
  }
  // Really record one, as the agent will.
  await c.kubectl(['create', '-n', 'default', '-f', '-', `--token=${tok}`], {
    input: JSON.stringify({
      apiVersion: 'events.k8s.io/v1', kind: 'Event',
      metadata: { name: 'bpfproxy-test.1', namespace: 'default' },
      eventTime: new Date().toISOString().replace('Z', '000Z'), reportingController: 'bpfproxy', reportingInstance: 'node-1',
      action: 'Sync', reason: 'Test', type: 'Normal', regarding: { kind: 'Node', name: 'node-1', apiVersion: 'v1' },
    }),
  });

  for (const [verb, resource] of [
    ['list', 'secrets'], ['get', 'secrets'], ['list', 'pods'], ['list', 'configmaps'], ['create', 'services'],
    ['update', 'services'], ['delete', 'endpointslices.discovery.k8s.io'], ['patch', 'nodes'], ['update', 'nodes/status'],
    ['delete', 'events'], ['list', 'endpoints'],
  ] as const) {
    t.false(await canI(tok, verb, resource), `may not ${verb} ${resource}`);
  }
  // And a real request is refused with 403.
  const err = await t.throwsAsync(c.kubectl(['get', 'secrets', '-A', `--token=${tok}`]));
  t.regex(err?.message ?? '', /Forbidden|forbidden/);
});

kubeTest('each read rule is needed: without it the source is refused, says so, and does not sync', async (t) => {
  const c = plane();
  const rules = [
    { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['networking.k8s.io'], resources: ['servicecidrs'], verbs: ['get', 'list', 'watch'] },
  ];
  const checks = rules.map(async (_, i) => {
    const name = `bpfproxy-without-${i}`;
    await apply(
      c,
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: 'kube-system' } },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules: rules.filter((__, j) => j !== i) },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
        subjects: [{ kind: 'ServiceAccount', name, namespace: 'kube-system' }],
      },
    );
    const r = recorder();
    const src = new KubeSource({ kubeConfig: c.kubeConfig(await token(name), name), nodeName: 'node-1', fatalRetryMs: 500 });
    t.teardown(() => src.stop());
    await src.start(r.events);
    await waitFor(`a refusal without rule ${i}`, () => !r.healthy, 15_000);
    t.regex(r.health[r.health.length - 1]!.reason ?? '', /HTTP 403.*RBAC/, `rule ${i}`);
    t.false(r.synced, `never synced without rule ${i}`);
  });
  await Promise.all(checks);
});

kubeTest('a 403 is reported, retried slowly, and heals once RBAC is fixed', async (t) => {
  const c = plane();
  await apply(c, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'bpfproxy-late', namespace: 'kube-system' } });
  const r = recorder();
  const src = new KubeSource({ kubeConfig: c.kubeConfig(await token('bpfproxy-late'), 'late'), nodeName: 'node-1', fatalRetryMs: 1000 });
  t.teardown(() => src.stop());
  await src.start(r.events);
  await waitFor('a refusal', () => !r.healthy);
  t.regex(r.health[r.health.length - 1]!.reason ?? '', /forbidden.*HTTP 403/s);
  t.false(r.synced);

  await apply(c, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'bpfproxy-late' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'bpfproxy' },
    subjects: [{ kind: 'ServiceAccount', name: 'bpfproxy-late', namespace: 'kube-system' }],
  });
  await waitFor('synced after the binding', () => r.synced && r.healthy, 20_000);
  t.true(r.services.has('default/kubernetes'));
});
