// ServiceCIDRs through the file source (a YAML object like any other), and through the Kubernetes source, against a minimal API server (plain HTTP, lists and
// quiet watches): listed and watched when the agent asks for them, and an API server that does not
// serve networking.k8s.io/v1 ServiceCIDR (before Kubernetes 1.33) still lets the source sync.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import test from 'ava';
import { KubeConfig } from '@kubernetes/client-node';

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { FileSource } from '../../ts/sources/file-source.js';
import { KubeSource } from '../../ts/sources/kube-source.js';
import type { ClusterEvents, ServiceCIDR } from '../../ts/sources/source.js';
import { eventually } from '../helpers/wait.js';

async function fakeApi(serviceCIDRs: ServiceCIDR[] | undefined): Promise<{ server: Server; url: string; asked: string[] }> {
  const asked: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    asked.push(url.pathname);
    const items = url.pathname === '/apis/networking.k8s.io/v1/servicecidrs' ? serviceCIDRs : [];
    if (items === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 }));
      return;
    }
    if (url.searchParams.get('watch') === 'true') {
      // A watch with nothing to say: held open until the client goes.
      res.writeHead(200, { 'content-type': 'application/json' });
      req.on('close', () => res.end());
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ metadata: { resourceVersion: '1' }, items }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked };
}

function sourceFor(url: string): KubeSource {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: url, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  return new KubeSource({ kubeConfig: kc, nodeName: 'node-1' });
}

function recorder() {
  const cidrs: (string[] | undefined)[] = [];
  let synced = false;
  const events: ClusterEvents = {
    service: () => {},
    endpointSlice: () => {},
    node: () => {},
    serviceCIDR: (_p, c) => cidrs.push(c?.spec?.cidrs),
    synced: () => (synced = true),
  };
  return { events, cidrs, isSynced: () => synced };
}

test('ServiceCIDR objects are listed and reported before synced', async (t) => {
  const api = await fakeApi([{ metadata: { name: 'kubernetes', resourceVersion: '1' }, spec: { cidrs: ['198.19.0.0/17'] } }]);
  t.teardown(() => api.server.close());
  const src = sourceFor(api.url);
  const r = recorder();
  t.teardown(() => src.stop());
  await src.start(r.events);
  await eventually('synced', r.isSynced);
  t.true(r.isSynced());
  t.deepEqual(r.cidrs, [['198.19.0.0/17']]);
});

test('an API server without ServiceCIDR (404) still syncs, with none', async (t) => {
  const api = await fakeApi(undefined);
  t.teardown(() => api.server.close());
  const src = sourceFor(api.url);
  const r = recorder();
  t.teardown(() => src.stop());
  await src.start(r.events);
  await eventually('synced', r.isSynced);
  t.true(r.isSynced(), 'synced although ServiceCIDR is not served');
  t.deepEqual(r.cidrs, []);
  t.true(api.asked.includes('/apis/networking.k8s.io/v1/servicecidrs'));
});

test('without a serviceCIDR handler, ServiceCIDRs are not asked for (the RBAC rule is then not needed)', async (t) => {
  const api = await fakeApi([]);
  t.teardown(() => api.server.close());
  const src = sourceFor(api.url);
  const { serviceCIDR: _, ...events } = recorder().events;
  let synced = false;
  t.teardown(() => src.stop());
  await src.start({ ...events, synced: () => (synced = true) });
  await eventually('synced', () => synced);
  t.true(synced);
  t.false(api.asked.includes('/apis/networking.k8s.io/v1/servicecidrs'));
});

test('the file source reports ServiceCIDR objects of its YAML', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-scidr-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'cidr.yaml'), 'apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: { name: kubernetes }\nspec: { cidrs: [198.19.0.0/17] }\n');
  const src = new FileSource(dir);
  const r = recorder();
  t.teardown(() => src.stop());
  await src.start(r.events);
  await eventually('synced', r.isSynced);
  t.deepEqual(r.cidrs, [['198.19.0.0/17']]);
});
