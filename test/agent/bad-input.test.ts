// Bad input next to good through the agent as operators run it (_fixture.ts: the real command in a
// namespace, a YAML directory, real maps): malformed objects and a YAML alias bomb present at start
// do not stop the agent becoming ready; they are reported by name and field (log, metric); and a
// good Service's change arriving next to a malformed object's change is programmed.
import { setTimeout as sleep } from 'node:timers/promises';

import { privilegedSerial } from '../helpers/env.js';
import { AgentNode, HEALTHZ_PORT, serviceYaml, sliceYaml } from './_fixture.js';

const web = serviceYaml('web', 'clusterIP: 198.19.0.10\nports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP }]');
const webSlice = (ips: string[]) => sliceYaml('web', { name: 'http', port: 8080 }, ips.map((ip) => ({ ip, node: 'node-2' })));
const badService = (ports: string) => serviceYaml('bad', `clusterIP: 198.19.0.20\nports: ${ports}`);
const badSlice = (endpoints: string) => `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: bad-abc, namespace: default, labels: { kubernetes.io/service-name: bad } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints: ${endpoints}
`;
const aliasBomb = ['kind: Service', 'metadata: { name: bomb }', 'x0: &a0 [lol, lol]', ...Array.from({ length: 9 }, (_, i) => `x${i + 1}: &a${i + 1} [${Array(12).fill(`*a${i}`).join(', ')}]`)].join('\n');

privilegedSerial('malformed objects and an alias bomb at start: the agent gets ready, reports them, and programs a good change beside them', async (t) => {
  const node = await AgentNode.create(t);
  node.writeSource('web.yaml', web + webSlice(['198.18.130.5']));
  node.writeSource('bad.yaml', badService('"80"') + badSlice('[null]'));
  node.writeSource('bomb.yaml', `${serviceYaml('also', 'clusterIP: 198.19.0.30\nports: [{ name: http, port: 80 }]')}---\n${aliasBomb}\n`);

  const ready = await node.start();
  t.like(ready, { msg: 'agent ready', failures: 0 });
  const dump = node.dump();
  t.true(dump.includes('svc 198.19.0.10:80/TCP all[1] → backend 1') || dump.some((l) => /^svc 198\.19\.0\.10:80\/TCP all\[1\] → backend \d+$/.test(l)), dump.join('\n'));
  t.true(dump.some((l) => l.startsWith('svc 198.19.0.30:80/TCP →')), 'the alias bomb cost only its own document: the file\'s other Service is programmed');
  t.false(dump.some((l) => l.includes('198.19.0.20')), 'the malformed Service is not programmed');

  const problem = await node.waitForLog((l) => l.kind === 'Service' && l.name === 'bad' && typeof l.reason === 'string' && l.reason.includes('spec.ports: expected a list'));
  t.is(problem.namespace, 'default');
  await node.waitForLog((l) => l.kind === 'EndpointSlice' && l.name === 'bad-abc' && typeof l.reason === 'string' && l.reason.includes('endpoints[0]: expected an object'));
  const bomb = await node.waitForLog((l) => l.file === 'bomb.yaml');
  t.regex(String(bomb.reason), /^document 2 \(from line \d+\): Excessive alias count/);
  t.true((await node.metric('bpfproxy_service_problems{kind="Service"}'))! >= 1);
  t.true((await node.metric('bpfproxy_service_problems{kind="EndpointSlice"}'))! >= 1);
  t.is((await node.http(HEALTHZ_PORT, '/healthz')).code, 200);

  // The good Service's new endpoint and a new malformation of the bad one, in the same scan.
  node.writeSource('bad.yaml', badService('[null]') + badSlice('[{ addresses: [198.18.131.9], conditions: { ready: "false" } }]'));
  node.writeSource('web.yaml', web + webSlice(['198.18.130.5', '198.18.130.6']));
  await node.waitForDump((d) => d.some((l) => l.includes('198.18.130.6:8080')) && d.filter((l) => /^svc 198\.19\.0\.10:80\/TCP all\[\d\]/.test(l)).length === 2, 'the good Service\'s new endpoint');
  await node.waitForLog((l) => l.kind === 'Service' && l.name === 'bad' && typeof l.reason === 'string' && l.reason.includes('spec.ports[0]: expected an object'));
  await node.waitForLog((l) => l.kind === 'EndpointSlice' && l.name === 'bad-abc' && typeof l.reason === 'string' && l.reason.includes('endpoints[0].conditions.ready: expected true or false'));
  t.false(node.dump().some((l) => l.includes('198.18.131.9')), 'ready: "false" is not ready, nor anything');

  // Fixed: the bad Service is programmed, its problems resolved.
  node.writeSource('bad.yaml', badService('[{ name: http, port: 80 }]') + badSlice('[{ addresses: [198.18.131.9] }]'));
  await node.waitForDump((d) => d.some((l) => l.startsWith('svc 198.19.0.20:80/TCP all[1]')), 'the fixed Service');
  await node.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('resolved: Service default/bad'));
  await sleep(10);
  t.is((await node.http(HEALTHZ_PORT, '/healthz')).code, 200);
  t.is(await node.stop(), 0);
});
