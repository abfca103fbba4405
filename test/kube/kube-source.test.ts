/**
 * KubeSource against a real etcd + kube-apiserver: initial sync, changes, 410 Gone relists that
 * notice deletions, an apiserver outage (degraded, then converged) and a silently stalled watch.
 * Serial: tests stop and pause the shared apiserver.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import type { ExecutionContext } from 'ava';

import type { ControlPlane } from '../../ts/kube/control-plane.js';
import { KubeSource, type KubeSourceOptions } from '../../ts/sources/kube-source.js';
import {
  apply,
  CuttableProxy,
  kubeAfterAlways,
  kubeBefore,
  kubeTest,
  node,
  recorder,
  sameState,
  serverState,
  service,
  slice,
  startPlane,
} from './_fixture.js';
import { eventually } from '../helpers/wait.js';

let cp: ControlPlane | undefined;

kubeBefore(async (t) => {
  cp = await startPlane(t);
  await cp.kubectl(['create', 'namespace', 'ks']);
  await apply(cp, node('node-1', 'zone-a'), node('node-2', 'zone-b'));
});

kubeAfterAlways(async () => {
  await cp?.stop();
});

function plane(): ControlPlane {
  if (!cp) throw new Error('no control plane');
  return cp;
}

/** A source with test-sized timers, stopped when the test ends. */
function startSource(t: ExecutionContext, r: ReturnType<typeof recorder>, opts: Partial<KubeSourceOptions> = {}): KubeSource {
  const src = new KubeSource({
    kubeConfig: plane().kubeConfig(),
    nodeName: 'node-1',
    backoffInitialMs: 200,
    backoffMaxMs: 1000,
    fatalRetryMs: 1000,
    requestTimeoutMs: 5000,
    log: (m) => t.log(m),
    ...opts,
  });
  t.teardown(() => src.stop());
  void src.start(r.events);
  return src;
}

async function converged(r: ReturnType<typeof recorder>): Promise<boolean> {
  return (
    sameState(r.services, await serverState(plane(), 'services')) &&
    sameState(r.slices, await serverState(plane(), 'endpointslices.discovery.k8s.io'))
  );
}

kubeTest('existing Services, EndpointSlices and the own Node are listed before synced; changes follow with their previous object', async (t) => {
  const c = plane();
  await apply(c, service('ks', 'web'), service('ks', 'db', 5432), slice('ks', 'web-1', 'web', ['198.18.129.1', '198.18.129.2']));
  const r = recorder();
  startSource(t, r);
  await eventually('synced', () => r.synced);
  const before = r.beforeSynced();
  t.true(before.includes('service add ks/web'), before.join('\n'));
  t.true(before.includes('service add ks/db'));
  t.true(before.includes('service add default/kubernetes'));
  t.true(before.includes('slice add ks/web-1'));
  t.deepEqual(
    before.filter((l) => l.startsWith('node')),
    ['node add /node-1'],
    'only this node is watched',
  );
  t.true(await converged(r));

  await apply(c, service('ks', 'web', 8080, { tier: 'front' }), service('ks', 'cache', 6379), slice('ks', 'web-1', 'web', ['198.18.129.1']));
  await c.kubectl(['delete', 'service', '-n', 'ks', 'db']);
  await c.kubectl(['label', 'node', 'node-1', 'bpfproxy.test/changed=yes']);
  await c.kubectl(['label', 'node', 'node-2', 'bpfproxy.test/changed=yes']);
  await eventually('the changes', () =>
    ['service update ks/web', 'service add ks/cache', 'slice update ks/web-1', 'service delete ks/db', 'node update /node-1'].every((l) =>
      r.log.includes(l),
    ),
  );
  const web = r.services.get('ks/web') as { metadata: { labels?: Record<string, string> }; spec: { ports: { port: number }[] } };
  t.is(web.spec.ports[0]!.port, 8080, 'the update is delivered');
  t.is(web.metadata.labels, undefined, 'as a slim copy: a label the agent never reads is not held');
  t.is((r.slices.get('ks/web-1') as { endpoints: unknown[] }).endpoints.length, 1);
  t.false(r.log.some((l) => l.includes('node-2')), 'other nodes are not watched');
  t.false(r.log.some((l) => l.includes('previous mismatch')), r.log.join('\n'));
  t.deepEqual(r.health, [], 'never unhealthy');
  t.true(await converged(r));
});

