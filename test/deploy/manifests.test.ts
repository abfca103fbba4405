/**
 * deploy/ against a real kube-apiserver: every kustomization is rendered by kubectl and every
 * manifest applied with a server-side dry run (admission, defaulting and strict field validation
 * included, nothing stored). And the manifests agree with the code: the ConfigMap's file is a valid
 * agent configuration, the DaemonSet's flags are the agent's, its probes hit the health port, the
 * RBAC is deploy/base/rbac.yaml (which test/kube/rbac.test.ts proves sufficient and minimal), and
 * the kind overlay matches the kind cluster config.
 */
import type { ExecutionContext } from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Command } from 'commander';
import { parse, parseAllDocuments } from 'yaml';

import { CONFIG_KIND, readConfigFile, resolveAgentConfig, splitBindAddress } from '../../ts/agent/config.js';
import { registerAgentCommand } from '../../ts/cli/agent.js';
import { EVENTS_API } from '../../ts/sources/kube-events.js';
import { KUBE_SOURCE_APIS } from '../../ts/sources/kube-source.js';
import type { ControlPlane } from '../../ts/kube/control-plane.js';
import { kubeAfterAlways, kubeBefore, kubeTest, startPlane } from '../kube/_fixture.js';
import { DEPLOY, deployLayout, REPO } from './_layout.js';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: Array<{ name: string; valueFrom?: { configMapKeyRef?: { name: string; key: string } } }>;
  securityContext?: { privileged?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { add?: string[]; drop?: string[] } };
  livenessProbe?: { httpGet?: { path: string; port: number } };
  readinessProbe?: { httpGet?: { path: string; port: number } };
  startupProbe?: { httpGet?: { path: string; port: number } };
  volumeMounts?: Array<{ name: string; mountPath: string; mountPropagation?: string }>;
}
interface PodSpec {
  securityContext?: { seccompProfile?: { type: string } };
  hostNetwork?: boolean;
  priorityClassName?: string;
  serviceAccountName?: string;
  tolerations?: Array<{ operator?: string; key?: string }>;
  initContainers?: Container[];
  containers: Container[];
  volumes: Array<{ name: string; configMap?: { name: string }; hostPath?: { path: string; type?: string } }>;
}
interface DaemonSet extends Obj {
  spec: { updateStrategy: { type: string; rollingUpdate?: { maxUnavailable?: number } }; template: { spec: PodSpec } };
}

const layout = deployLayout();
let cp: ControlPlane | undefined;
const rendered = new Map<string, Obj[]>();

function plane(): ControlPlane {
  if (!cp) throw new Error('no control plane');
  return cp;
}

const objects = (yaml: string): Obj[] => parseAllDocuments(yaml).map((d) => d.toJS() as Obj | null).filter((o): o is Obj => o !== null);

async function render(dir: string): Promise<Obj[]> {
  let objs = rendered.get(dir);
  if (!objs) {
    objs = objects(await plane().kubectl(['kustomize', join(REPO, dir)]));
    rendered.set(dir, objs);
  }
  return objs;
}

function find<T extends Obj>(objs: Obj[], kind: string, namePrefix: string): T {
  const o = objs.find((x) => x.kind === kind && x.metadata.name.startsWith(namePrefix));
  if (!o) throw new Error(`no ${kind} ${namePrefix}* in [${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}]`);
  return o as T;
}

/** Server-side dry run of `yaml`; returns what the server would have stored, per object. */
async function dryRun(t: ExecutionContext, what: string, yaml: string): Promise<Obj[]> {
  const out = await plane().kubectl(['apply', '--dry-run=server', '--validate=strict', '-o', 'json', '-f', '-'], { input: yaml });
  const result = JSON.parse(out) as Obj & { items?: Obj[] };
  const items = result.kind === 'List' ? (result.items ?? []) : [result];
  t.log(`${what}: ${items.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')} accepted (dry run)`);
  return items;
}

