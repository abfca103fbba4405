/**
 * The demo scenario (shared/reference/lab.md) played with kubectl against a real API server, checked
 * with real requests from outside clients and from pods: Deployment `hostnames`, exposed as a
 * ClusterIP Service, scaled, changed to NodePort and LoadBalancer, restricted by source ranges, given
 * an externalIP, switched to externalTrafficPolicy Local (with its health-check node port), and given
 * session affinity. Written once against ClusterDriver: it runs on the lab (--api kube) and on kind.
 *
 * The steps build on each other (as in the demo), so they are serial; each waits for the datapath to
 * converge (eventually) and then checks a steady batch of requests.
 */
import type { ExecutionContext } from 'ava';

import type { ClusterDriver, From, Place, RequestSpec } from './_driver.js';
import { allFrom, e2eAfterAlways, e2eBefore, e2eTest, failures, noneAnswered, startDriver, tally } from './_fixture.js';
import { eventually } from '../helpers/wait.js';

const PORT = 9376;
let driver: ClusterDriver | undefined;
/** One probe pod per node, pinned there, to send requests from inside the cluster. */
const probes = new Map<string, string>();

function d(): ClusterDriver {
  if (!driver) throw new Error('no cluster driver');
  return driver;
}

const ns = () => d().namespace;
const kubectl = (...args: string[]) => d().kubectl(['-n', ns(), ...args]);
const json = async <T>(...args: string[]): Promise<T> => JSON.parse(await kubectl(...args, '-o', 'json')) as T;
const patchService = (name: string, patch: unknown) => kubectl('patch', 'service', name, '-p', JSON.stringify(patch));

interface PodInfo {
  name: string;
  node: string;
  ip: string;
}
interface ServiceObj {
  spec: {
    clusterIP: string;
    ports: Array<{ port: number; nodePort?: number; protocol: string }>;
    healthCheckNodePort?: number;
  };
}