kubeTest('a 410 Gone relist turns objects deleted while the watch was down into delete events', async (t) => {
  t.timeout(2 * 60_000);
  const c = plane();
  await apply(c, service('ks', 'doomed'), slice('ks', 'doomed-1', 'doomed', ['198.18.130.1']), service('ks', 'keeper'));
  const proxy = await CuttableProxy.start(c.apiPort);
  t.teardown(() => proxy.close());
  const kc = c.kubeConfig();
  kc.clusters[0] = { ...kc.clusters[0]!, server: `https://127.0.0.1:${proxy.port}` };
  const r = recorder();
  const src = startSource(t, r, { kubeConfig: kc });
  await eventually('synced', () => r.synced);
  t.true(r.services.has('ks/doomed'));

  // The source is cut off; meanwhile objects go and come, etcd's history is compacted and the
  // apiserver restarts (an empty watch cache): the old resourceVersion can only get 410.
  proxy.setCut(true);
  await eventually('the source to notice the cut', () => !r.healthy);
  await c.kubectl(['delete', 'service', '-n', 'ks', 'doomed']);
  await c.kubectl(['delete', 'endpointslice', '-n', 'ks', 'doomed-1']);
  await apply(c, service('ks', 'newcomer'));
  await c.stopApiServer();
  await c.compactEtcd();
  await c.startApiServer();
  const goneBefore = src.stats.relists.Service.gone + src.stats.relists.EndpointSlice.gone;
  proxy.setCut(false);

  await eventually('the deletions and the addition', () =>
    ['service delete ks/doomed', 'slice delete ks/doomed-1', 'service add ks/newcomer'].every((l) => r.log.includes(l)),
  30_000);
  t.true(src.stats.relists.Service.gone + src.stats.relists.EndpointSlice.gone > goneBefore, 'relisted because of 410 Gone');
  t.true(r.services.has('ks/keeper'));
  await eventually('healthy again', () => r.healthy);
  t.true(await converged(r));
  t.false(r.log.some((l) => l.includes('previous mismatch')));
});

kubeTest('while the apiserver is stopped the source is unhealthy; after it returns it converges on changes made meanwhile', async (t) => {
  t.timeout(2 * 60_000);
  const c = plane();
  const r = recorder();
  startSource(t, r);
  await eventually('synced', () => r.synced);

  await c.stopApiServer();
  await eventually('health(false)', () => !r.healthy, 10_000);
  const down = r.health[r.health.length - 1]!;
  t.regex(down.reason ?? '', /ECONNREFUSED|ECONNRESET|socket hang up/, 'the reason says the apiserver is unreachable');
  await sleep(6000);
  t.false(r.healthy, 'still unhealthy while down');

  await c.startApiServer();
  // Changes right away, racing the source's reconnection (it may still be in backoff).
  await c.kubectl(['delete', 'service', '-n', 'ks', 'keeper']);
  await apply(c, service('ks', 'after-outage'), slice('ks', 'after-outage-1', 'after-outage', ['198.18.131.1']));
  await eventually('health(true)', () => r.healthy, 15_000);
  await eventually('convergence', () => converged(r), 15_000);
  t.true(r.services.has('ks/after-outage'));
  t.false(r.services.has('ks/keeper'));
  t.true(r.slices.has('ks/after-outage-1'));
});

kubeTest('a silently stalled watch (apiserver frozen, connection open) is detected and restarted', async (t) => {
  t.timeout(2 * 60_000);
  const c = plane();
  const r = recorder();
  const src = startSource(t, r, { stallMs: 3000, requestTimeoutMs: 3000 });
  await eventually('synced', () => r.synced);
  t.teardown(() => c.pauseApiServer(false));

  c.pauseApiServer(true);
  await eventually('a stall to be detected', () => src.stats.stalls.Service > 0 && !r.healthy, 15_000);
  t.regex(r.health[r.health.length - 1]!.reason ?? '', /stalled|timed out/);
  c.pauseApiServer(false);
  await apply(c, service('ks', 'after-stall'));
  await eventually('recovery', () => r.healthy && r.services.has('ks/after-stall'), 20_000);
  t.true(await converged(r));
});
