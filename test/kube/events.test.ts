/**
 * Problems as Kubernetes Events (ts/sources/kube-events.ts) against a real kube-apiserver: each
 * problem is an events.k8s.io/v1 Event on its object (reportingController bpfproxy, a CamelCase
 * reason); one that persists across syncs stays one Event, whose series count rises when it comes
 * back and with the heartbeat; posting is rate-limited, never blocks observe(), and failures are
 * logged once, never thrown.
 */
import type { ExecutionContext } from 'ava';

import type { Problem } from '../../ts/model/index.js';
import type { ControlPlane } from '../../ts/kube/control-plane.js';
import type { KubeEventRecorderOptions } from '../../ts/sources/kube-events.js';
import { KubeSource } from '../../ts/sources/kube-source.js';
import { apply, kubeAfterAlways, kubeBefore, kubeTest, node, startPlane } from './_fixture.js';
import { eventually } from '../helpers/wait.js';

let cp: ControlPlane | undefined;

kubeBefore(async (t) => {
  cp = await startPlane(t);
  await apply(cp, node('node-1', 'zone-a'));
});
kubeAfterAlways(async () => {
  await cp?.stop();
});

function plane(): ControlPlane {
  if (!cp) throw new Error('no control plane');
  return cp;
}

interface Event {
  metadata: { name: string; namespace: string };
  reason: string;
  note: string;
  type: string;
  action: string;
  reportingController: string;
  reportingInstance: string;
  regarding: { kind: string; namespace?: string; name: string; apiVersion: string };
  series?: { count: number; lastObservedTime: string };
}

async function events(namespace?: string): Promise<Event[]> {
  const out = await plane().kubectl(['get', 'events.v1.events.k8s.io', ...(namespace ? ['-n', namespace] : ['-A']), '-o', 'json']);
  return (JSON.parse(out) as { items: Event[] }).items.filter((e) => e.reportingController === 'bpfproxy');
}

async function cleanEvents(): Promise<void> {
  await plane().kubectl(['delete', 'events.v1.events.k8s.io', '-A', '--all']).catch(() => undefined);
  // -A with --all deletes per namespace; what is left is in default and kube-system.
  for (const ns of ['default', 'kube-system']) await plane().kubectl(['delete', 'events.v1.events.k8s.io', '-n', ns, '--all']).catch(() => undefined);
}

/** A recorder as the agent gets it: from its KubeSource, with the source's credentials. */
function recorder(t: ExecutionContext, opts: Partial<KubeEventRecorderOptions> & { kubeConfig?: KubeEventRecorderOptions['kubeConfig'] } = {}) {
  const results: { result: string; at: number }[] = [];
  const logs: string[] = [];
  const src = new KubeSource({ kubeConfig: opts.kubeConfig ?? plane().kubeConfig(), nodeName: 'node-1' });
  const rec = src.problemRecorder({
    nodeName: 'node-1',
    log: (m, f) => logs.push(`${m} ${JSON.stringify(f ?? {})}`),
    onResult: (result) => results.push({ result, at: Date.now() }),
    ...opts,
  });
  t.teardown(() => rec.stop());
  const count = (r: string) => results.filter((x) => x.result === r).length;
  return { rec, results, logs, count };
}

const conflict: Problem = {
  kind: 'Service',
  namespace: 'default',
  name: 'thief',
  port: 'http',
  reason: 'ExternalIP frontend 198.19.0.10:80/TCP refused: 198.19.0.10 is the ClusterIP of default/victim',
};
const rejected: Problem = { kind: 'EndpointSlice', namespace: 'kube-system', name: 'bad-abc', reason: 'rejected: endpoints[0].conditions.ready: expected true or false, got "false" (a string)' };
const sctp: Problem = { kind: 'Service', namespace: 'default', name: 'signalling', port: 'sig', reason: 'SCTP is not served by bpfproxy yet: traffic to this port passes untouched (docs/datapath.md)' };
const config: Problem = { kind: 'Config', namespace: '', name: 'nodePortAddresses', reason: '"10.0.0.0/33" is not a CIDR' };

