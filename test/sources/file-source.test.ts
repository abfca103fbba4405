import test from 'ava';
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { FileSource } from '../../ts/sources/file-source.js';
import type { ClusterEvents } from '../../ts/sources/source.js';

function recorder() {
  const log: string[] = [];
  let synced = false;
  const events: ClusterEvents = {
    service: (p, c) => log.push(`service ${p ? 'had' : 'new'} ${c ? `${c.metadata!.namespace}/${c.metadata!.name}` : 'deleted'}`),
    endpointSlice: (p, c) => log.push(`slice ${p ? 'had' : 'new'} ${c ? c.metadata!.name : 'deleted'}`),
    node: (p, c) => log.push(`node ${c ? c.metadata!.name : 'deleted'}`),
    synced: () => (synced = true),
  };
  return { log, events, isSynced: () => synced };
}

/** Waits (bounded) until the log holds at least n entries. */
async function waitLength(log: unknown[], n: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (log.length < n && Date.now() < deadline) await sleep(20);
}

/** Waits for n entries, then takes them all. */
async function take(log: string[], n: number): Promise<string[]> {
  await waitLength(log, n);
  return log.splice(0);
}

/**
 * Proves that earlier writes made no event: writes a marker object and waits for it. Scans read
 * the whole directory, so when the marker's event arrives, the earlier files have been looked at.
 */
async function barrier(dir: string, log: string[], name: string): Promise<string[]> {
  writeFileSync(join(dir, `zz-${name}.yaml`), service(name, 1));
  return (await take(log, 1)).filter((l) => l !== `service new default/${name}`);
}

const service = (name: string, port: number) => `apiVersion: v1
kind: Service
metadata: { name: ${name} }
spec: { clusterIP: 198.19.0.10, ports: [{ port: ${port}, protocol: TCP }] }
`;

test('a directory of YAML is listed, then watched: changes, additions and deletions become events', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-files-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'web.yaml'), `${service('web', 80)}---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-abc, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
endpoints: [{ addresses: [198.18.128.5] }]
`);
  const problems: string[] = [];
  const src = new FileSource(dir, { rescanMs: 50, onProblem: (f, r) => problems.push(`${f}: ${r}`) });
  const r = recorder();
  await src.start(r.events);
  t.teardown(() => src.stop());
  t.true(r.isSynced());
  t.deepEqual(r.log.splice(0), ['service new default/web', 'slice new web-abc']);

  writeFileSync(join(dir, 'web.yaml'), service('web', 8080));
  writeFileSync(join(dir, 'broken.yaml'), 'kind: Service\nmetadata: [oops');
  t.deepEqual((await take(r.log, 2)).sort(), ['service had default/web', 'slice had deleted']);
  const deadline = Date.now() + 10_000;
  while (!problems.some((p) => p.startsWith('broken.yaml')) && Date.now() < deadline) await sleep(20);
  t.true(problems.some((p) => p.startsWith('broken.yaml')), 'a broken file is reported, the rest still counts');

  unlinkSync(join(dir, 'web.yaml'));
  t.deepEqual(await take(r.log, 1), ['service had deleted']);
});

test('half-written files are never applied: temporary names are ignored, a broken edit keeps the last good version', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-files-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'web.yaml'), service('web', 80));
  const problems: string[] = [];
  const src = new FileSource(dir, { rescanMs: 50, settleMs: 30, onProblem: (f, r) => problems.push(`${f}: ${r}`) });
  const r = recorder();
  await src.start(r.events);
  t.teardown(() => src.stop());
  t.deepEqual(r.log.splice(0), ['service new default/web']);

  // A writer's temporary files, hidden or not, are not read.
  writeFileSync(join(dir, '.api.yaml.tmp'), service('api', 443));
  writeFileSync(join(dir, 'api.yaml.tmp'), service('api', 443));
  writeFileSync(join(dir, '.api.yaml'), service('api', 443));
  await sleep(200);
  t.deepEqual(await barrier(dir, r.log, 'marker-1'), [], 'nothing from temporary files');

  // …until renamed into place.
  renameSync(join(dir, '.api.yaml.tmp'), join(dir, 'api.yaml'));
  t.deepEqual(await take(r.log, 1), ['service new default/api']);

  // Truncated mid-write (invalid YAML): web stays as it was, and the problem is said once.
  writeFileSync(join(dir, 'web.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: web\n');
  await sleep(300);
  t.deepEqual(await barrier(dir, r.log, 'marker-2'), [], 'no deletion of web');
  t.is(problems.filter((p) => p.startsWith('web.yaml')).length, 1);
  writeFileSync(join(dir, 'web.yaml'), service('web', 8080));
  t.deepEqual(await take(r.log, 1), ['service had default/web']);
});

test('a directory that cannot be listed: unhealthy, nothing deleted; healthy again when it is back', async (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'bpfproxy-files-'));
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  const dir = join(parent, 'cluster');
  mkdirSync(dir);
  writeFileSync(join(dir, 'web.yaml'), service('web', 80));
  const health: string[] = [];
  const src = new FileSource(dir, { rescanMs: 50 });
  const r = recorder();
  await src.start({ ...r.events, health: (ok, reason) => health.push(ok ? 'healthy' : `unhealthy: ${reason}`) });
  t.teardown(() => src.stop());
  r.log.splice(0);

  renameSync(dir, join(parent, 'away'));
  await waitLength(health, 1);
  t.is(health.length, 1);
  t.regex(health[0]!, /^unhealthy: cannot list .*cluster: ENOENT/);
  t.deepEqual(r.log.splice(0), [], 'nothing deleted');

  renameSync(join(parent, 'away'), dir);
  writeFileSync(join(dir, 'api.yaml'), service('api', 443));
  t.deepEqual(await take(r.log, 1), ['service new default/api'], 'watched again after it came back');
  await waitLength(health, 2);
  t.deepEqual(health.slice(1), ['healthy']);
});

test('an object defined in two files: the first file wins and the conflict is reported once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-files-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.yaml'), service('web', 80));
  writeFileSync(join(dir, 'b.yaml'), service('web', 8080));
  const problems: string[] = [];
  const src = new FileSource(dir, { rescanMs: 50, onProblem: (f, r) => problems.push(`${f}: ${r}`) });
  const r = recorder();
  await src.start(r.events);
  t.teardown(() => src.stop());
  r.log.splice(0);
  await barrier(dir, r.log, 'marker');
  t.deepEqual(problems, ['b.yaml: Service default/web is also defined in a.yaml; the copy in a.yaml is used']);
});