kubeBefore(async (t) => {
  cp = await startPlane(t);
});
kubeAfterAlways(async () => {
  await cp?.stop();
});

kubeTest('every YAML file of deploy/ is a kustomization, read by one, a kind config, or a manifest', (t) => {
  t.deepEqual(layout.kustomizations.sort(), ['deploy/base', 'deploy/overlays/kind', 'deploy/overlays/node-by-node', 'deploy/overlays/privileged']);
  t.true(layout.consumed.has('deploy/base/rbac.yaml') && layout.consumed.has('deploy/base/daemonset.yaml'));
  t.deepEqual(layout.kindConfigs, ['deploy/kind/cluster.yaml']);
  t.log(`plain manifests: ${layout.plain.length === 0 ? 'none' : layout.plain.join(', ')}`);
});

for (const dir of layout.kustomizations) {
  kubeTest(`${dir}: rendered by kubectl kustomize and accepted by the API server (server-side dry run)`, async (t) => {
    const objs = await render(dir);
    const accepted = await dryRun(t, dir, objs.map((o) => JSON.stringify(o)).join('\n---\n'));
    t.deepEqual(
      accepted.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`).sort(),
      objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`).sort(),
    );
    const ds = find<DaemonSet>(accepted, 'DaemonSet', 'bpfproxy');
    t.is(ds.metadata.namespace, 'kube-system');
    // Defaulted by the server: what the DaemonSet controller will do.
    t.is(ds.spec.updateStrategy.type, 'RollingUpdate');
    t.is(ds.spec.updateStrategy.rollingUpdate?.maxUnavailable, 1);
  });
}

kubeTest('plain manifests (outside any kustomization) are accepted by the API server', async (t) => {
  for (const file of layout.plain) await dryRun(t, file, readFileSync(join(REPO, file), 'utf8'));
  t.pass(layout.plain.length === 0 ? 'every manifest is part of a kustomization' : `${layout.plain.length} applied`);
});

kubeTest('the DaemonSet: host network, node-critical, everywhere, explicit capabilities, bpffs, probes on the health port', async (t) => {
  const objs = await render('deploy/base');
  const pod = find<DaemonSet>(objs, 'DaemonSet', 'bpfproxy').spec.template.spec;
  t.true(pod.hostNetwork);
  t.is(pod.priorityClassName, 'system-node-critical');
  t.is(pod.serviceAccountName, find(objs, 'ServiceAccount', 'bpfproxy').metadata.name);
  t.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);

  const agent = pod.containers.find((c) => c.name === 'agent')!;
  t.false(agent.securityContext?.privileged ?? false);
  t.deepEqual(agent.securityContext?.capabilities, { drop: ['ALL'], add: ['BPF', 'PERFMON', 'NET_ADMIN', 'SYS_ADMIN'] });
  // Only the one-shot bpffs mount is privileged, and it runs nothing but a mount.
  const init = pod.initContainers ?? [];
  t.deepEqual(init.map((c) => c.name), ['mount-bpffs']);
  t.regex(init[0]!.command!.join(' '), /mount -t bpf -o mode=0700 bpf \/sys\/fs\/bpf/);
  t.regex(init[0]!.command!.join(' '), /echo 1 > \/proc\/sys\/net\/ipv4\/conf\/lo\/accept_local/, 'lo accept_local for node-sourced local delivery (bpf/lib/local.h)');

  const bpffs = pod.volumes.find((v) => v.hostPath?.path === '/sys/fs/bpf');
  t.deepEqual(bpffs?.hostPath, { path: '/sys/fs/bpf', type: 'DirectoryOrCreate' });
  t.deepEqual(
    agent.volumeMounts?.find((m) => m.name === bpffs?.name),
    { name: bpffs!.name, mountPath: '/sys/fs/bpf', mountPropagation: 'HostToContainer' },
  );
  t.is(init[0]!.volumeMounts?.find((m) => m.name === bpffs?.name)?.mountPropagation, 'Bidirectional');

  // The API server is given explicitly (no kube-proxy to reach the `kubernetes` Service).
  const apiserver = find(objs, 'ConfigMap', 'bpfproxy-apiserver') as Obj & { data: Record<string, string> };
  for (const name of ['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT']) {
    const ref = agent.env?.find((e) => e.name === name)?.valueFrom?.configMapKeyRef;
    t.is(ref?.name, apiserver.metadata.name, name);
    t.true(ref!.key in apiserver.data, name);
  }

  // Probes hit the port the agent's configuration serves health on.
  const config = find(objs, 'ConfigMap', 'bpfproxy-config') as Obj & { data: Record<string, string> };
  const healthPort = splitBindAddress(parse(config.data['config.yaml']!).healthzBindAddress as string, 'healthzBindAddress').port;
  t.deepEqual(agent.livenessProbe?.httpGet, { path: '/livez', port: healthPort });
  t.deepEqual(agent.startupProbe?.httpGet, { path: '/livez', port: healthPort });
  t.deepEqual(agent.readinessProbe?.httpGet, { path: '/healthz', port: healthPort });
});

