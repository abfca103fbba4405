import test from 'ava';

import { listen, healthServer, metricsServer, ProxierHealth, PROXY_MODE } from '../../ts/agent/health.js';
import { HealthCheckNodePorts } from '../../ts/agent/healthcheck-nodeports.js';
import { AgentMetrics } from '../../ts/agent/metrics.js';

test('healthz turns 503 when a queued update waits longer than twice the sync period', (t) => {
  let now = 1_000_000;
  const h = new ProxierHealth(30_000, () => now);
  t.true(h.status(false).healthy);
  h.queued();
  now += 59_000;
  t.true(h.status(false).healthy);
  now += 2_000;
  t.false(h.status(false).healthy);
  h.updated(now - 1);
  t.true(h.status(false).healthy);
});

test('a sync whose writes failed applied its update only when every failure was for want of room', (t) => {
  let now = 1_000_000;
  const h = new ProxierHealth(30_000, () => now);
  h.queued();
  // A sync that throws calls nothing; one that could not write (EPERM) is no better.
  h.synced(now, [{ code: 'E2BIG' }, { code: 'EPERM' }]);
  now += 61_000;
  t.false(h.status(false).healthy, 'an update behind a failing datapath goes stale');
  h.synced(now, [{ code: 'E2BIG' }, { code: 'ENOSPC' }]);
  t.true(h.status(false).healthy, 'a Service too large for its map does not take the node out of service');
  h.queued();
  now += 61_000;
  h.synced(now - 1, []);
  t.true(h.status(false).healthy);
});

test('a node being deleted fails healthz but not livez', (t) => {
  const h = new ProxierHealth(30_000);
  h.setNodeDeleting(true);
  t.false(h.status(false).healthy);
  t.true(h.status(true).healthy);
  t.false(h.status(false).body.nodeEligible);
});

test('the health and metrics servers answer as kube-proxy does', async (t) => {
  const metrics = new AgentMetrics();
  const health = new ProxierHealth(30_000);
  const hs = await listen(healthServer(health, metrics), '127.0.0.1', 0);
  const ms = await listen(metricsServer(metrics), '127.0.0.1', 0);
  t.teardown(async () => {
    await hs.close();
    await ms.close();
  });
  const healthz = await fetch(`http://127.0.0.1:${hs.port}/healthz`);
  t.is(healthz.status, 200);
  t.is(healthz.headers.get('content-type'), 'application/json');
  t.like(await healthz.json(), { nodeEligible: true });
  t.is((await fetch(`http://127.0.0.1:${hs.port}/livez`)).status, 200);
  t.is(await (await fetch(`http://127.0.0.1:${ms.port}/proxyMode`)).text(), PROXY_MODE);
  const text = await (await fetch(`http://127.0.0.1:${ms.port}/metrics`)).text();
  t.regex(text, /^proxy_healthz_total\{code="200"\} 1$/m);
  t.regex(text, /^kubeproxy_sync_proxy_rules_duration_seconds_bucket/m);
});

test('health-check node ports answer 200 with local endpoints, 503 without, and close when removed', async (t) => {
  let healthy = true;
  const hc = new HealthCheckNodePorts(() => healthy, '127.0.0.1');
  t.teardown(() => hc.close());
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  await hc.sync([{ port, namespace: 'default', name: 'web', localEndpoints: 2 }]);
  const ok = await fetch(`http://127.0.0.1:${port}/`);
  t.is(ok.status, 200);
  t.is(ok.headers.get('x-content-type-options'), 'nosniff');
  t.deepEqual(await ok.json(), { service: { namespace: 'default', name: 'web' }, localEndpoints: 2, serviceProxyHealthy: true });

  await hc.sync([{ port, namespace: 'default', name: 'web', localEndpoints: 0 }]);
  t.is((await fetch(`http://127.0.0.1:${port}/`)).status, 503);

  await hc.sync([{ port, namespace: 'default', name: 'web', localEndpoints: 1 }]);
  healthy = false;
  const unhealthy = await fetch(`http://127.0.0.1:${port}/`);
  t.is(unhealthy.status, 503);
  t.like(await unhealthy.json(), { localEndpoints: 1, serviceProxyHealthy: false });

  await hc.sync([]);
  t.deepEqual(hc.ports(), []);
  await t.throwsAsync(fetch(`http://127.0.0.1:${port}/`));
});
