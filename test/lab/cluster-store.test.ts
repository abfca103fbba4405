// The lab's object store writes one file per object in the cluster directory: names and namespaces
// become path parts, so only what the API allows gets there (no "../" out of the directory).
import test from 'ava';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { InvalidObjectError } from '../../ts/lab/file-api/allocate.js';
import { ClusterStore } from '../../ts/lab/file-api/cluster-store.js';

test('a namespace or name that is not a DNS subdomain is refused before any path is made: no write or delete outside the directory', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bpfproxy-store-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = new ClusterStore(join(root, 'cluster'));
  const slice = (namespace: string, name: string) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name, namespace }, addressType: 'IPv4', endpoints: [] });
  for (const [namespace, name] of [['../..', 'x'], ['default', '../escape'], ['a/b', 'x'], ['default', '..'], ['Default', 'x']]) {
    t.throws(() => store.write(slice(namespace!, name!) as never), { instanceOf: InvalidObjectError }, `${namespace}/${name}`);
    t.throws(() => store.remove('EndpointSlice', namespace, name!), { instanceOf: InvalidObjectError }, `${namespace}/${name}`);
  }
  t.deepEqual(readdirSync(root), ['cluster'], 'nothing beside the cluster directory');
  t.false(existsSync(join(dirname(root), 'escape.yaml')));
  t.true(store.write(slice('team-a', 'web-1.v2') as never), 'DNS subdomains are fine');
});
