/**
 * The lab in --api kube mode without agents: the real controller manager, the lab kubelet, node
 * heartbeats, the lab cloud controller and the API relay into node namespaces. What is checked is
 * what the real controllers and the API report (kubectl), and what real sockets in the lab answer.
 */
import type { ExecutionContext } from 'ava';

import { resolveAssets } from '../../ts/kube/binaries.js';
import { KubeLab } from '../../ts/lab/kube-api/kube-mode.js';
import { runId } from '../../ts/lab/net/netns.js';
import { Lab } from '../../ts/lab/topology.js';
import { labKubeAfterAlways, labKubeBefore, labKubeTest } from './_fixture.js';
import { eventually } from '../helpers/wait.js';

let lab: Lab | undefined;
let kube: KubeLab | undefined;

labKubeBefore(async (t) => {
  t.timeout(45 * 60_000, 'binaries, lab and control plane');
  const assetsDir = await resolveAssets((l) => t.log(l));
  lab = await Lab.up({ name: `k-${runId()}`, nodes: 2, clients: 1 });
  kube = await KubeLab.start(lab, { assetsDir, agents: false });
});

labKubeAfterAlways(async () => {
  await kube?.stop();
  await lab?.down();
});

function k(): KubeLab {
  if (!kube) throw new Error('no kube lab');
  return kube;
}

const json = async <T>(args: string[]): Promise<T> => JSON.parse(await k().kubectl([...args, '-o', 'json'])) as T;

interface Pod {
  metadata: { name: string; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: { phase?: string; podIP?: string; hostIP?: string; conditions?: Array<{ type: string; status: string }> };
}
interface Slice {
  endpoints?: Array<{ addresses: string[]; nodeName?: string; targetRef?: { name: string }; conditions: { ready?: boolean; serving?: boolean; terminating?: boolean } }>;
}

const readyPods = async (selector: string, ns = 'default') =>
  (await json<{ items: Pod[] }>(['get', 'pods', '-n', ns, '-l', selector])).items.filter(
    (p) => !p.metadata.deletionTimestamp && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );

const slicesOf = async (svc: string, ns = 'default') =>
  (await json<{ items: Slice[] }>(['get', 'endpointslices', '-n', ns, '-l', `kubernetes.io/service-name=${svc}`])).items;

async function waitForPods(t: ExecutionContext, selector: string, n: number, ns = 'default'): Promise<Pod[]> {
  let pods: Pod[] = [];
  await eventually(`${n} ready pods ${selector}`, async () => (pods = await readyPods(selector, ns)).length === n, 60_000);
  t.log(pods.map((p) => `${p.metadata.name} ${p.spec.nodeName} ${p.status.podIP}`).join('\n'));
  return pods;
}

labKubeTest('lab nodes are registered Ready with their address, pod CIDR and zone, and their leases are renewed', async (t) => {
  const nodes = await json<{ items: Array<{ metadata: { name: string; labels: Record<string, string> }; spec: { podCIDR: string }; status: { addresses: Array<{ type: string; address: string }>; conditions: Array<{ type: string; status: string }> } }> }>(['get', 'nodes']);
  t.deepEqual(
    nodes.items.map((n) => [n.metadata.name, n.status.addresses.find((a) => a.type === 'InternalIP')?.address, n.spec.podCIDR, n.metadata.labels['topology.kubernetes.io/zone'], n.status.conditions.find((c) => c.type === 'Ready')?.status]),
    [
      ['node-1', '198.18.0.11', '198.18.129.0/24', 'zone-a', 'True'],
      ['node-2', '198.18.0.12', '198.18.130.0/24', 'zone-b', 'True'],
    ],
  );
  const leases = await json<{ items: Array<{ metadata: { name: string }; spec: { renewTime: string } }> }>(['get', 'leases', '-n', 'kube-node-lease']);
  t.deepEqual(leases.items.map((l) => l.metadata.name).sort(), ['node-1', 'node-2']);
  for (const l of leases.items) t.true(Date.now() - Date.parse(l.spec.renewTime) < 30_000, `${l.metadata.name} renewed lately`);
});

labKubeTest('a Deployment made with kubectl runs: pods bound and spread, Running and Ready, serving their names; the EndpointSlice controller lists them', async (t) => {
  await k().kubectl(['create', 'deployment', 'hostnames', '--image=registry.k8s.io/e2e-test-images/agnhost:2.53', '--port=9376', '--replicas=3', '--', '/agnhost', 'netexec', '--http-port=9376']);
  await k().kubectl(['expose', 'deployment', 'hostnames', '--port=80', '--target-port=9376']);
  const pods = await waitForPods(t, 'app=hostnames', 3);
  const perNode = new Map<string, number>();
  for (const p of pods) perNode.set(p.spec.nodeName!, (perNode.get(p.spec.nodeName!) ?? 0) + 1);
  t.deepEqual([...perNode.values()].sort(), [1, 2], 'spread over both nodes');
  for (const p of pods) {
    const node = lab!.node(p.spec.nodeName!);
    t.is(p.status.hostIP, node.address);
    t.true(p.status.podIP!.startsWith(node.podCidr.replace(/0\/24$/, '')), `${p.status.podIP} in ${node.podCidr}`);
    // Straight to the pod's address from the other node: routing, no Service involved.
    const other = lab!.nodes.find((n) => n.name !== node.name)!;
    const [answer] = await lab!.request(other.name, { address: p.status.podIP!, port: 9376, http: '/hostname' });
    t.deepEqual(answer && answer.ok ? answer.answer : answer, k().labPodName('default', p.metadata.name));
  }
  await eventually('3 ready endpoints', async () => (await slicesOf('hostnames')).flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions.ready).length === 3);
  const endpoints = (await slicesOf('hostnames')).flatMap((s) => s.endpoints ?? []);
  t.deepEqual(endpoints.map((e) => e.addresses[0]).sort(), pods.map((p) => p.status.podIP).sort());
  t.deepEqual(endpoints.map((e) => e.nodeName).sort(), pods.map((p) => p.spec.nodeName).sort());
});

