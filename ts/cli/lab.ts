/**
 * `bpfproxy lab …`: a cluster made of network namespaces (docs/lab.md). Each invocation works from
 * the lab's state file, so `up`, `exec`, `status` and `down` can run as separate commands.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';

import { NodeAgents, type AgentHealth } from '../lab/agents.js';
import { applyManifests, clusterStoreOf, deleteManifests, describeService, syncEndpointSlices } from '../lab/file-api/apply.js';
import { ClusterStore } from '../lab/file-api/cluster-store.js';
import { startFileCluster } from '../lab/file-api/file-cluster.js';
import { stopKubeLab, type KubeLab } from '../lab/kube-api/kube-mode.js';
import { DEFAULT_LAB_NAME, type AgentState, type LabState, type LbRoute, type PodNetwork, type PodPort, type Protocol } from '../lab/lab-state.js';
import { isServerAlive } from '../lab/hostname-process.js';
import { parseManifests } from '../lab/file-api/manifests.js';
import { Lab } from '../lab/topology.js';
import { tally } from '../lab/net/traffic.js';
import { printKubeMode, registerLabKubeCommands, startKubeMode } from './lab-kube.js';

const nameOption = () => new Option('--name <name>', 'which lab (one lab per name)').default(DEFAULT_LAB_NAME);

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer ${min}…${max}`);
    return n;
  };
}

function parseLbRoute(value: string): LbRoute {
  if (value === 'ecmp') return { mode: 'ecmp' };
  const m = /^node-(\d+)$/.exec(value);
  if (m) return { mode: 'node', node: Number(m[1]) };
  throw new InvalidArgumentError("expected 'ecmp' or 'node-N'");
}

/** `node-1` or `node-1,node-3`: the nodes with a second uplink. */
function parseNodeList(value: string): number[] {
  return value.split(',').map((part) => {
    const m = /^node-(\d+)$/.exec(part.trim());
    if (!m) throw new InvalidArgumentError("expected 'node-N' or 'node-N,node-M'");
    return Number(m[1]);
  });
}

/** `9376`, `9376/udp`, `53/UDP`. */
function parsePort(value: string, previous: PodPort[] = []): PodPort[] {
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(value);
  const port = Number(m?.[1]);
  if (!m || port < 1 || port > 65535) throw new InvalidArgumentError('expected PORT or PORT/tcp|udp');
  return [...previous, { port, protocol: (m[2]?.toUpperCase() ?? 'TCP') as Protocol }];
}

/** `key=value`, repeatable. */
function parseLabel(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const m = /^([A-Za-z0-9./_-]+)=([A-Za-z0-9._-]*)$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected KEY=VALUE');
  return { ...previous, [m[1]!]: m[2]! };
}

/** A Service as `lab status` shows it. */
export interface ServiceStatus {
  namespace: string;
  name: string;
  type: string;
  clusterIP: string | undefined;
  ports: { name?: string; port: number; protocol: string; targetPort: number | string; nodePort?: number }[];
  loadBalancerIPs: string[];
  externalIPs: string[];
  healthCheckNodePort?: number;
  summary: string;
}

export type AgentStatus = AgentState & { running: boolean; health: AgentHealth };

/** The state file plus what the lab's Services hold and whether its agents are up and healthy. */
export interface LabStatus extends Omit<LabState, 'agents'> {
  services: ServiceStatus[];
  agents: AgentStatus[];
}

export async function labStatus(lab: Lab): Promise<LabStatus> {
  const state = lab.status();
  const agents = NodeAgents.of(lab);
  const services: ServiceStatus[] =
    state.cluster?.api === 'file'
      ? new ClusterStore(state.cluster.dir).services().map((svc) => ({
          namespace: svc.metadata?.namespace ?? 'default',
          name: svc.metadata?.name ?? '',
          type: svc.spec?.type ?? 'ClusterIP',
          clusterIP: svc.spec?.clusterIP,
          ports: (svc.spec?.ports ?? []).map((p) => ({
            ...(p.name && { name: p.name }),
            port: p.port,
            protocol: p.protocol ?? 'TCP',
            targetPort: (p.targetPort as number | string | undefined) ?? p.port,
            ...(p.nodePort && { nodePort: p.nodePort }),
          })),
          loadBalancerIPs: (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '').filter(Boolean),
          externalIPs: svc.spec?.externalIPs ?? [],
          ...(svc.spec?.healthCheckNodePort && { healthCheckNodePort: svc.spec.healthCheckNodePort }),
          summary: describeService(svc),
        }))
      : [];
  const agentStatus = await Promise.all(
    (state.agents ?? []).map(async (a) => {
      const running = agents.isRunning(a.node);
      return { ...a, running, health: running ? await agents.health(a.node) : { status: undefined, body: undefined, error: 'not running' } };
    }),
  );
  return { ...state, services, agents: agentStatus };
}

