/**
 * deploy/base/rbac.yaml against a real apiserver with RBAC on: the agent's ServiceAccount can do all the
 * source needs (the source syncs with its token, the recorder posts and patches Events), each read
 * rule is needed (without it the source is refused and says so), and it is refused what it must not
 * do. That the rules are exactly the code's API calls: test/deploy/manifests.test.ts.
 */
import { readFileSync } from 'node:fs';

import type { ControlPlane } from '../../ts/kube/control-plane.js';
import { KubeSource } from '../../ts/sources/kube-source.js';
import { apply, kubeAfterAlways, kubeBefore, kubeTest, node, recorder, startPlane } from './_fixture.js';
import { eventually } from '../helpers/wait.js';

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

kubeTest('the bpfproxy ServiceAccount syncs a KubeSource and may record events, and nothing else', async (t) => {
  const c = plane();
  const tok = await token('bpfproxy');
  const r = recorder();
  const src = new KubeSource({ kubeConfig: c.kubeConfig(tok, 'bpfproxy'), nodeName: 'node-1', log: (m) => t.log(m) });
  t.teardown(() => src.stop());
  await src.start(r.events);
  await eventually('synced as the ServiceAccount', () => r.synced);
  t.true(r.services.has('default/kubernetes'));
  t.true(r.nodes.has('/node-1'));
  t.true(r.serviceCIDRs.has('/kubernetes'), 'the API server\'s default ServiceCIDR');
  t.deepEqual(r.health, [], 'never refused');

  for (const [verb, resource] of [['create', 'events.events.k8s.io'], ['patch', 'events.events.k8s.io']] as const) {
    t.true(await canI(tok, verb, resource), `may ${verb} ${resource}`);
  }
  // Really record one, and raise its count, as the agent does.
  const results: string[] = [];
  const rec = src.problemRecorder({ nodeName: 'node-1', log: (m, f) => t.log(m, f), onResult: (r) => results.push(r), seriesWindowMs: 60_000 });
  t.teardown(() => rec.stop());
  const problem = { kind: 'Service', namespace: 'default', name: 'kubernetes', reason: 'rbac test problem' } as const;
  rec.observe([problem]);
  await eventually('an Event created', () => results.includes('created'));
  rec.observe([]);
  rec.observe([problem]);
  await eventually('its count raised', () => results.includes('patched'));
  t.deepEqual(results, ['created', 'patched']);

  for (const [verb, resource] of [
    ['list', 'secrets'], ['get', 'secrets'], ['list', 'pods'], ['list', 'configmaps'], ['create', 'services'],
    ['update', 'services'], ['delete', 'endpointslices.discovery.k8s.io'], ['patch', 'nodes'], ['update', 'nodes/status'],
    ['delete', 'events'], ['list', 'endpoints'], ['create', 'events'], ['get', 'services'], ['get', 'nodes'],
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
    { apiGroups: [''], resources: ['services'], verbs: ['list', 'watch'] },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
    { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'] },
    { apiGroups: ['networking.k8s.io'], resources: ['servicecidrs'], verbs: ['list', 'watch'] },
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
    await eventually(`a refusal without rule ${i}`, () => !r.healthy, 15_000);
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
  await eventually('a refusal', () => !r.healthy);
  t.regex(r.health[r.health.length - 1]!.reason ?? '', /forbidden.*HTTP 403/s);
  t.false(r.synced);

  await apply(c, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'bpfproxy-late' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'bpfproxy' },
    subjects: [{ kind: 'ServiceAccount', name: 'bpfproxy-late', namespace: 'kube-system' }],
  });
  await eventually('synced after the binding', () => r.synced && r.healthy, 20_000);
  t.true(r.services.has('default/kubernetes'));
});
