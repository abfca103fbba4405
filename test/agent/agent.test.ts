// The agent as operators run it: `bpfproxy agent --config FILE` inside a node's network namespace,
// a directory of YAML in, the pinned maps, /healthz and /metrics out.
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';

import { privilegedSerial } from '../helpers/env.js';
import { AgentNode, HEALTHZ_PORT, METRICS_PORT, NODE_IP, serviceYaml, sliceYaml } from './_fixture.js';

const web = (type = 'NodePort') =>
  serviceYaml(
    'web',
    `type: ${type}
clusterIP: 198.19.0.10
ports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP${type === 'ClusterIP' ? '' : ', nodePort: 30080'} }]`,
  );
const webSlice = (ips: [string, string][]) => sliceYaml('web', { name: 'http', port: 8080 }, ips.map(([ip, node]) => ({ ip, node })));

privilegedSerial('YAML in, maps out: the agent programs, attaches, reports ready, and follows changes', async (t) => {
  const node = await AgentNode.create(t, { pods: ['pod-a'] });
  node.writeSource('web.yaml', web() + webSlice([['198.18.129.5', 'node-1'], ['198.18.130.5', 'node-2']]));

  const ready = await node.start();
  t.like(ready, { level: 'info', node: 'node-1', uplink: 'eth0', podInterfaces: 1, nodeObject: false, nodeAddresses: [NODE_IP], frontends: 2, backends: 2, failures: 0 });

  const dump = node.dump();
  const maglev = dump.find((l) => l.startsWith('maglev'));
  t.regex(maglev ?? '', /^maglev svc 1 M=251: 1×12[56] 2×12[56]$/, 'the external group gets a 251-entry table shared evenly');
  t.deepEqual(dump.filter((l) => l !== maglev), [
    'backend 1 → 198.18.129.5:8080/TCP [LOCAL]',
    'backend 2 → 198.18.130.5:8080/TCP',
    `node-address ${NODE_IP}`,
    'svc 0.0.0.0:30080/TCP all[1] → backend 1',
    'svc 0.0.0.0:30080/TCP all[2] → backend 2',
    'svc 0.0.0.0:30080/TCP → id 1 NODE_PORT count 2 local 0 [MAGLEV]',
    'svc 198.19.0.10:80/TCP all[1] → backend 1',
    'svc 198.19.0.10:80/TCP all[2] → backend 2',
    'svc 198.19.0.10:80/TCP → id 2 CLUSTER_IP count 2 local 0 [DETECT_LOCAL]',
  ], 'without a Node object the uplink address is where NodePorts answer');

  const links = readdirSync(join(node.bpffsDir, 'links')).sort();
  t.deepEqual(links, ['bpfproxy0_egress', 'eth0_egress', 'eth0_ingress', 'eth0_xdp', 'lo_egress', 'pod-a_egress', 'pod-a_ingress']);
  // The service device, made by the agent: no ServiceCIDR in a file source and no serviceCIDRs,
  // so the ClusterIP gets a route of its own, from the node address.
  t.regex(await node.ns.exec('ip', ['-d', 'link', 'show', 'bpfproxy0']), /dummy|ifb/);
  t.regex(await node.ns.exec('ip', ['-4', 'route', 'show', 'dev', 'bpfproxy0']), /^198\.19\.0\.10 proto 191 scope link src /m);

  const healthz = await node.http(HEALTHZ_PORT, '/healthz');
  t.is(healthz.code, 200);
  t.like(JSON.parse(healthz.body), { nodeEligible: true });
  t.is((await node.http(HEALTHZ_PORT, '/livez')).code, 200);
  t.deepEqual(await node.http(METRICS_PORT, '/proxyMode'), { code: 200, body: 'bpfproxy' });
  t.is(await node.metric('kubeproxy_sync_proxy_rules_service_changes_total'), 1);
  t.is(await node.metric('kubeproxy_sync_proxy_rules_endpoint_changes_total'), 1);
  t.true((await node.metric('kubeproxy_sync_proxy_rules_duration_seconds_count'))! >= 1);
  t.true((await node.metric('kubeproxy_sync_proxy_rules_last_timestamp_seconds'))! > 0);
  t.is(await node.metric('bpfproxy_map_entries{map="svc4_v1"}'), 6);
  t.is(await node.metric('bpfproxy_map_capacity{map="svc4_v1"}'), 1024);
  t.is(await node.metric('bpfproxy_pod_interfaces'), 1);
  t.is(await node.metric('bpfproxy_source_healthy'), 1);
  t.is(await node.metric('bpfproxy_drop_packets_total{reason="NO_ENDPOINTS"}'), 0, 'every drop reason is exported, by name');
  t.is(await node.metric('bpfproxy_fragment_packets_total{result="NO_FIRST"}'), 0, 'fragment counters are exported, by name');
  t.is(await node.metric('bpfproxy_service_packets_total{namespace="default",service="web",port="http",protocol="TCP",scope="internal"}'), 0);
  t.true((await node.metric('proxy_healthz_total{code="200"}'))! >= 1);
  t.is(await node.metric('bpfproxy_conntrack_gc_runs_total{result="ok"}'), 1, 'conntrack is collected once the agent is ready');

  // A pod interface appears: attached on the link event.
  await node.ns.ip('link', 'add', 'pod-b', 'type', 'veth', 'peer', 'name', 'x-b');
  await node.ns.ip('link', 'set', 'pod-b', 'up');
  await waitUntil(() => existsSync(join(node.bpffsDir, 'links', 'pod-b_ingress')), 'pod-b attached');

  // Scale down to the remote endpoint, then change type: only the difference is written.
  node.writeSource('web.yaml', web('ClusterIP') + webSlice([['198.18.130.5', 'node-2']]));
  const after = await node.waitForDump((d) => !d.some((l) => l.includes('30080')) && !d.some((l) => l.includes('198.18.129.5')), 'scale down and ClusterIP');
  t.deepEqual(after, [
    'backend 2 → 198.18.130.5:8080/TCP',
    'svc 198.19.0.10:80/TCP all[1] → backend 2',
    'svc 198.19.0.10:80/TCP → id 2 CLUSTER_IP count 1 local 0 [DETECT_LOCAL]',
  ]);

  node.removeSource('web.yaml');
  await node.waitForDump((d) => d.length === 0, 'deletion leaving the maps empty');
  t.pass();
});