export function printStatus(s: LabState | LabStatus): void {
  const row = (cells: string[]) => console.log('  ' + cells.map((c, i) => c.padEnd([12, 24, 15][i] ?? 0)).join(' ').trimEnd());
  const lb = s.lbRoute.mode === 'ecmp' ? 'ECMP over all nodes' : `via node-${s.lbRoute.node}`;
  console.log(`lab ${s.name} (run id ${s.id}), up since ${s.createdAt}`);
  row(['fabric', s.fabric.netns, s.addressPlan.nodeNetwork, `bridge ${s.fabric.bridge}`]);
  if (s.fabric.secondBridge) row(['', '', s.addressPlan.secondNodeNetwork ?? '', `bridge ${s.fabric.secondBridge}`]);
  for (const n of s.nodes) {
    const second = n.secondUplink ? `, uplink ${n.secondUplink.interface} ${n.secondUplink.address}` : '';
    const overlay = n.vtep ? `, via ${n.vtep.device} (VNI ${n.vtep.vni}, VTEP ${n.vtep.address} ${n.vtep.mac})` : '';
    row([n.name, n.netns, n.address, `uplink ${n.uplink}${second}, pods ${n.podCidr}${overlay}, services → ${n.serviceDevice}`]);
  }
  for (const c of s.clients) row([c.name, c.netns, c.address, `${s.addressPlan.externalCidr} ${c.network === 'second' ? 'via the second network\'s nodes' : lb}`]);
  for (const p of s.pods) {
    const ports = p.ports.map((x) => `${x.port}/${x.protocol}`).join(',');
    row([p.name, p.netns, p.address, `on ${p.node} (${p.hostNetwork ? "hostNetwork" : p.hostInterface}), ports ${ports}, pid ${p.server.pid}${isServerAlive(p.server) ? '' : ' (not running)'}${p.terminating ? ', terminating' : ''}`]);
  }
  if (!('services' in s)) return;
  if (s.cluster) console.log(`cluster source: ${s.cluster.api === 'file' ? `files in ${s.cluster.dir}` : `API server (${s.cluster.kubeconfig})`}`);
  for (const a of s.agents) {
    const health = !a.running ? 'not running' : a.health.status === 200 ? 'healthy' : `unhealthy (/healthz ${a.health.status ?? a.health.error})`;
    row([`agent`, a.node, `pid ${a.pid}`, `${health}, log ${a.log}`]);
  }
  for (const svc of s.services) row([`service`, `${svc.namespace}/${svc.name}`, svc.summary]);
}


