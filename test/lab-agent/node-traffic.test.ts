// The node's own traffic and hostNetwork endpoints, on a lab whose agents run with the lab's own
// agent configuration (ts/lab/agents.ts agentConfig, as `lab up` does): the agents make the service
// device, route the Service range to it and attach every hook themselves; real sockets throughout.
//
//   node-1 → ClusterIP → a pod on node-1, a pod on node-2, a hostNetwork endpoint on node-1, on node-2
//   node-1 → its own NodePort (node address, through lo) → the same four
//   node-1 → a LoadBalancer IP and an externalIP (the agent's /32 routes to the service device)
//   client → NodePort on node-1 → a hostNetwork endpoint on node-1, on node-2
//   16 MiB down and up, SHA-256 checked, on node → ClusterIP (both pod placements and the node's own
//   hostNetwork endpoint) and client → NodePort → hostNetwork endpoint on that node.
import { readFileSync } from 'node:fs';

import type { ExecutionContext } from 'ava';
import type { V1Service } from '@kubernetes/client-node';

import { privilegedSerial } from '../helpers/env.js';
import { labAgentSettings } from '../lab-datapath/_fixture.js';
import { agentLabFor, liveService } from './_fixture.js';

import { readConfigFile, resolveAgentConfig } from '../../ts/agent/config.js';
import { datapathConfigFor } from '../../ts/agent/datapath-config.js';
import { applyManifests } from '../../ts/lab/file-api/apply.js';
import type { Manifest } from '../../ts/lab/file-api/manifests.js';
import type { Lab } from '../../ts/lab/topology.js';
import { tally, type TransferResult } from '../../ts/lab/net/traffic.js';

const POD_PORT = 9376;
const HOST_PORT = 9400; // the hostNetwork endpoints' port, in the nodes' own namespaces
const MIB16 = 16 << 20;

/** A Service (ClusterIP + NodePort), TCP and UDP on port 80, selecting app=<name>. */
function nodePortService(name: string, targetPort: number): Manifest {
  const object: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: {
      type: 'NodePort',
      selector: { app: name },
      ports: [
        { name: 'tcp', protocol: 'TCP', port: 80, targetPort: targetPort as never },
        { name: 'udp', protocol: 'UDP', port: 80, targetPort: targetPort as never },
      ],
    },
  };
  return { kind: 'Service', object };
}

interface Target {
  /** The Service, and the name its one endpoint answers with. */
  name: string;
  what: string;
  clusterIp: string;
  nodePort: number;
}

const EXTERNAL_IP = '198.19.255.20';

/** A LoadBalancer Service (the lab gives it an ingress IP) with an externalIP, TCP and UDP on port 80. */
function lbService(name: string, app: string, externalIP: string): Manifest {
  const m = nodePortService(name, POD_PORT);
  const spec = (m.object as V1Service).spec!;
  spec.type = 'LoadBalancer';
  spec.selector = { app };
  spec.externalIPs = [externalIP];
  return m;
}

function targetOf(lab: Lab, name: string, what: string): Target {
  const svc = liveService(lab, name);
  return { name, what, clusterIp: svc.spec!.clusterIP!, nodePort: svc.spec!.ports!.find((p) => p.protocol === 'TCP')!.nodePort! };
}

type Row = { path: string; result: string };

async function expectAnswers(t: ExecutionContext, lab: Lab, rows: Row[], from: string, address: string, port: number, want: string, path: string): Promise<void> {
  for (const protocol of ['TCP', 'UDP'] as const) {
    const got = tally(await lab.request(from, { address, port, protocol, count: 10, timeoutMs: 2000 }));
    const ok = got.byAnswer[want] === 10;
    rows.push({ path: `${path} ${protocol}`, result: ok ? 'ok' : JSON.stringify(got) });
    t.deepEqual(got, { byAnswer: { [want]: 10 }, byError: {} }, `${path} ${protocol}`);
  }
}