async function readyPods(selector: string): Promise<PodInfo[]> {
  const list = await json<{
    items: Array<{
      metadata: { name: string; deletionTimestamp?: string };
      spec: { nodeName?: string };
      status: { podIP?: string; conditions?: Array<{ type: string; status: string }> };
    }>;
  }>('get', 'pods', '-l', selector);
  return list.items
    .filter((p) => !p.metadata.deletionTimestamp && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .map((p) => ({ name: p.metadata.name, node: p.spec.nodeName ?? '', ip: p.status.podIP ?? '' }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Waits until exactly `n` pods of the selector are ready and no other is still around. */
async function waitForPods(n: number, selector = 'app=hostnames'): Promise<PodInfo[]> {
  let pods: PodInfo[] = [];
  await eventually(`${n} ready pods (${selector})`, async () => {
    pods = await readyPods(selector);
    const all = (await kubectl('get', 'pods', '-l', selector, '-o', 'name')).trim().split('\n').filter(Boolean);
    return pods.length === n && all.length === n ? true : `${pods.length} ready of ${all.length}`;
  }, 90_000);
  return pods;
}

const service = (name: string) => json<ServiceObj>('get', 'service', name);
const names = (pods: PodInfo[]) => pods.map((p) => p.name);

/** A probe pod on some node other than `node` (the "pod on another node" of the demo). */
function probeNotOn(node: string): string {
  const other = [...probes].find(([n]) => n !== node);
  if (!other) throw new Error(`no probe pod off ${node}`);
  return other[1];
}

/** Requests from `from` converge on answers from `pods` only, then a steady batch confirms it. */
async function reaches(t: ExecutionContext, from: From, spec: RequestSpec, pods: readonly string[], steady = 20): Promise<void> {
  const label = `${JSON.stringify(from)} → ${spec.address}:${spec.port}/${spec.protocol ?? 'TCP'}`;
  await eventually(label, async () => allFrom(await d().request(from, { ...spec, count: 5 }), pods));
  const answers = await d().request(from, { ...spec, count: steady });
  t.is(allFrom(answers, pods), true, label);
}

/** Requests from `from` converge on none being answered (dropped or refused), and stay so. */
async function blocked(t: ExecutionContext, from: From, spec: RequestSpec): Promise<void> {
  const label = `${JSON.stringify(from)} ↛ ${spec.address}:${spec.port}`;
  const quick = { ...spec, timeoutMs: 1000 };
  await eventually(label, async () => noneAnswered(await d().request(from, { ...quick, count: 3 })));
  t.is(noneAnswered(await d().request(from, { ...quick, count: 10 })), true, label);
}

e2eBefore(async (t) => {
  driver = await startDriver(t);
  t.log(`cluster: ${driver.kind}; nodes ${driver.nodes.map((n) => `${n.name} ${n.address}`).join(', ')}; clients ${driver.clients.map((c) => `${c.name} ${c.address}`).join(', ')}`);
  await d().kubectl(['create', 'namespace', ns()]);
  // The namespace's default ServiceAccount must exist before pods can be created in it.
  await eventually('the default ServiceAccount', async () => ((await kubectl('get', 'serviceaccounts', '-o', 'name')).includes('serviceaccount/default') ? true : 'not yet'));
  const c = d().hostnameContainer(PORT);
  for (const [i, node] of d().nodes.entries()) {
    const name = `probe-${i + 1}`;
    probes.set(node.name, name);
    await d().kubectl(['apply', '-n', ns(), '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels: { app: 'probe' } },
        spec: {
          nodeName: node.name,
          tolerations: [{ operator: 'Exists' }],
          terminationGracePeriodSeconds: 1,
          containers: [{ name: 'probe', image: c.image, command: c.command, ports: [{ containerPort: PORT }] }],
        },
      }),
    });
  }
  await waitForPods(d().nodes.length, 'app=probe');
});

e2eAfterAlways(async () => {
  await driver?.close();
});

e2eTest('1. ClusterIP: a pod on another node reaches the Deployment through the ClusterIP, over TCP and UDP', async (t) => {
  const c = d().hostnameContainer(PORT);
  await kubectl('create', 'deployment', 'hostnames', `--image=${c.image}`, `--port=${PORT}`, '--', ...c.command);
  await kubectl('expose', 'deployment', 'hostnames', '--port=80', `--target-port=${PORT}`);
  await kubectl('expose', 'deployment', 'hostnames', '--name=hostnames-udp', '--protocol=UDP', '--port=53', `--target-port=${PORT}`);
  const pods = await waitForPods(1);
  const svc = await service('hostnames');
  const udp = await service('hostnames-udp');
  t.regex(svc.spec.clusterIP, /^\d+\.\d+\.\d+\.\d+$/);
  const from = { pod: probeNotOn(pods[0]!.node) };
  await reaches(t, from, { address: svc.spec.clusterIP, port: 80 }, names(pods));
  await reaches(t, from, { address: udp.spec.clusterIP, port: 53, protocol: 'UDP' }, names(pods));
});

e2eTest('2. scaled to 3 replicas, new connections spread evenly over the three pods', async (t) => {
  await kubectl('scale', 'deployment', 'hostnames', '--replicas=3');
  const pods = await waitForPods(3);
  t.true(new Set(pods.map((p) => p.node)).size > 1, 'the replicas run on more than one node');
  const svc = await service('hostnames');
  const from = { pod: probes.values().next().value! };
  await eventually('all three pods answer', async () => {
    const seen = Object.keys(tally(await d().request(from, { address: svc.spec.clusterIP, port: 80, count: 30 })).byAnswer);
    return seen.length === 3 ? true : `seen ${seen.join(', ')}`;
  });
  const answers = await d().request(from, { address: svc.spec.clusterIP, port: 80, count: 300 });
  const { byAnswer, byError } = tally(answers);
  t.log(JSON.stringify(byAnswer));
  t.deepEqual(byError, {});
  t.deepEqual(Object.keys(byAnswer).sort(), names(pods));
  // An even split is 100 each; a uniform random choice stays within 60…140 with overwhelming odds.
  for (const [pod, n] of Object.entries(byAnswer)) t.true(n >= 60 && n <= 140, `${pod}: ${n} of 300`);
});

e2eTest('3. NodePort: outside clients reach it on every node address, pods too', async (t) => {
  await patchService('hostnames', { spec: { type: 'NodePort' } });
  const svc = await service('hostnames');
  const nodePort = svc.spec.ports[0]!.nodePort!;
  t.true(nodePort >= 30000 && nodePort <= 32767, `node port ${nodePort}`);
  const pods = names(await waitForPods(3));
  for (const node of d().nodes) {
    for (const client of d().clients) await reaches(t, { client: client.name }, { address: node.address, port: nodePort }, pods, 10);
    await reaches(t, { pod: probeNotOn(node.name) }, { address: node.address, port: nodePort }, pods, 10);
  }
});

let lbIP = '';

e2eTest('4. LoadBalancer: the ingress IP answers outside clients and pods', async (t) => {
  await patchService('hostnames', { spec: { type: 'LoadBalancer' } });
  lbIP = await d().loadBalancerIP('hostnames');
  await d().routeToNodes(lbIP);
  const pods = names(await waitForPods(3));
  for (const client of d().clients) await reaches(t, { client: client.name }, { address: lbIP, port: 80 }, pods);
  await reaches(t, { pod: probes.values().next().value! }, { address: lbIP, port: 80 }, pods);
  // The node port stays (a LoadBalancer is a NodePort too).
  const svc = await service('hostnames');
  await reaches(t, { client: d().clients[0]!.name }, { address: d().nodes[0]!.address, port: svc.spec.ports[0]!.nodePort! }, pods, 5);
});

e2eTest('5. loadBalancerSourceRanges: the allowed client reaches the ingress IP, the other is dropped; lifting the ranges lets it in', async (t) => {
  const [allowed, denied] = d().clients as [Place, Place];
  await patchService('hostnames', { spec: { loadBalancerSourceRanges: [`${allowed.address}/32`] } });
  const pods = names(await waitForPods(3));
  await blocked(t, { client: denied.name }, { address: lbIP, port: 80 });
  await reaches(t, { client: allowed.name }, { address: lbIP, port: 80 }, pods);
  await patchService('hostnames', { spec: { loadBalancerSourceRanges: null } });
  await reaches(t, { client: denied.name }, { address: lbIP, port: 80 }, pods);
});

e2eTest('6. externalIPs: clients and pods reach the Service on its external IP', async (t) => {
  const ip = d().externalIP;
  await patchService('hostnames', { spec: { externalIPs: [ip] } });
  await d().routeToNodes(ip);
  const pods = names(await waitForPods(3));
  for (const client of d().clients) await reaches(t, { client: client.name }, { address: ip, port: 80 }, pods);
  await reaches(t, { pod: probes.values().next().value! }, { address: ip, port: 80 }, pods);
  await patchService('hostnames', { spec: { externalIPs: null } });
  await blocked(t, { client: d().clients[0]!.name }, { address: ip, port: 80 });
});

e2eTest('7. externalTrafficPolicy Local: health-check node port counts local endpoints; node ports answer only where a pod runs, keeping the client address', async (t) => {
  await patchService('hostnames', { spec: { externalTrafficPolicy: 'Local' } });
  let svc = await service('hostnames');
  const hcPort = svc.spec.healthCheckNodePort!;
  t.true(hcPort >= 30000 && hcPort <= 32767, `health-check node port ${hcPort}`);
  const nodePort = svc.spec.ports[0]!.nodePort!;
  const client = d().clients[0]!;

  const checkHealth = async (pods: PodInfo[]) => {
    for (const node of d().nodes) {
      const local = pods.filter((p) => p.node === node.name).length;
      await eventually(`health check of ${node.name}`, async () => {
        const [a] = await d().request({ client: client.name }, { address: node.address, port: hcPort, ask: '' });
        if (!a?.ok) return JSON.stringify(a);
        let body: { service: { namespace: string; name: string }; localEndpoints: number };
        try {
          body = JSON.parse(a.answer) as typeof body;
        } catch {
          return `not JSON: ${JSON.stringify(a.answer)}`;
        }
        return body.localEndpoints === local && body.service.name === 'hostnames' && body.service.namespace === ns() ? true : a.answer;
      });
    }
  };
  await checkHealth(await waitForPods(3));

  // Down to one pod: one node has it, the others have none.
  await kubectl('scale', 'deployment', 'hostnames', '--replicas=1');
  const [pod] = await waitForPods(1);
  await checkHealth([pod!]);
  const home = d().nodes.find((n) => n.name === pod!.node)!;
  await reaches(t, { client: client.name }, { address: home.address, port: nodePort }, [pod!.name]);
  const [seen] = await d().request({ client: client.name }, { address: home.address, port: nodePort, ask: 'clientip' });
  t.true(seen?.ok && seen.answer.startsWith(`${client.address}:`), `the pod saw ${JSON.stringify(seen)}, the client is ${client.address}`);
  for (const node of d().nodes.filter((n) => n.name !== home.name)) await blocked(t, { client: client.name }, { address: node.address, port: nodePort });

  await patchService('hostnames', { spec: { externalTrafficPolicy: 'Cluster' } });
  svc = await service('hostnames');
  t.falsy(svc.spec.healthCheckNodePort, 'the health-check node port is released');
  for (const node of d().nodes) await reaches(t, { client: client.name }, { address: node.address, port: nodePort }, [pod!.name], 5);
});

e2eTest('8. session affinity ClientIP: each client sticks to one pod; without it, it spreads again', async (t) => {
  await kubectl('scale', 'deployment', 'hostnames', '--replicas=3');
  const pods = names(await waitForPods(3));
  const svc = await service('hostnames');
  const node = d().nodes[0]!;
  const nodePort = svc.spec.ports[0]!.nodePort!;
  const froms: Array<[From, RequestSpec]> = [
    ...[...probes.values()].map((p): [From, RequestSpec] => [{ pod: p }, { address: svc.spec.clusterIP, port: 80 }]),
    ...d().clients.map((c): [From, RequestSpec] => [{ client: c.name }, { address: node.address, port: nodePort }]),
  ];
  const distinct = async (from: From, spec: RequestSpec, count: number) => {
    const all = await d().request(from, { ...spec, count });
    const { byAnswer, byError } = tally(all);
    return { answers: Object.keys(byAnswer), byError, why: failures(all).join('; ') };
  };
  await eventually('spread before affinity', async () => {
    const { answers } = await distinct(froms[0]![0], froms[0]![1], 30);
    return answers.length === 3 ? true : answers.join(',');
  });

  await patchService('hostnames', { spec: { sessionAffinity: 'ClientIP' } });
  for (const [from, spec] of froms) {
    await eventually(`affinity for ${JSON.stringify(from)}`, async () => {
      const { answers, byError, why } = await distinct(from, spec, 20);
      return answers.length === 1 && Object.keys(byError).length === 0 ? true : `${answers.join(',')} ${JSON.stringify(byError)} ${why}`;
    });
    const { answers, byError, why } = await distinct(from, spec, 50);
    t.deepEqual(byError, {}, `${JSON.stringify(from)}: ${why}`);
    t.is(answers.length, 1, `${JSON.stringify(from)} sticks to one pod: ${answers.join(', ')}`);
    t.true(pods.includes(answers[0]!));
  }

  await patchService('hostnames', { spec: { sessionAffinity: 'None' } });
  await eventually('spread again', async () => {
    const { answers } = await distinct(froms[0]![0], froms[0]![1], 30);
    return answers.length === 3 ? true : answers.join(',');
  });
});