/** Errors in what the user gave (a bad manifest, a refused Service) as one message and exit status 1, not a stack trace. */
function reportErrors<A extends unknown[]>(action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (e) {
      console.error(`error: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  };
}

/** SIGINT/SIGTERM abort `signal`; the returned function removes the handlers. */
function abortOnSignals(controller: AbortController): () => void {
  const onSignal = (sig: NodeJS.Signals) => controller.abort(new Error(`interrupted by ${sig}`));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

export function registerLabCommands(program: Command): void {
  const lab = program.command('lab').description('a cluster made of network namespaces: fabric, nodes, pods, outside clients');

  lab
    .command('up')
    .description('build a lab: a fabric bridge, N nodes each running a bpfproxy agent, outside clients (pods come with `lab apply` or `lab pod add`)')
    .addOption(nameOption())
    .option('--nodes <n>', 'number of nodes', integer(1, 16), 2)
    .option('--clients <n>', 'number of outside clients', integer(0, 21), 1)
    .option('--lb-route <route>', "how clients reach LoadBalancer IPs: 'ecmp' or 'node-N'", parseLbRoute, { mode: 'ecmp' } as LbRoute)
    .addOption(new Option('--pod-network <kind>', "how pods of different nodes reach each other: 'routed' (a route per node) or 'vxlan' (an overlay like flannel's)").choices(['routed', 'vxlan']).default('routed'))
    .option('--second-network <nodes>', 'a second node network (198.18.2.0/24) that these nodes join with a second uplink, eth1 (node-N[,node-M…])', parseNodeList)
    .option('--second-network-clients <n>', 'outside clients on the second node network (with --second-network)', integer(0, 21), 1)
    .option('--no-agents', 'only the network: no bpfproxy agents (nor Services)')
    .addOption(new Option('--api <api>', "the agents' source: 'file' (what `lab apply` writes) or 'kube' (a real API server; see `lab kubectl`)").choices(['file', 'kube']).default('file'))
    .option('--json', 'print the lab state as JSON')
    .option('--foreground', 'stay up until Ctrl-C, then tear the lab down')
    .action(async (opts: { name: string; nodes: number; clients: number; lbRoute: LbRoute; podNetwork: PodNetwork; secondNetwork?: number[]; secondNetworkClients: number; agents: boolean; api: 'file' | 'kube'; json?: boolean; foreground?: boolean }) => {
      const controller = new AbortController();
      const release = abortOnSignals(controller);
      let built: Lab | undefined;
      let kube: KubeLab | undefined;
      try {
        const started = performance.now();
        built = await Lab.up({
          name: opts.name,
          nodes: opts.nodes,
          clients: opts.clients,
          lbRoute: opts.lbRoute,
          podNetwork: opts.podNetwork,
          ...(opts.secondNetwork && { secondNetwork: { nodes: opts.secondNetwork, clients: opts.secondNetworkClients } }),
          signal: controller.signal,
        });
        if (opts.api === 'kube') {
          kube = await startKubeMode(built, { foreground: opts.foreground === true });
          // A supervisor process changed the state (pods, agents): read it again.
          if (!kube) built = Lab.open(built.name);
        }
        else if (opts.agents) await startFileCluster(built, { signal: controller.signal });
        const status = await labStatus(built);
        if (opts.json) console.log(JSON.stringify(status, null, 2));
        else {
          printStatus(status);
          if (opts.api === 'kube') printKubeMode(built);
          console.log(`up in ${Math.round(performance.now() - started)} ms`);
        }
      } catch (e) {
        release();
        // Lab.up removes what it built when it fails; a failure after it (the agents) must too.
        await kube?.stop().catch(() => {});
        if (built) await stopKubeLab(built.status()).catch(() => {});
        await built?.down().catch(() => {});
        if (controller.signal.aborted) {
          console.error(`lab up interrupted; everything it built is removed`);
          process.exit(130);
        }
        throw e;
      }
      if (!opts.foreground || !built) {
        release();
        return;
      }
      console.log('up; Ctrl-C tears it down');
      // Signal handlers alone do not keep Node's event loop alive: a timer does.
      const keepAlive = setInterval(() => {}, 1 << 30);
      await new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
      clearInterval(keepAlive);
      release();
      await kube?.stop();
      await built.down();
      console.log(`lab ${opts.name} is down`);
    });

  lab
    .command('status')
    .description('names, namespaces and addresses of everything in the lab')
    .addOption(nameOption())
    .option('--json', 'print as JSON: the state file (/run/bpfproxy/labs/NAME.json) plus services and agent health')
    .action(async (opts: { name: string; json?: boolean }) => {
      const status = await labStatus(Lab.open(opts.name));
      if (opts.json) console.log(JSON.stringify(status, null, 2));
      else printStatus(status);
    });

  lab
    .command('apply')
    .description('create or update Deployments (pods), Services (allocated as an API server would) and EndpointSlices')
    .addOption(nameOption())
    .requiredOption('-f, --filename <file>', "YAML with any number of documents; '-' reads standard input")
    .action(
      reportErrors(async (opts: { name: string; filename: string }) => {
        const text = readFileSync(opts.filename === '-' ? 0 : opts.filename, 'utf8');
        const target = Lab.open(opts.name);
        const controller = new AbortController();
        const release = abortOnSignals(controller);
        try {
          await applyManifests(target, parseManifests(text, opts.filename === '-' ? 'stdin' : opts.filename), { log: (l) => console.log(l), signal: controller.signal });
        } finally {
          release();
        }
      }),
    );

  lab
    .command('delete')
    .description('delete the Deployments (and their pods), Services and EndpointSlices a file names')
    .addOption(nameOption())
    .requiredOption('-f, --filename <file>', "YAML with any number of documents; '-' reads standard input")
    .action(
      reportErrors(async (opts: { name: string; filename: string }) => {
        const text = readFileSync(opts.filename === '-' ? 0 : opts.filename, 'utf8');
        const { missing } = await deleteManifests(Lab.open(opts.name), parseManifests(text, opts.filename === '-' ? 'stdin' : opts.filename), { log: (l) => console.log(l) });
        for (const m of missing) console.error(`Error from server (NotFound): ${m}`);
        if (missing.length > 0) process.exitCode = 1;
      }),
    );

  lab
    .command('exec')
    .description('run a host command inside a lab namespace (fabric, node-N, client-N or a pod name)')
    .addOption(nameOption())
    .argument('<namespace>', 'short name of the namespace')
    .argument('<command...>', 'the command and its arguments (after --)')
    .action(async (ns: string, command: string[], opts: { name: string }) => {
      const netns = Lab.open(opts.name).netnsName(ns);
      const [cmd, ...args] = command;
      if (!cmd) throw new InvalidArgumentError('no command');
      // The terminal's Ctrl-C reaches the child (same process group); we wait for it and pass its status on.
      const ignore = () => {};
      process.on('SIGINT', ignore);
      const child = spawn('ip', ['netns', 'exec', netns, cmd, ...args], { stdio: 'inherit' });
      const code = await new Promise<number>((resolve) => {
        child.once('error', (e) => {
          console.error(e.message);
          resolve(127);
        });
        child.once('exit', (c, sig) => resolve(c ?? (sig ? 128 + 2 : 1)));
      });
      process.off('SIGINT', ignore);
      process.exitCode = code;
    });

  const pod = lab.command('pod').description('add and remove pods by hand (`lab apply` does it from Deployments)');
  pod
    .command('add')
    .description('a pod with a hostname server answering on each port, TCP and UDP')
    .addOption(nameOption())
    .argument('<pod>', 'pod name')
    .requiredOption('--node <node>', 'node-N')
    .requiredOption('--port <port>', 'PORT[/tcp|udp], repeatable', parsePort)
    .option('--label <key=value>', 'a label Service selectors can match, repeatable', parseLabel)
    .action(async (podName: string, opts: { name: string; node: string; port: PodPort[]; label?: Record<string, string> }) => {
      const target = Lab.open(opts.name);
      const p = await target.addPod({ name: podName, node: opts.node, ports: opts.port, ...(opts.label && { labels: opts.label }) });
      if (target.status().cluster?.api === 'file') syncEndpointSlices(target, clusterStoreOf(target.status()));
      console.log(`pod ${p.name}: ${p.address} on ${p.node}, server pid ${p.server.pid}`);
    });
  pod
    .command('delete')
    .description('stop the pod and delete its namespace')
    .addOption(nameOption())
    .argument('<pod>', 'pod name')
    .action(async (podName: string, opts: { name: string }) => {
      const target = Lab.open(opts.name);
      await target.removePod(podName);
      if (target.status().cluster?.api === 'file') syncEndpointSlices(target, clusterStoreOf(target.status()));
    });

  lab
    .command('request')
    .description('send requests from a lab namespace and count the answers (pod names) and errors')
    .addOption(nameOption())
    .argument('<from>', 'short name of the source namespace')
    .argument('<address>', 'destination address')
    .argument('<port>', 'destination port', integer(1, 65535))
    .option('--udp', 'UDP instead of TCP')
    .option('--count <n>', 'how many requests, each a new connection', integer(1, 100_000), 1)
    .option('--timeout <ms>', 'per request', integer(1, 60_000), 1000)
    .action(async (from: string, address: string, port: number, opts: { name: string; udp?: boolean; count: number; timeout: number }) => {
      const answers = await Lab.open(opts.name).request(from, { address, port, protocol: opts.udp ? 'UDP' : 'TCP', count: opts.count, timeoutMs: opts.timeout });
      if (opts.count === 1) {
        const a = answers[0]!;
        console.log(a.ok ? a.answer : `${a.error}: ${a.message}`);
        if (!a.ok) process.exitCode = 1;
      } else console.log(JSON.stringify(tally(answers)));
    });

  lab
    .command('down')
    .description('remove every namespace and process of the lab')
    .addOption(nameOption())
    .action(async (opts: { name: string }) => {
      let target: Lab;
      try {
        target = Lab.open(opts.name);
      } catch {
        console.error(`no lab '${opts.name}' is up`);
        return;
      }
      // --api kube: its supervisor stops the control plane, kubelet and agents first.
      await stopKubeLab(target.status());
      await target.down();
      console.log(`lab ${opts.name} is down`);
    });

  registerLabKubeCommands(lab);
}