function expectTransfer(t: ExecutionContext, rows: Row[], r: TransferResult, want: string, path: string): void {
  const mbps = r.ms > 0 ? ((r.bytes * 8) / r.ms / 1000).toFixed(0) : '?';
  const ok = r.ok && r.backend === want;
  rows.push({ path: `${path} 16 MiB ${r.direction}`, result: ok ? `ok, sha256 intact, ${r.ms} ms (${mbps} Mbit/s)` : JSON.stringify(r) });
  t.true(ok, `${path} ${r.direction}: ${JSON.stringify(r)}`);
}

privilegedSerial('the node itself and hostNetwork endpoints: ClusterIP, own NodePort, outside NodePort, 16 MiB both ways', async (t) => {
  t.timeout(420_000);
  const { lab, agents } = await agentLabFor(t, { nodes: 2, clients: 1 });
  const node1 = lab.node('node-1');

  // The lab-datapath harness takes its settings from the same code: the config file the lab gave
  // this agent, as the agent reads it, gives the harness's datapath settings.
  const running = resolveAgentConfig(readConfigFile(agents.agent('node-1').config), {}, 'node-1');
  // Its one setting of its own: a small Maglev table (M), which its Maglev tests count slots of.
  const h = labAgentSettings(node1, running.bpffsDir).agent;
  t.is(h.proxy.maglevTableSize, 251);
  const harness = { ...h, source: running.source, proxy: { ...h.proxy, maglevTableSize: running.proxy.maglevTableSize } };
  t.deepEqual(harness, running, 'the harness configures nodes as `lab up` configures its agents');
  t.deepEqual(datapathConfigFor(harness, node1.address), datapathConfigFor(running, node1.address));

  // Endpoints: a pod on each node, a hostNetwork endpoint on each node (made by hand, one per
  // Service), and a hostNetwork Deployment through `lab apply` (a replica per node).
  await lab.addPod({ name: 'pod-n1', node: 'node-1', ports: [{ port: POD_PORT, protocol: 'TCP' }], labels: { app: 'pod-n1' } });
  await lab.addPod({ name: 'pod-n2', node: 'node-2', ports: [{ port: POD_PORT, protocol: 'TCP' }], labels: { app: 'pod-n2' } });
  const hn1 = await lab.addPod({ name: 'host-n1', node: 'node-1', hostNetwork: true, ports: [{ port: HOST_PORT, protocol: 'TCP' }], labels: { app: 'host-n1' } });
  await lab.addPod({ name: 'host-n2', node: 'node-2', hostNetwork: true, ports: [{ port: HOST_PORT, protocol: 'TCP' }], labels: { app: 'host-n2' } });
  t.like(hn1, { address: node1.address, netns: node1.netns, hostNetwork: true });
  const hostnet: Manifest = {
    kind: 'Deployment',
    object: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'hostnet', namespace: 'default' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'hostnet' } },
        template: { metadata: { labels: { app: 'hostnet' } }, spec: { hostNetwork: true, containers: [{ name: 'h', image: 'registry.k8s.io/serve_hostname', ports: [{ containerPort: 9500 }] }] } },
      },
    },
  };
  await applyManifests(lab, [
    hostnet,
    nodePortService('hostnet', 9500),
    nodePortService('pod-n1', POD_PORT),
    nodePortService('pod-n2', POD_PORT),
    nodePortService('host-n1', HOST_PORT),
    nodePortService('host-n2', HOST_PORT),
    lbService('lb', 'pod-n2', EXTERNAL_IP),
  ]);
  t.deepEqual(lab.pods.filter((p) => p.owner === 'Deployment/default/hostnet').map((p) => [p.name, p.node, p.address]), [
    ['hostnet-1', 'node-1', '198.18.0.11'],
    ['hostnet-2', 'node-2', '198.18.0.12'],
  ]);
  const targets = [
    targetOf(lab, 'pod-n1', 'pod on this node'),
    targetOf(lab, 'pod-n2', 'pod on the other node'),
    targetOf(lab, 'host-n1', 'hostNetwork on this node'),
    targetOf(lab, 'host-n2', 'hostNetwork on the other node'),
  ];

  // The agent made the device and routed the Service range to it (the lab makes neither).
  const routes = await lab.exec('node-1', 'ip', ['-4', 'route', 'show', 'dev', 'svc0']);
  t.regex(routes, /^198\.19\.0\.0\/17 proto 191 scope link src 198\.18\.0\.11/m);

  const rows: Row[] = [];
  const lbIp = liveService(lab, 'lb').status!.loadBalancer!.ingress![0]!.ip!;
  const deadline = Date.now() + 10_000;
  let svcRoutes = '';
  while (!(svcRoutes = await lab.exec('node-1', 'ip', ['-4', 'route', 'show', 'dev', 'svc0', 'proto', '191'])).includes(lbIp) && Date.now() < deadline);
  t.deepEqual(svcRoutes.trim().split('\n').map((l) => l.split(' ')[0]).sort(), ['198.19.0.0/17', lbIp, EXTERNAL_IP].sort(), 'the Service range, the LoadBalancer IP and the externalIP');
  // Wait until both agents programmed everything: the last Service answers from both nodes.
  const last = targets[3]!;
  for (const from of ['node-1', 'node-2']) {
    const deadline = Date.now() + 20_000;
    while (tally(await lab.request(from, { address: last.clusterIp, port: 80, timeoutMs: 1000 })).byAnswer[last.name] !== 1 && Date.now() < deadline);
  }

  for (const x of targets) {
    await expectAnswers(t, lab, rows, 'node-1', x.clusterIp, 80, x.name, `node-1 → ClusterIP → ${x.what}`);
    await expectAnswers(t, lab, rows, 'node-1', node1.address, x.nodePort, x.name, `node-1 → own NodePort ${node1.address} → ${x.what}`);
  }
  await expectAnswers(t, lab, rows, 'node-1', lbIp, 80, 'pod-n2', `node-1 → LoadBalancer IP ${lbIp} → pod on the other node`);
  await expectAnswers(t, lab, rows, 'node-1', EXTERNAL_IP, 80, 'pod-n2', `node-1 → externalIP ${EXTERNAL_IP} → pod on the other node`);
  for (const x of targets.slice(2)) {
    await expectAnswers(t, lab, rows, 'client-1', node1.address, x.nodePort, x.name, `client → NodePort on node-1 → ${x.what}`);
  }
  const spread = tally(await lab.request('node-1', { address: targetOf(lab, 'hostnet', '').clusterIp, port: 80, count: 40, timeoutMs: 2000 }));
  rows.push({ path: 'node-1 → ClusterIP → hostNetwork Deployment (lab apply)', result: JSON.stringify(spread) });
  t.deepEqual(Object.keys(spread.byAnswer).sort(), ['hostnet-1', 'hostnet-2']);
  t.deepEqual(spread.byError, {});

  for (const direction of ['download', 'upload'] as const) {
    for (const x of [targets[0]!, targets[1]!, targets[2]!]) {
      expectTransfer(t, rows, await lab.transfer('node-1', { address: x.clusterIp, port: 80, direction, bytes: MIB16 }), x.name, `node-1 → ClusterIP → ${x.what}`);
    }
    expectTransfer(t, rows, await lab.transfer('client-1', { address: node1.address, port: targets[2]!.nodePort, direction, bytes: MIB16 }), 'host-n1', 'client → NodePort on node-1 → hostNetwork on node-1');
  }

  const width = Math.max(...rows.map((r) => r.path.length));
  t.log(`\n${rows.map((r) => `${r.path.padEnd(width)}  ${r.result}`).join('\n')}`);
  // The agents' logs say what they made.
  t.regex(readFileSync(agents.agent('node-1').log, 'utf8'), /service device created/);
});