kubeTest("the ConfigMap's file is a valid agent configuration, and the DaemonSet's flags are the agent's", async (t) => {
  const agentCommand = new Command('bpfproxy');
  registerAgentCommand(agentCommand);
  const known = new Set(agentCommand.commands.find((c) => c.name() === 'agent')!.options.map((o) => o.long));
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-deploy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  for (const k of layout.kustomizations) {
    const objs = await render(k);
    const pod = find<DaemonSet>(objs, 'DaemonSet', 'bpfproxy').spec.template.spec;
    const agent = pod.containers.find((c) => c.name === 'agent')!;
    const config = find(objs, 'ConfigMap', 'bpfproxy-config') as Obj & { data: Record<string, string> };
    const mount = agent.volumeMounts!.find((m) => m.name === pod.volumes.find((v) => v.configMap?.name === config.metadata.name)?.name);
    const flags = Object.fromEntries((agent.args ?? []).map((a) => /^(--[a-z-]+)(?:=(.*))?$/.exec(a)!).map((m) => [m[1]!, m[2] ?? true]));
    for (const flag of Object.keys(flags)) t.true(known.has(flag), `${k}: ${flag} is a flag of \`bpfproxy agent\``);
    t.is(flags['--config'], `${mount?.mountPath}/config.yaml`, `${k}: --config names the mounted ConfigMap`);

    const file = join(dir, 'config.yaml');
    writeFileSync(file, config.data['config.yaml']!);
    const parsed = readConfigFile(file);
    t.is(parsed.kind, CONFIG_KIND);
    const resolved = resolveAgentConfig(
      parsed,
      { clusterCIDR: flags['--cluster-cidr'] as string | undefined, xdpMode: flags['--xdp-mode'] as 'native' | 'generic' | undefined },
      'node-1',
    );
    t.is(resolved.source.kind, 'kubernetes', `${k}: the agent reads the API`);
    t.regex(resolved.bpffsDir, /^\/sys\/fs\/bpf\//, `${k}: pins on the host's bpffs`);
  }
});

kubeTest('every kustomization: RuntimeDefault seccomp, a read-only root, and nothing written outside the bpffs volume', async (t) => {
  for (const k of layout.kustomizations) {
    const pod = find<DaemonSet>(await render(k), 'DaemonSet', 'bpfproxy').spec.template.spec;
    t.deepEqual(pod.securityContext?.seccompProfile, { type: 'RuntimeDefault' }, `${k}: the runtime's default seccomp profile`);
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      t.true(c.securityContext?.readOnlyRootFilesystem, `${k}: ${c.name} has a read-only root`);
    }
    // The agent's writable mounts: the bpffs (pins, links, the node lock on bpffsDir), read-only config.
    const agent = pod.containers.find((c) => c.name === 'agent')!;
    const writable = (agent.volumeMounts ?? []).filter((m) => !(m as { readOnly?: boolean }).readOnly).map((m) => m.mountPath);
    t.deepEqual(writable, ['/sys/fs/bpf'], `${k}: the agent writes only under the bpffs`);
  }
});