privilegedSerial('the source goes away: the agent is degraded, keeps serving the last state, and recovers', async (t) => {
  const node = await AgentNode.create(t);
  node.writeSource('web.yaml', web('ClusterIP') + webSlice([['198.18.130.5', 'node-2']]));
  await node.start();
  const before = node.dump();

  const moved = node.sourceDir + '.away';
  renameSync(node.sourceDir, moved);
  await node.waitForLog((l) => l.msg === 'source unhealthy: serving the last known state');
  const healthz = await node.http(HEALTHZ_PORT, '/healthz');
  t.is(healthz.code, 200, 'a stale source is not a sick proxy (kube-proxy keeps serving too)');
  t.regex(JSON.parse(healthz.body).degraded, /cannot list .*cluster: ENOENT/);
  t.is(await node.metric('bpfproxy_source_healthy'), 0);
  t.deepEqual(node.dump(), before, 'nothing was deleted');

  renameSync(moved, node.sourceDir);
  await node.waitForLog((l) => l.msg === 'source healthy again');
  t.is(await node.metric('bpfproxy_source_healthy'), 1);
  t.is(JSON.parse((await node.http(HEALTHZ_PORT, '/healthz')).body).degraded, undefined);
});

privilegedSerial('the own Node object: its addresses are used, and its deletion fails /healthz with 503', async (t) => {
  const node = await AgentNode.create(t);
  const nodeYaml = (extra: string) => `apiVersion: v1
kind: Node
metadata: { name: node-1, labels: { topology.kubernetes.io/zone: zone-a }${extra} }
spec: { podCIDRs: [198.18.129.0/24] }
status: { addresses: [{ type: InternalIP, address: 198.18.0.11 }, { type: InternalIP, address: 198.18.0.21 }, { type: Hostname, address: node-1 }] }
`;
  node.writeSource('node.yaml', nodeYaml(''));
  node.writeSource('web.yaml', web() + webSlice([['198.18.130.5', 'node-2']]));
  const ready = await node.start();
  t.like(ready, { nodeObject: true, nodeAddresses: ['198.18.0.11', '198.18.0.21'] });
  t.true(node.dump().includes('node-address 198.18.0.21'), 'NodePorts answer on the Node object\'s addresses');
  t.is((await node.http(HEALTHZ_PORT, '/healthz')).code, 200);

  node.writeSource('node.yaml', nodeYaml(', deletionTimestamp: "2026-01-01T00:00:00Z"'));
  await node.waitForLog((l) => l.msg === 'node is being deleted: /healthz fails from now on');
  const healthz = await node.http(HEALTHZ_PORT, '/healthz');
  t.is(healthz.code, 503);
  t.like(JSON.parse(healthz.body), { nodeEligible: false });
  t.is((await node.http(HEALTHZ_PORT, '/livez')).code, 200, '/livez ignores the node, as in kube-proxy');
  t.true((await node.metric('proxy_healthz_total{code="503"}'))! >= 1);
});