labKubeTest('spec.nodeName is respected, and a pod declaring no port serves on 9376', async (t) => {
  await k().kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'pinned', namespace: 'default' }, spec: { nodeName: 'node-2', containers: [{ name: 'c', image: 'x' }] } }),
  });
  await eventually('pinned running', async () => (await json<Pod>(['get', 'pod', 'pinned'])).status.phase === 'Running', 30_000);
  const pod = await json<Pod>(['get', 'pod', 'pinned']);
  t.is(pod.spec.nodeName, 'node-2');
  const [answer] = await lab!.request('node-1', { address: pod.status.podIP!, port: 9376 });
  t.deepEqual(answer && answer.ok ? answer.answer : answer, 'pinned');
});

labKubeTest('a deleted pod stays terminating (and serving) through its preStop sleep, then its namespace and object go', async (t) => {
  const preStop = { lifecycle: { preStop: { sleep: { seconds: 4 } } } };
  await k().kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'slow-stop', namespace: 'default', labels: { app: 'slow' } },
      spec: { terminationGracePeriodSeconds: 10, containers: [{ name: 'c', image: 'x', ports: [{ containerPort: 9376 }], ...preStop }] },
    }),
  });
  await k().kubectl(['create', 'service', 'clusterip', 'slow', '--tcp=80:9376']);
  await k().kubectl(['set', 'selector', 'service', 'slow', 'app=slow']);
  await waitForPods(t, 'app=slow', 1);
  await eventually('a ready endpoint', async () => (await slicesOf('slow')).some((s) => s.endpoints?.some((e) => e.conditions.ready)));
  const deletedAt = Date.now();
  await k().kubectl(['delete', 'pod', 'slow-stop', '--wait=false']);
  await eventually('a terminating, serving endpoint', async () =>
    (await slicesOf('slow')).some((s) => s.endpoints?.some((e) => e.conditions.terminating === true && e.conditions.serving === true && e.conditions.ready === false)),
  );
  t.true(lab!.pods.some((p) => p.name === 'slow-stop'), 'its namespace is still there');
  await eventually('the pod object gone', async () => !(await k().kubectl(['get', 'pods', '-o', 'name'])).includes('pod/slow-stop'), 20_000);
  const took = Date.now() - deletedAt;
  t.true(took >= 3500, `terminating for ${took} ms, at least the 4 s preStop sleep`);
  t.false(lab!.pods.some((p) => p.name === 'slow-stop'), 'its namespace is gone');
  t.false((await lab!.existingNetns()).some((n) => n.endsWith('-slow-stop')));
});

labKubeTest('LoadBalancer Services get an ingress IP from 198.19.255.0/24; a type change back removes it', async (t) => {
  await k().kubectl(['create', 'service', 'loadbalancer', 'lb1', '--tcp=80:9376']);
  await k().kubectl(['create', 'service', 'loadbalancer', 'lb2', '--tcp=80:9376']);
  const ingress = async (svc: string) =>
    (await json<{ status: { loadBalancer: { ingress?: Array<{ ip: string }> } } }>(['get', 'service', svc])).status.loadBalancer.ingress?.map((i) => i.ip) ?? [];
  await eventually('ingress IPs', async () => (await ingress('lb1')).length === 1 && (await ingress('lb2')).length === 1, 15_000);
  const [a] = await ingress('lb1');
  const [b] = await ingress('lb2');
  t.regex(a!, /^198\.19\.255\.\d+$/);
  t.regex(b!, /^198\.19\.255\.\d+$/);
  t.not(a, b);
  await k().kubectl(['patch', 'service', 'lb1', '-p', JSON.stringify({ spec: { type: 'ClusterIP' } })]);
  await eventually('ingress removed', async () => (await ingress('lb1')).length === 0, 15_000);
  t.deepEqual(await ingress('lb2'), [b!], 'the other keeps its IP');
});

labKubeTest('inside a node namespace, the agents kubeconfig reaches the API server as the bpfproxy ServiceAccount', async (t) => {
  const kc = k().state.agentKubeconfig;
  const out = await lab!.exec('node-1', k().state.kubectl, ['--kubeconfig', kc, 'get', 'services', '-A', '-o', 'name']);
  t.true(out.includes('service/hostnames'), out);
  const err = await t.throwsAsync(lab!.exec('node-1', k().state.kubectl, ['--kubeconfig', kc, 'get', 'pods', '-A']));
  t.regex(err?.message ?? '', /forbidden/i, 'the agent may not list pods');
});
