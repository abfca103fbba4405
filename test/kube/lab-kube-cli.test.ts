/**
 * `bpfproxy lab up --api kube` as users run it, in separate processes: the lab comes up with a
 * detached supervisor owning the control plane, kubelet and agents; `lab kubectl` drives it;
 * traffic flows; `lab down` stops every process it started (supervisor, etcd, apiserver,
 * controller manager, relays, agents, pods) and leaves no namespace or state behind.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

import { isServerAlive } from '../../ts/lab/hostname-process.js';
import { readKubeLabState, type KubeLabState } from '../../ts/lab/kube-api/kube-mode.js';
import { runId } from '../../ts/lab/net/netns.js';
import { labNetns } from '../../ts/lab/teardown.js';
import { Lab } from '../../ts/lab/topology.js';
import { tally } from '../../ts/lab/net/traffic.js';
import { labKubeTest } from './_fixture.js';
import { eventually } from '../helpers/wait.js';

const bin = new URL('../../bin/bpfproxy.js', import.meta.url).pathname;
const bpfproxy = async (...args: string[]) => (await promisify(execFile)(process.execPath, [bin, ...args], { timeout: 5 * 60_000 })).stdout;

labKubeTest('lab up --api kube, lab kubectl, traffic, lab down: nothing left behind', async (t) => {
  t.timeout(6 * 60_000);
  const name = `c-${runId()}`;
  t.teardown(async () => {
    await bpfproxy('lab', 'down', '--name', name).catch(() => undefined);
  });
  const up = await bpfproxy('lab', 'up', '--name', name, '--nodes', '2', '--clients', '1', '--api', 'kube');
  t.regex(up, /kubernetes API https:\/\/127\.0\.0\.1:\d+/);
  const lab = Lab.open(name);
  const state = lab.status();
  const kube = readKubeLabState(state) as KubeLabState;
  t.true(isServerAlive({ ...kube.owner, log: '' }), 'the supervisor runs after `lab up` returned');
  t.deepEqual(kube.processes.map((p) => p.name).sort(), ['api-relay-node-1', 'api-relay-node-2', 'etcd', 'kube-apiserver', 'kube-controller-manager']);
  t.is((state.agents ?? []).length, 2, 'an agent per node');

  t.regex(await bpfproxy('lab', 'kubectl', '--name', name, '--', 'get', 'nodes'), /node-1 +Ready[\s\S]*node-2 +Ready/);
  await bpfproxy('lab', 'kubectl', '--name', name, '--', 'create', 'deployment', 'hostnames', '--image=registry.k8s.io/e2e-test-images/agnhost:2.53', '--port=9376', '--replicas=2');
  await bpfproxy('lab', 'kubectl', '--name', name, '--', 'expose', 'deployment', 'hostnames', '--port=80', '--target-port=9376', '--type=LoadBalancer');
  // Polls go straight to kubectl and the lab (each CLI run costs seconds on a busy machine).
  const kubectl = async (...args: string[]) => (await promisify(execFile)(kube.kubectl, ['--kubeconfig', kube.kubeconfig, ...args])).stdout;
  let ip = '';
  await eventually('an ingress IP', async () => (ip = (await kubectl('get', 'service', 'hostnames', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}')).trim()) !== '', 30_000);
  await eventually('both pods answer on the LoadBalancer IP', async () => {
    const r = tally(await Lab.open(name).request('client-1', { address: ip, port: 80, count: 30 }));
    return Object.keys(r.byAnswer).length === 2 && Object.keys(r.byError).length === 0;
  }, 60_000);
  const r = JSON.parse(await bpfproxy('lab', 'request', '--name', name, 'client-1', ip, '80', '--count', '30')) as ReturnType<typeof tally>;
  t.deepEqual(Object.keys(r.byAnswer).length, 2, JSON.stringify(r));

  // kubectl's exit status is passed on.
  const failed = await bpfproxy('lab', 'kubectl', '--name', name, '--', 'get', 'pod', 'no-such-pod').then(() => 0, (e: { code: number }) => e.code);
  t.is(failed, 1);

  const pids = [kube.owner, ...kube.processes, ...(lab.status().agents ?? []), ...lab.status().pods.map((p) => p.server)];
  await bpfproxy('lab', 'down', '--name', name);
  t.deepEqual(pids.filter((p) => isServerAlive({ ...p, log: '' })), [], 'every process is gone');
  t.deepEqual(await labNetns(state.id), []);
  t.false(existsSync(state.stateFile));
  t.false(existsSync(state.runDir));
});