privilegedSerial('health-check node ports of ETP Local services answer exactly as kube-proxy', async (t) => {
  const node = await AgentNode.create(t);
  const lb = serviceYaml(
    'lb',
    `type: LoadBalancer
clusterIP: 198.19.0.20
externalTrafficPolicy: Local
healthCheckNodePort: 32100
ports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30090 }]`,
    'status: { loadBalancer: { ingress: [{ ip: 198.19.255.1 }] } }\n',
  );
  node.writeSource('lb.yaml', lb + sliceYaml('lb', { name: 'http', port: 8080 }, [{ ip: '198.18.129.7', node: 'node-1' }, { ip: '198.18.130.7', node: 'node-2' }]));
  await node.start();
  const ok = await node.http(32100, '/');
  t.is(ok.code, 200);
  t.deepEqual(JSON.parse(ok.body), { service: { namespace: 'default', name: 'lb' }, localEndpoints: 1, serviceProxyHealthy: true });
  t.is(await node.metric('bpfproxy_health_check_node_ports'), 1);

  // Only a terminating local endpoint left: 503, localEndpoints 0.
  node.writeSource('lb.yaml', lb + sliceYaml('lb', { name: 'http', port: 8080 }, [{ ip: '198.18.129.7', node: 'node-1', ready: false, terminating: true }, { ip: '198.18.130.7', node: 'node-2' }]));
  await waitUntilAsync(async () => (await node.http(32100, '/')).code === 503, 'health check 503');
  t.deepEqual(JSON.parse((await node.http(32100, '/healthz')).body), { service: { namespace: 'default', name: 'lb' }, localEndpoints: 0, serviceProxyHealthy: true });

  node.removeSource('lb.yaml');
  await waitUntilAsync(async () => (await node.http(32100, '/')).code === 0, 'health check port closed');
  t.is(await node.metric('bpfproxy_health_check_node_ports'), 0);
});