kubeTest('the ClusterRole grants exactly the API calls the code makes (the kube source\'s and the Event recorder\'s tables), in every kustomization', async (t) => {
  const wanted = [...Object.values(KUBE_SOURCE_APIS), EVENTS_API]
    .flatMap((api) => api.verbs.map((verb) => `${api.group}/${api.resource}:${verb}`))
    .sort();
  t.log(`API calls of the code: ${wanted.join(' ')}`);
  for (const k of layout.kustomizations) {
    const role = find(await render(k), 'ClusterRole', 'bpfproxy') as Obj & { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }> };
    const granted = role.rules
      .flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`))))
      .sort();
    t.deepEqual(granted, wanted, `${k}: granted = used`);
    t.false(role.rules.some((r) => [...r.verbs, ...r.resources, ...r.apiGroups].includes('*')), `${k}: no wildcards`);
  }
});

kubeTest('the RBAC rendered is deploy/base/rbac.yaml, labels aside', async (t) => {
  const strip = (o: Obj) => ({ ...o, metadata: { ...o.metadata, labels: undefined } });
  const file = objects(readFileSync(join(DEPLOY, 'base/rbac.yaml'), 'utf8'));
  for (const k of layout.kustomizations) {
    const objs = await render(k);
    for (const o of file) {
      const r = objs.find((x) => x.kind === o.kind && x.metadata.name === o.metadata.name);
      t.deepEqual(r && JSON.parse(JSON.stringify(strip(r))), JSON.parse(JSON.stringify(strip(o))), `${k}: ${o.kind}`);
    }
  }
});

kubeTest('the kind overlay fits deploy/kind/cluster.yaml; node-by-node selects labelled nodes; the privileged overlay is the only privileged agent', async (t) => {
  const cluster = parse(readFileSync(join(DEPLOY, 'kind/cluster.yaml'), 'utf8')) as {
    kind: string;
    networking: { kubeProxyMode: string; podSubnet: string; serviceSubnet: string };
    nodes: Array<{ role: string }>;
  };
  t.is(cluster.kind, 'Cluster');
  t.is(cluster.networking.kubeProxyMode, 'none');
  t.deepEqual(cluster.nodes.map((n) => n.role), ['control-plane', 'worker', 'worker']);

  const kind = await render('deploy/overlays/kind');
  const agent = find<DaemonSet>(kind, 'DaemonSet', 'bpfproxy').spec.template.spec.containers[0]!;
  t.true(agent.args!.includes(`--cluster-cidr=${cluster.networking.podSubnet}`));
  t.true(agent.args!.includes('--xdp-mode=generic'), 'veth uplinks: generic XDP');
  t.is(agent.image, 'bpfproxy:kind');

  const byNode = find<DaemonSet>(await render('deploy/overlays/node-by-node'), 'DaemonSet', 'bpfproxy').spec.template.spec as PodSpec & { nodeSelector?: Record<string, string> };
  t.deepEqual(byNode.nodeSelector, { 'kubernetes.io/os': 'linux', 'bpfproxy.io/enabled': 'true' }, 'node-by-node: labelled nodes only');

  const privileged = find<DaemonSet>(await render('deploy/overlays/privileged'), 'DaemonSet', 'bpfproxy').spec.template.spec.containers[0]!;
  t.deepEqual(privileged.securityContext, { privileged: true, readOnlyRootFilesystem: true });
  t.is(privileged.volumeMounts!.find((m) => m.mountPath === '/sys/fs/bpf')?.mountPropagation, 'Bidirectional');
  t.false(agent.securityContext?.privileged ?? false);
});
