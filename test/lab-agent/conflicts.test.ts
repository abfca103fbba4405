// A hostile Service on an agent-run lab node, with real sockets: it lists the node address as an
// externalIP on the agent's health port (10256) and on the victim's NodePort, and the victim's
// ClusterIP on another port. The agents refuse those frontends (ts/model/refusals.ts): a load
// balancer's /healthz from outside keeps reaching the agent, the victim's NodePort keeps answering
// from the victim's pods only, and the refusals are reported by name in the agents' logs.
import { readFileSync } from 'node:fs';

import type { V1Deployment, V1Service } from '@kubernetes/client-node';

import { privilegedSerial } from '../helpers/env.js';
import { agentLabFor, hostnamesManifest, hostnamesService, liveService } from './_fixture.js';
import { eventually } from '../helpers/wait.js';

import { httpGet } from '../../ts/lab/agents.js';
import { applyManifests } from '../../ts/lab/file-api/apply.js';
import { tally } from '../../ts/lab/net/traffic.js';

const HEALTHZ_PORT = 10256;

privilegedSerial("a hostile Service on the node address's health port and the victim's NodePort: /healthz and the victim keep answering", async (t) => {
  t.timeout(300_000);
  // One node: another node's address as an externalIP gets a route to this node's service device,
  // which cuts this node off from that node (a separate, known gap: docs/operations.md).
  const { lab, agents } = await agentLabFor(t, { nodes: 1, clients: 1 });
  await applyManifests(lab, [hostnamesManifest(2), hostnamesService({ type: 'NodePort' })]);
  const victim = liveService(lab);
  const nodePort = victim.spec!.ports![0]!.nodePort!;
  const clusterIP = victim.spec!.clusterIP!;
  const client = lab.netnsName('client-1');
  const nodes = lab.nodes.map((n) => n.address);

  const healthz = () => Promise.all(nodes.map((address) => httpGet(client, address, HEALTHZ_PORT, '/healthz')));
  const victimAnswers = async () =>
    tally((await Promise.all(nodes.map((address) => lab.request('client-1', { address, port: nodePort, count: 10, concurrency: 2, timeoutMs: 2000 })))).flat());
  const agentAnswers = (hs: Awaited<ReturnType<typeof healthz>>) => hs.every((h) => h.status === 200 && typeof h.body === 'object' && h.body !== null && 'lastUpdated' in h.body);

  t.true(agentAnswers(await eventually('the agents to answer /healthz', healthz, agentAnswers)), 'the agents answer /healthz on the node addresses before');
  const before = await eventually('the victim NodePort to answer', victimAnswers, (a) => Object.keys(a.byError).length === 0);
  t.deepEqual(before.byError, {});

  const hostileDeployment: V1Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'hostile', namespace: 'default' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'hostile' } },
      template: { metadata: { labels: { app: 'hostile' } }, spec: { containers: [{ name: 'hostile', image: 'registry.k8s.io/serve_hostname', ports: [{ containerPort: 9376 }] }] } },
    },
  };
  const hostileService: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'hostile', namespace: 'default' },
    spec: {
      selector: { app: 'hostile' },
      externalIPs: [...nodes, clusterIP],
      ports: [
        { name: 'health', protocol: 'TCP', port: HEALTHZ_PORT, targetPort: 9376 as never },
        { name: 'nodeport', protocol: 'TCP', port: nodePort, targetPort: 9376 as never },
        { name: 'cip', protocol: 'TCP', port: 8080, targetPort: 9376 as never },
        // A node address on a port nothing else serves stays a valid externalIP, as with kube-proxy.
        { name: 'other', protocol: 'TCP', port: 8081, targetPort: 9376 as never },
      ],
    },
  };
  await applyManifests(lab, [{ kind: 'Deployment', object: hostileDeployment }, { kind: 'Service', object: hostileService }]);

  // The hostile Service is programmed (its valid frontend answers) ...
  const other = await eventually(
    'the hostile Service\'s own externalIP port to answer',
    () => lab.request('client-1', { address: nodes[0]!, port: 8081, count: 3, timeoutMs: 2000 }),
    (a) => a.every((x) => x.ok && x.answer.startsWith('hostile')),
    30_000,
  );
  t.true(other.every((x) => x.ok && x.answer.startsWith('hostile')), `the hostile Service's own externalIP port is served: ${JSON.stringify(other)}`);
  // ... and none of what it claimed from others is.
  for (let round = 0; round < 3; round++) {
    const hs = await healthz();
    t.true(agentAnswers(hs), `/healthz from outside still reaches the agents: ${JSON.stringify(hs)}`);
    const answers = await victimAnswers();
    t.deepEqual(answers.byError, {}, 'the victim NodePort answers every connection');
    t.true(Object.keys(answers.byAnswer).every((pod) => pod.startsWith('hostnames')), `only the victim's pods answer its NodePort: ${JSON.stringify(answers.byAnswer)}`);
  }
  for (const node of lab.nodes) {
    t.true(agents.isRunning(node.name));
    const log = readFileSync(agents.agent(node.name).log, 'utf8');
    t.regex(log, new RegExp(`ExternalIP frontend ${node.address.replaceAll('.', '\\.')}:${HEALTHZ_PORT}/TCP refused: .* is where the agent serves healthz`));
    t.regex(log, new RegExp(`ExternalIP frontend ${node.address.replaceAll('.', '\\.')}:${nodePort}/TCP refused: .* the NodePort of default/hostnames`));
    t.regex(log, new RegExp(`ExternalIP frontend ${clusterIP.replaceAll('.', '\\.')}:8080/TCP refused: .* is the ClusterIP of default/hostnames`));
  }
});
