// `bpfproxy services` and `bpfproxy explain` as commands, against a node's pins filled by the
// reconciler from a known state (no agent running).
import type { ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

import { Reconciler } from '../../ts/dataplane/reconciler.js';
import { resolveProxyConfig } from '../../ts/model/index.js';
import { NET, rootTest, setup, type Env } from '../datapath/_fixture.js';
import { tcp } from '../datapath/_packets.js';
import { program } from '../helpers/program.js';

const M = 251;
const run = promisify(execFile);
const BIN = resolve('bin/bpfproxy.js');

const YAML = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  type: NodePort
  clusterIP: ${NET.clusterIp}
  sessionAffinity: ClientIP
  sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } }
  ports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30080 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: default, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
  - { addresses: [${NET.pod1a}], nodeName: node-1 }
  - { addresses: [${NET.pod2a}], nodeName: node-2, conditions: { ready: false, serving: true, terminating: true } }
  - { addresses: [${NET.pod2b}], nodeName: node-2 }
`;

async function filled(t: ExecutionContext): Promise<Env> {
  const env = await setup(t, { maglevM: M });
  const r = new Reconciler(env.dp);
  r.adopt();
  const node = { name: 'node-1', addresses: [NET.node1], podCIDRs: [] };
  t.deepEqual(program(r, YAML, { node, config: resolveProxyConfig({ clusterCIDR: NET.podCidr, maglevTableSize: M }) }).result.failures, []);
  return env;
}

rootTest('services --json: frontends, backends slot by slot with their state, Maglev shares, counters', async (t) => {
  const env = await filled(t);
  env.send('tcPodIngress', tcp(NET.pod1b, 40000, NET.clusterIp, 80)); // one new flow for the counters
  const { stdout } = await run(process.execPath, [BIN, 'services', '--bpffs-dir', env.dp.pinDir, '--json']);
  const v = JSON.parse(stdout);
  // ids: groups by key (#external 1, #internal 2); backends by address (pod1a 1, pod2a 2, pod2b 3).
  const backend = (id: number, address: string, state: string[], slot: number) => ({ slot, id, address, port: 8080, protocol: 'TCP', state });
  t.deepEqual(v.frontends, [
    {
      frontend: `${NET.clusterIp}:80/TCP`, address: NET.clusterIp, port: 80, protocol: 'TCP', kind: 'ClusterIP', serviceId: 2,
      flags: ['AFFINITY', 'DETECT_LOCAL'], affinitySeconds: 600,
      backends: [backend(1, NET.pod1a, ['local'], 1), backend(3, NET.pod2b, [], 2)], localBackends: [],
    },
    {
      frontend: '0.0.0.0:30080/TCP', address: '0.0.0.0', port: 30080, protocol: 'TCP', kind: 'NodePort', serviceId: 1,
      flags: ['AFFINITY', 'MAGLEV'], affinitySeconds: 600,
      backends: [backend(1, NET.pod1a, ['local'], 1), backend(3, NET.pod2b, [], 2)], localBackends: [],
    },
  ]);
  t.is(v.maglev.length, 1);
  t.like(v.maglev[0], { serviceId: 1, m: M });
  t.deepEqual(v.maglev[0].shares.map((s: { backendId: number; endpoint: string }) => [s.backendId, s.endpoint]), [[1, `${NET.pod1a}:8080`], [3, `${NET.pod2b}:8080`]]);
  t.is(v.maglev[0].shares.reduce((n: number, s: { entries: number }) => n + s.entries, 0), M);
  t.deepEqual(v.counters.map((c: { serviceId: number; newFlows: number; packets: number }) => [c.serviceId, c.packets, c.newFlows]), [[1, 0, 0], [2, 1, 1]]);
  t.deepEqual(v.nodeAddresses, [NET.node1]);
  t.true(v.drops.some((d: { reason: string }) => d.reason === 'NO_ENDPOINTS'));

  const table = (await run(process.execPath, [BIN, 'services', '--bpffs-dir', env.dp.pinDir])).stdout;
  const lines = table.split('\n');
  t.regex(lines[0]!, /^FRONTEND\s+KIND\s+ID\s+POLICY\s+AFFINITY\s+BACKENDS\s+LOCAL\s+PACKETS\s+BYTES\s+NEW FLOWS$/);
  t.regex(lines[1]!, /^198\.19\.0\.10:80\/TCP\s+ClusterIP\s+2\s+affinity,detect-local\s+600s\s+2\s+0\s+1\s+\d+ B\s+1$/);
  t.regex(lines[2]!, /^0\.0\.0\.0:30080\/TCP\s+NodePort\s+1\s+affinity,maglev\s+600s\s+2\s+0\s+0\s+0 B\s+0$/);
  t.true(lines.includes(`NodePorts answer on: ${NET.node1}`));
  t.true(lines.some((l) => /^0\.0\.0\.0:30080\/TCP\s+all\s+2\s+3\s+198\.18\.130\.11:8080\/TCP\s+ready$/.test(l)), table);
});

rootTest('explain as a command: the same walk, printed or as JSON', async (t) => {
  const env = await filled(t);
  const args = [BIN, 'explain', '--bpffs-dir', env.dp.pinDir, '--node-ip', NET.node1, '--cluster-cidr', NET.podCidr];
  const json = JSON.parse((await run(process.execPath, [...args, '--from', `${NET.client}:41000`, '--to', `${NET.node1}:30080`, '--json'])).stdout);
  t.is(json.packet.ingress, 'uplink', 'a source outside the cluster CIDR enters from the uplink');
  t.deepEqual(json.steps.map((s: { id: string }) => s.id), ['hook', 'frontend', 'origin', 'conntrack', 'scope', 'affinity', 'backend', 'snat', 'rewrite', 'deliver']);
  t.is(json.verdict, 'forward');

  const text = (await run(process.execPath, [...args, '--from', NET.pod1b, '--to', `${NET.clusterIp}:80`])).stdout;
  t.regex(text, /^TCP 198\.18\.129\.11:40000 → 198\.19\.0\.10:80, entering from a pod\n/);
  t.regex(text, /\n 7  backend +random slot of 2 \(like KUBE-SVC's statistic rules\): backend 1 50%, backend 3 50%\n/);
  t.regex(text, /\nresult: FORWARD to one of: 198\.18\.129\.10:8080 \(50\.0%\), 198\.18\.130\.11:8080 \(50\.0%\)\n/);
  t.regex(text, /note: no source port given: explained for 40000/);

  const bad = await run(process.execPath, [BIN, 'explain', '--bpffs-dir', '/nonexistent', '--from', NET.pod1b, '--to', `${NET.clusterIp}:80`]).catch((e: { code: number; stderr: string }) => e);
  t.like(bad, { code: 1 });
  t.regex((bad as { stderr: string }).stderr, /no bpfproxy datapath is pinned under \/nonexistent/);
});
