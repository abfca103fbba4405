// Bad input next to a good Service on agent-run lab nodes, with real traffic: malformed Services and
// EndpointSlices and a YAML alias bomb are written into the cluster directory both agents read,
// then changed into other malformations, while a client keeps connecting to the good Service's
// NodePort. Every connection is answered, the good Service's scale-up (a new endpoint, arriving
// beside the malformed objects) gets traffic, no agent exits, and the bad objects are reported by
// name and field in the agents' logs.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { privilegedSerial } from '../helpers/env.js';
import { agentLabFor, hostnamesManifest, hostnamesService, liveService } from './_fixture.js';
import { eventually } from '../helpers/wait.js';

import { applyManifests } from '../../ts/lab/file-api/apply.js';
import { clusterDirOf } from '../../ts/lab/file-api/file-cluster.js';
import { tally, type Answer } from '../../ts/lab/net/traffic.js';

const badService = (ports: string) => `apiVersion: v1
kind: Service
metadata: { name: bad, namespace: default }
spec: { type: NodePort, clusterIP: 198.19.0.200, ports: ${ports} }
`;
const badSlice = (endpoints: string) => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: bad-abc, namespace: default, labels: { kubernetes.io/service-name: bad } }
addressType: IPv4
ports: [{ name: '', port: 9376, protocol: TCP }]
endpoints: ${endpoints}
`;
const aliasBomb = ['kind: Service', 'metadata: { name: bomb }', 'x0: &a0 [lol, lol]', ...Array.from({ length: 9 }, (_, i) => `x${i + 1}: &a${i + 1} [${Array(12).fill(`*a${i}`).join(', ')}]`)].join('\n');

privilegedSerial('malformed objects and an alias bomb beside a good Service: every connection answered, its scale-up served, no agent exits', async (t) => {
  t.timeout(300_000);
  const { lab, agents } = await agentLabFor(t, { nodes: 2, clients: 1 });
  await applyManifests(lab, [hostnamesManifest(2), hostnamesService({ type: 'NodePort' })]);
  const nodePort = liveService(lab).spec!.ports![0]!.nodePort!;
  const dir = clusterDirOf(lab);
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, `.${name}.tmp`), text);
    renameSync(join(dir, `.${name}.tmp`), join(dir, name));
  };
  const targets = lab.nodes.map((n) => n.address);
  const ask = () => Promise.all(targets.map((address) => lab.request('client-1', { address, port: nodePort, count: 10, concurrency: 2, timeoutMs: 2000 }))).then((r) => r.flat());
  const first = tally(await eventually('the good Service to answer', ask, (a) => a.every((x) => x.ok)));
  t.deepEqual(first.byError, {}, 'the good Service answers before anything bad arrives');

  // Connections all along.
  const answers: Answer[] = [];
  let stop = false;
  const traffic = (async () => {
    while (!stop) answers.push(...(await ask()));
  })();

  write('zz-bad.yaml', `${badService('"80"')}---\n${badSlice('[null]')}`);
  write('zz-bomb.yaml', `${aliasBomb}\n`);
  await sleep(2000);
  // The good Service's change beside the malformed objects, and new malformations meanwhile.
  await applyManifests(lab, [hostnamesManifest(3)]);
  write('zz-bad.yaml', `${badService('[null]')}---\n${badSlice('[{ addresses: [198.18.128.250], conditions: { ready: "false" } }]')}`);
  const scaled = await eventually('the third replica to answer', ask, (a) => new Set(a.filter((x) => x.ok).map((x) => (x as { answer: string }).answer)).size === 3, 30_000);
  t.is(new Set(scaled.filter((x) => x.ok).map((x) => (x as { answer: string }).answer)).size, 3, 'the third replica is served');
  await sleep(2000);
  stop = true;
  await traffic;

  const during = tally(answers);
  t.log(`connections while bad input came and changed: ${answers.length}, by answer ${JSON.stringify(during.byAnswer)}`);
  t.true(answers.length >= 40);
  t.deepEqual(during.byError, {}, 'no connection failed');
  for (const node of lab.nodes) {
    t.true(agents.isRunning(node.name), `the agent of ${node.name} runs`);
    t.is((await agents.health(node.name)).status, 200);
    const log = readFileSync(agents.agent(node.name).log, 'utf8');
    t.regex(log, /Service default\/bad: rejected: spec\.ports: expected a list/);
    t.regex(log, /endpoints\[0\]\.conditions\.ready: expected true or false/);
    t.regex(log, /zz-bomb\.yaml.*document 1 \(from line 1\): Excessive alias count/);
  }
});
