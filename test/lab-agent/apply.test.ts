// `bpfproxy lab up` (with an agent per node), `lab apply`, `lab status`, `lab delete` and `lab down`
// as users run them: separate processes sharing the lab through its state and object directory.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

import { privilegedSerial } from '../helpers/env.js';
import { isProcessRunning } from '../lab/_fixture.js';
import { eventually } from '../helpers/wait.js';

import type { LabStatus } from '../../ts/cli/lab.js';
import { isBpffsMountPoint } from '../../ts/dataplane/bpffs.js';
import { runId } from '../../ts/lab/net/netns.js';
import { labNetns } from '../../ts/lab/teardown.js';
import { Lab } from '../../ts/lab/topology.js';
import { tally } from '../../ts/lab/net/traffic.js';

const bin = new URL('../../bin/bpfproxy.js', import.meta.url).pathname;

/** Runs the CLI; resolves with its exit code and output (never rejects on a non-zero exit). */
function bpfproxy(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [bin, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  });
}

const manifests = (replicas: number, serviceSpec = '') => `apiVersion: apps/v1
kind: Deployment
metadata: {name: hostnames}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: hostnames}}
  template:
    metadata: {labels: {app: hostnames}}
    spec:
      containers:
      - {name: hostnames, image: registry.k8s.io/serve_hostname, ports: [{containerPort: 9376}]}
---
apiVersion: v1
kind: Service
metadata: {name: hostnames}
spec:
  selector: {app: hostnames}
  ports: [{port: 80, targetPort: 9376}]
${serviceSpec}`;

privilegedSerial('lab up starts healthy agents; apply runs pods and a Service; scaling down leaves only the remaining pods; down removes everything', async (t) => {
  // Eight runs of the CLI (each starts tsx) and a lab with agents: minutes on a loaded 2-core machine.
  t.timeout(300_000);
  const name = `ta-${runId()}`;
  t.teardown(async () => {
    await bpfproxy(['lab', 'down', '--name', name]);
  });
  const up = await bpfproxy(['lab', 'up', '--name', name, '--nodes', '2', '--clients', '1', '--json']);
  t.is(up.code, 0, up.stderr);
  const status = JSON.parse(up.stdout) as LabStatus;
  t.deepEqual(status.agents.map((a) => [a.node, a.running, a.health.status]), [['node-1', true, 200], ['node-2', true, 200]]);
  t.deepEqual(status.services, []);
  t.true(isBpffsMountPoint(status.bpffs!));
  // The agents found their Node objects: address and pod CIDR from the lab.
  t.regex(readFileSync(status.agents[0]!.log, 'utf8'), /agent ready/);

  const applied = await bpfproxy(['lab', 'apply', '--name', name, '-f', '-'], manifests(3));
  t.is(applied.code, 0, applied.stderr);
  t.regex(applied.stdout, /^deployment\.apps\/hostnames created$/m);
  t.regex(applied.stdout, /^  pod\/hostnames-2 running on node-2 at 198\.18\.130\.2$/m);
  t.regex(applied.stdout, /^service\/hostnames created: ClusterIP 198\.19\.1\.1, 80\/TCP→9376$/m);
  const added = await bpfproxy(['lab', 'pod', 'add', '--name', name, 'client', '--node', 'node-2', '--port', '8080']);
  t.is(added.code, 0, added.stderr);

  const lab = Lab.open(name);
  const three = await eventually('answers from all three pods', () => lab.request('client', { address: '198.19.1.1', port: 80, count: 30, timeoutMs: 2000 }), (a) => Object.keys(tally(a).byAnswer).length === 3);
  t.deepEqual(tally(three).byError, {});
  t.deepEqual(Object.keys(tally(three).byAnswer).sort(), ['hostnames-1', 'hostnames-2', 'hostnames-3'], 'a pod on node-2 reaches pods on both nodes');

  const scaled = await bpfproxy(['lab', 'apply', '--name', name, '-f', '-'], manifests(1));
  t.is(scaled.code, 0, scaled.stderr);
  t.regex(scaled.stdout, /pod\/hostnames-2, pod\/hostnames-3 terminating/);
  t.regex(scaled.stdout, /pod\/hostnames-2, pod\/hostnames-3 deleted/);
  const one = await eventually('answers from hostnames-1 alone', () => lab.request('client', { address: '198.19.1.1', port: 80, count: 30, timeoutMs: 2000 }), (a) => tally(a).byAnswer['hostnames-1'] === 30);
  t.deepEqual(tally(one), { byAnswer: { 'hostnames-1': 30 }, byError: {} }, 'only the remaining pod answers');

  // A conflicting Service is refused with the API server's words, and nothing changes.
  const conflict = await bpfproxy(['lab', 'apply', '--name', name, '-f', '-'], 'apiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec: {clusterIP: 198.19.1.1, ports: [{port: 80}]}\n');
  t.not(conflict.code, 0);
  t.regex(conflict.stderr, /spec\.clusterIP: Invalid value: "198\.19\.1\.1": provided IP is already allocated \(to default\/hostnames\)/);

  const after = JSON.parse((await bpfproxy(['lab', 'status', '--name', name, '--json'])).stdout) as LabStatus;
  t.deepEqual(after.pods.map((p) => p.name).sort(), ['client', 'hostnames-1']);
  t.like(after.services, [{ name: 'hostnames', type: 'ClusterIP', clusterIP: '198.19.1.1', ports: [{ port: 80, protocol: 'TCP', targetPort: 9376 }] }]);
  t.is(after.services.length, 1);

  const deleted = await bpfproxy(['lab', 'delete', '--name', name, '-f', '-'], manifests(1));
  t.is(deleted.code, 0, deleted.stderr);
  t.regex(deleted.stdout, /service "hostnames" deleted/);
  const gone = await eventually('the ClusterIP to stop answering', () => lab.request('client', { address: '198.19.1.1', port: 80, count: 3, timeoutMs: 500 }), (a) => a.every((x) => !x.ok));
  t.true(gone.every((a) => !a.ok), 'the ClusterIP no longer answers');
  t.deepEqual(Lab.open(name).pods.map((p) => p.name), ['client']);

  const down = await bpfproxy(['lab', 'down', '--name', name]);
  t.is(down.code, 0, down.stderr);
  t.deepEqual(await labNetns(status.id), []);
  t.false(isBpffsMountPoint(status.bpffs!), 'bpffs unmounted');
  t.false(existsSync(status.runDir));
  for (const a of status.agents) t.false(isProcessRunning(a.pid), `agent of ${a.node} stopped`);
});