kubeTest('each problem is one events.k8s.io Event on its object; the same problems sync after sync stay one Event each', async (t) => {
  await cleanEvents();
  const { rec, count } = recorder(t);
  const started = performance.now();
  for (let sync = 0; sync < 20; sync++) rec.observe([conflict, rejected, sctp, config]);
  t.true(performance.now() - started < 50, 'observe() only records');
  await eventually('4 Events created', () => count('created') === 4);
  await new Promise((r) => setTimeout(r, 500));
  t.is(count('created'), 4);
  t.is(count('patched'), 0, 'nothing new to say: no PATCH');

  const all = await events();
  t.is(all.length, 4);
  const by = (kind: string, name: string) => all.find((e) => e.regarding.kind === kind && e.regarding.name === name)!;
  t.like(by('Service', 'thief'), {
    type: 'Warning',
    action: 'Sync',
    reason: 'FrontendRefused',
    reportingInstance: 'bpfproxy-node-1',
    note: `port http: ${conflict.reason}`,
    regarding: { apiVersion: 'v1', kind: 'Service', namespace: 'default', name: 'thief' },
    metadata: { namespace: 'default' },
  });
  t.like(by('EndpointSlice', 'bad-abc'), { reason: 'Rejected', regarding: { apiVersion: 'discovery.k8s.io/v1', namespace: 'kube-system' }, metadata: { namespace: 'kube-system' } });
  t.like(by('Service', 'signalling'), { reason: 'Unsupported' });
  // Config problems are this node's, and cluster-scoped objects' Events live in default.
  t.like(by('Node', 'node-1'), { reason: 'InvalidConfiguration', note: `configuration nodePortAddresses: ${config.reason}`, metadata: { namespace: 'default' } });
  t.true(all.every((e) => e.series === undefined));
});

kubeTest('a problem that comes back, or lasts, raises the series count of its one Event', async (t) => {
  await cleanEvents();
  const { rec, count } = recorder(t, { heartbeatMs: 1500, seriesWindowMs: 60_000 });
  rec.observe([conflict]);
  await eventually('created', () => count('created') === 1);
  rec.observe([]);
  rec.observe([conflict]);
  await eventually('patched once', () => count('patched') >= 1);
  let [event] = await events('default');
  t.is(event?.series?.count, 2, 'gone and back: count 2');
  // It lasts: the heartbeat raises the count (every 1.5 s here, 30 min by default).
  await eventually('a heartbeat', () => count('patched') >= 2, 10_000);
  const list = await events('default');
  t.is(list.length, 1, 'still one Event');
  [event] = list;
  t.true(event!.series!.count >= 3);
  t.is(count('created'), 1);
});

kubeTest('posting is rate-limited (a burst, then one per interval) and a flood beyond maxPending is dropped, counted, logged once', async (t) => {
  await cleanEvents();
  const { rec, results, count, logs } = recorder(t, { burst: 3, refillMs: 400, maxPending: 8 });
  const flood = Array.from({ length: 12 }, (_, i): Problem => ({ kind: 'Service', namespace: 'default', name: `svc-${i}`, reason: 'duplicate port (same name or number and protocol); only the first is used' }));
  const started = Date.now();
  rec.observe(flood);
  t.is(count('dropped'), 4, '12 problems, 8 may wait');
  t.is(logs.filter((l) => l.startsWith('too many problems')).length, 1);
  await eventually('8 created', () => count('created') === 8, 15_000);
  const times = results.filter((r) => r.result === 'created').map((r) => r.at - started);
  t.log(`creation times (ms): ${times.join(' ')}`);
  t.true(times.slice(0, 3).every((ms) => ms < 400), 'the burst at once');
  t.true(times[7]! >= 5 * 400 - 100, 'then one per 400 ms');
  t.is((await events('default')).length, 8);
  t.true((await events('default')).every((e) => e.reason === 'Invalid'));
});

kubeTest('failures to post are logged once and never thrown: an identity without RBAC, and no API server at all', async (t) => {
  const c = plane();
  await apply(c, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'no-events', namespace: 'kube-system' } });
  const tok = (await c.kubectl(['create', 'token', 'no-events', '-n', 'kube-system', '--duration=1h'])).trim();
  await apply(c, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'bpfproxy-events' },
    rules: [{ apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] }],
  });
  const forbidden = recorder(t, { kubeConfig: c.kubeConfig(tok, 'no-events'), retryMs: 100, giveUpMs: 1000 });
  forbidden.rec.observe([conflict, sctp]);
  await eventually('failures', () => forbidden.count('failed') >= 4);
  t.is(forbidden.count('created'), 0);
  t.is(forbidden.logs.length, 1, `one log line for the run of failures: ${forbidden.logs.join('\n')}`);
  t.regex(forbidden.logs[0]!, /cannot post an Event.*HTTP 403/);

  // Given up after 3 tries; once the identity may post, a later try succeeds and says so.
  await eventually('given up', () => forbidden.count('failed') === 6);
  await apply(c, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'no-events-fixed' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'bpfproxy-events' },
    subjects: [{ kind: 'ServiceAccount', name: 'no-events', namespace: 'kube-system' }],
  });
  await eventually('posted after all', () => forbidden.count('created') === 2, 15_000);
  t.regex(forbidden.logs.at(-1)!, /posting Events works again/);

  const gone = c.kubeConfig();
  gone.clusters = gone.clusters.map((cl) => ({ ...cl, server: 'https://127.0.0.1:1' }));
  const offline = recorder(t, { kubeConfig: gone, retryMs: 100 });
  offline.rec.observe([conflict]);
  await eventually('a failure', () => offline.count('failed') >= 1);
  t.regex(offline.logs[0] ?? '', /cannot post an Event.*ECONNREFUSED/);
});
