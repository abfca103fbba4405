import test from 'ava';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
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
  await sleep(300);
  t.deepEqual(r.log.splice(0).sort(), ['service had default/web', 'slice had deleted']);
  t.true(problems.some((p) => p.startsWith('broken.yaml')), 'a broken file is reported, the rest still counts');

  unlinkSync(join(dir, 'web.yaml'));
  await sleep(300);
  t.deepEqual(r.log.splice(0), ['service had deleted']);
});
