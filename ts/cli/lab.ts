/**
 * `bpfproxy lab …`: a cluster made of network namespaces (docs/lab.md). Each invocation works from
 * the lab's state file, so `up`, `exec`, `status` and `down` can run as separate commands.
 */
import { spawn } from 'node:child_process';
import { Command, InvalidArgumentError, Option } from 'commander';

import { DEFAULT_LAB_NAME, type LabState, type LbRoute, type PodPort, type Protocol } from '../lab/lab-state.js';
import { isServerAlive } from '../lab/hostname-process.js';
import { Lab } from '../lab/topology.js';
import { tally } from '../lab/traffic.js';

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

/** `9376`, `9376/udp`, `53/UDP`. */
function parsePort(value: string, previous: PodPort[] = []): PodPort[] {
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(value);
  const port = Number(m?.[1]);
  if (!m || port < 1 || port > 65535) throw new InvalidArgumentError('expected PORT or PORT/tcp|udp');
  return [...previous, { port, protocol: (m[2]?.toUpperCase() ?? 'TCP') as Protocol }];
}

export function printStatus(s: LabState): void {
  const row = (cells: string[]) => console.log('  ' + cells.map((c, i) => c.padEnd([12, 24, 15][i] ?? 0)).join(' ').trimEnd());
  const lb = s.lbRoute.mode === 'ecmp' ? 'ECMP over all nodes' : `via node-${s.lbRoute.node}`;
  console.log(`lab ${s.name} (run id ${s.id}), up since ${s.createdAt}`);
  row(['fabric', s.fabric.netns, s.addressPlan.nodeNetwork, `bridge ${s.fabric.bridge}`]);
  for (const n of s.nodes) row([n.name, n.netns, n.address, `uplink ${n.uplink}, pods ${n.podCidr}, services → ${n.serviceDevice}`]);
  for (const c of s.clients) row([c.name, c.netns, c.address, `${s.addressPlan.externalCidr} ${lb}`]);
  for (const p of s.pods) {
    const ports = p.ports.map((x) => `${x.port}/${x.protocol}`).join(',');
    row([p.name, p.netns, p.address, `on ${p.node} (${p.hostInterface}), ports ${ports}, pid ${p.server.pid}${isServerAlive(p.server) ? '' : ' (not running)'}`]);
  }
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
    .description('build a lab: a fabric bridge, N nodes, outside clients (pods come with `lab pod add` or `lab apply`)')
    .addOption(nameOption())
    .option('--nodes <n>', 'number of nodes', integer(1, 16), 2)
    .option('--clients <n>', 'number of outside clients', integer(0, 21), 1)
    .option('--lb-route <route>', "how clients reach LoadBalancer IPs: 'ecmp' or 'node-N'", parseLbRoute, { mode: 'ecmp' } as LbRoute)
    .option('--json', 'print the lab state as JSON')
    .option('--foreground', 'stay up until Ctrl-C, then tear the lab down')
    .action(async (opts: { name: string; nodes: number; clients: number; lbRoute: LbRoute; json?: boolean; foreground?: boolean }) => {
      const controller = new AbortController();
      const release = abortOnSignals(controller);
      let built: Lab;
      try {
        const started = performance.now();
        built = await Lab.up({ name: opts.name, nodes: opts.nodes, clients: opts.clients, lbRoute: opts.lbRoute, signal: controller.signal });
        if (opts.json) console.log(JSON.stringify(built.status(), null, 2));
        else {
          printStatus(built.status());
          console.log(`up in ${Math.round(performance.now() - started)} ms`);
        }
      } catch (e) {
        release();
        if (controller.signal.aborted) {
          console.error(`lab up interrupted; everything it built is removed`);
          process.exit(130);
        }
        throw e;
      }
      if (!opts.foreground) {
        release();
        return;
      }
      console.log('up; Ctrl-C tears it down');
      // Signal handlers alone do not keep Node's event loop alive: a timer does.
      const keepAlive = setInterval(() => {}, 1 << 30);
      await new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
      clearInterval(keepAlive);
      release();
      await built.down();
      console.log(`lab ${opts.name} is down`);
    });

  lab
    .command('status')
    .description('names, namespaces and addresses of everything in the lab')
    .addOption(nameOption())
    .option('--json', 'print the lab state as JSON (what /run/bpfproxy/labs/NAME.json holds)')
    .action((opts: { name: string; json?: boolean }) => {
      const state = Lab.open(opts.name).status();
      if (opts.json) console.log(JSON.stringify(state, null, 2));
      else printStatus(state);
    });

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
    .action(async (podName: string, opts: { name: string; node: string; port: PodPort[] }) => {
      const p = await Lab.open(opts.name).addPod({ name: podName, node: opts.node, ports: opts.port });
      console.log(`pod ${p.name}: ${p.address} on ${p.node}, server pid ${p.server.pid}`);
    });
  pod
    .command('delete')
    .description('stop the pod and delete its namespace')
    .addOption(nameOption())
    .argument('<pod>', 'pod name')
    .action(async (podName: string, opts: { name: string }) => {
      await Lab.open(opts.name).removePod(podName);
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
      await target.down();
      console.log(`lab ${opts.name} is down`);
    });
}