privilegedSerial('a restart adopts the pins: nothing flushed while it is down, nothing written when it is back', async (t) => {
  // The agent makes the service device itself (a dummy, or an ifb without the dummy driver).
  const node = await AgentNode.create(t, { pods: ['pod-a'], config: { serviceInterface: 'svc0' } });
  const other = serviceYaml('api', 'clusterIP: 198.19.0.30\nports: [{ name: https, port: 443, targetPort: 8443, protocol: TCP }]');
  node.writeSource('web.yaml', web() + webSlice([['198.18.129.5', 'node-1']]));
  await node.start();
  // A history, so that ids are no longer what a fresh computation would give.
  node.writeSource('api.yaml', other + sliceYaml('api', { name: 'https', port: 8443 }, [{ ip: '198.18.130.9', node: 'node-2' }]));
  await node.waitForDump((d) => d.some((l) => l.includes('198.19.0.30:443')), 'api added');
  node.writeSource('web.yaml', web() + webSlice([['198.18.129.5', 'node-1'], ['198.18.130.5', 'node-2'], ['198.18.130.6', 'node-2']]));
  await node.waitForDump((d) => d.some((l) => l.includes('198.18.130.6')), 'web scaled up');
  node.removeSource('web.yaml');
  await node.waitForDump((d) => !d.some((l) => l.includes('30080')), 'web deleted');
  node.writeSource('web.yaml', web() + webSlice([['198.18.130.5', 'node-2'], ['198.18.129.5', 'node-1']]));
  const before = await node.waitForDump((d) => d.some((l) => l.includes('30080')), 'web back');
  t.true(before.some((l) => /→ id [3-9] /.test(l)), 'the re-added service has fresh ids, not those a fresh start would give');

  t.is(await node.stop('SIGTERM'), 0);
  t.true(node.logs.some((l) => l.msg === 'agent stopped; pinned maps and links stay, traffic keeps flowing'));
  t.deepEqual(node.dump(), before, 'stopping flushes nothing');
  t.deepEqual(readdirSync(join(node.bpffsDir, 'links')).sort(), ['eth0_egress', 'eth0_ingress', 'eth0_xdp', 'lo_egress', 'pod-a_egress', 'pod-a_ingress', 'svc0_egress'], 'links stay pinned');

  const ready = await node.start();
  t.like(ready, { written: 0, deleted: 0, failures: 0, recoveredIds: true }, 'the restarted agent writes nothing');
  t.deepEqual(node.dump(), before);

  // And after a SIGKILL (no goodbye at all), the same.
  node.kill();
  await new Promise((r) => setTimeout(r, 200));
  t.like(await node.start(), { written: 0, deleted: 0 });
  t.deepEqual(node.dump(), before);
});

privilegedSerial('a full map: the service that does not fit is reported and left out, the others are programmed', async (t) => {
  const node = await AgentNode.create(t, { config: { mapSizes: { services: 8, backends: 64, conntrack: 1024, affinity: 64 } } });
  const small = serviceYaml('small', 'clusterIP: 198.19.0.50\nports: [{ name: p, port: 80, targetPort: 8080, protocol: TCP }]');
  const big = serviceYaml('big', 'clusterIP: 198.19.0.40\nports: [{ name: p, port: 80, targetPort: 8080, protocol: TCP }]');
  const ips = Array.from({ length: 8 }, (_, i) => ({ ip: `198.18.130.${10 + i}`, node: 'node-2' }));
  node.writeSource('big.yaml', big + sliceYaml('big', { name: 'p', port: 8080 }, ips));
  node.writeSource('small.yaml', small + sliceYaml('small', { name: 'p', port: 8080 }, [{ ip: '198.18.130.99', node: 'node-2' }]));
  const ready = await node.start();
  t.true((ready.failures as number) >= 1);

  const svc = node.dump().filter((l) => l.startsWith('svc'));
  t.true(svc.includes('svc 198.19.0.50:80/TCP → id 2 CLUSTER_IP count 1 local 0 [DETECT_LOCAL]'), svc.join('\n'));
  t.false(svc.some((l) => l.startsWith('svc 198.19.0.40:80/TCP')), 'nothing of the big service, not even orphan slots');
  const error = node.logs.find((l) => l.level === 'error' && l.map === 'svc4_v1');
  t.like(error, { code: 'E2BIG', frontend: 'ClusterIP 198.19.0.40:80/TCP', msg: 'cannot write service ClusterIP 198.19.0.40:80/TCP: left as it was, retrying' });
  t.true((await node.metric('bpfproxy_map_write_errors_total{map="svc4_v1",code="E2BIG"}'))! >= 1);
  t.true((await node.metric('bpfproxy_syncs_total{reason="requested",result="partial"}'))! >= 1);
  t.is((await node.http(HEALTHZ_PORT, '/healthz')).code, 200, 'one service that does not fit does not take the node out of service');

  // The big one shrinks to fit: the retry (with backoff) programs it.
  node.writeSource('big.yaml', big + sliceYaml('big', { name: 'p', port: 8080 }, ips.slice(0, 2)));
  await node.waitForDump((d) => d.some((l) => l.startsWith('svc 198.19.0.40:80/TCP → ')), 'big programmed once it fits');
  t.pass();
});

async function waitUntil(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  return waitUntilAsync(async () => cond(), what, timeoutMs);
}

async function waitUntilAsync(cond: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
