import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { FileSource } from '../../ts/sources/file-source.js';
import { kubeConfigFor, sourceFromConfig } from '../../ts/sources/from-config.js';
import { KubeSource } from '../../ts/sources/kube-source.js';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{ name: lab, cluster: { server: 'https://127.0.0.1:6443', insecure-skip-tls-verify: true } }]
users: [{ name: node, user: { token: abc } }]
contexts: [{ name: lab, context: { cluster: lab, user: node } }]
current-context: lab
`;

test('the configuration names the source: a directory, or the API through a kubeconfig (--master overriding its server)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-source-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, KUBECONFIG);
  const log = () => {};

  const file = await sourceFromConfig({ kind: 'file', dir }, { nodeName: 'node-1', log });
  t.true(file instanceof FileSource);
  t.is(file.description, `file:${dir}`);

  const kube = await sourceFromConfig({ kind: 'kubernetes', kubeconfig }, { nodeName: 'node-1', log });
  t.true(kube instanceof KubeSource);
  t.is(kube.description, 'kubernetes:https://127.0.0.1:6443');

  const kc = await kubeConfigFor({ kind: 'kubernetes', kubeconfig, apiServer: 'https://127.0.0.2:7443' });
  t.is(kc.getCurrentCluster()?.server, 'https://127.0.0.2:7443');
  t.is(kc.getCurrentUser()?.token, 'abc', 'the credentials stay');
});
