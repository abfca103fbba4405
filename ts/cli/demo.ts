/**
 * `npm run demo` (`bpfproxy demo`): a lab of 2 nodes (one bpfproxy agent each) and 2 outside clients,
 * and the demo scenario of docs/lab.md played step by step — the way people learn Services — each
 * step explained (what the datapath does) and checked with real connections. Exits non-zero when a
 * check fails, saying what failed; the lab is torn down always, on failure and on Ctrl-C too.
 */
import type { V1Deployment, V1Service } from '@kubernetes/client-node';

import { cliCommand, httpGet, type NodeAgents } from '../lab/agents.js';
import { applyManifests, clusterStoreOf } from '../lab/file-api/apply.js';
import { startFileCluster } from '../lab/file-api/file-cluster.js';
import type { Manifest } from '../lab/file-api/manifests.js';
import { runId } from '../lab/net/netns.js';
import { Lab } from '../lab/topology.js';
import { tally, type Answer, type RequestOptions } from '../lab/net/traffic.js';
import { run } from '../util/exec.js';

const PORT = 80;
const TARGET_PORT = 9376;
/** How long a change may take to reach the datapath (the agents' minimum sync period is 1 s). */
const CONVERGE_MS = 15_000;

interface Check {
  ok: boolean;
  what: string;
}

interface Step {
  title: string;
  /** What happens in the datapath, in a few lines. */
  explain: string[];
  run: (ctx: Context) => Promise<void>;
}

interface Context {
  lab: Lab;
  agents: NodeAgents;
  check: (ok: boolean, what: string) => void;
  apply: (what: string, manifests: Manifest[]) => Promise<void>;
  request: (from: string, opts: RequestOptions) => Promise<Answer[]>;
  /** Repeats `probe` until `done` holds or the time is up; returns the last result either way. */
  until: <T>(probe: () => Promise<T>, done: (t: T) => boolean) => Promise<T>;
  /** Prints `bpfproxy explain` for a packet from `from` (an address) to `to` (address:port) on `node`. */
  explain: (node: string, from: string, to: string, ingress: 'pod' | 'uplink') => Promise<void>;
  print: (line?: string) => void;
}

function deployment(replicas: number): Manifest {
  const object: V1Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'hostnames', namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'hostnames' } },
      template: {
        metadata: { labels: { app: 'hostnames' } },
        spec: { containers: [{ name: 'hostnames', image: 'registry.k8s.io/serve_hostname', ports: [{ containerPort: TARGET_PORT }] }] },
      },
    },
  };
  return { kind: 'Deployment', object };
}

function service(spec: NonNullable<V1Service['spec']> = {}): Manifest {
  const object: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'hostnames', namespace: 'default' },
    spec: { selector: { app: 'hostnames' }, ports: [{ name: 'default', protocol: 'TCP', port: PORT, targetPort: TARGET_PORT as never }], ...spec },
  };
  return { kind: 'Service', object };
}

const names = (answers: Answer[]) => new Set(answers.flatMap((a) => (a.ok ? [a.answer.split(' ')[0]!] : [])));
const allOk = (answers: Answer[]) => answers.every((a) => a.ok);
const summary = (answers: Answer[]) => {
  const { byAnswer, byError } = tally(answers.map((a) => (a.ok ? { ...a, answer: a.answer.split(' ')[0]! } : a)));
  const parts = [...Object.entries(byAnswer).sort(), ...Object.entries(byError).map(([e, n]) => [`(${e})`, n] as const)].map(([k, n]) => `${k} ${n}`);
  return parts.join(' · ') || 'nothing';
};

/** χ² of answer counts against an even spread (2 degrees of freedom: 13.8 is the 0.1 % quantile). */
function chiSquared(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((sum, n) => sum + (n - expected) ** 2 / expected, 0);
}
const CHI2_999 = { 1: 10.83, 2: 13.82 } as Record<number, number>;

const STEPS: Step[] = [
  {
    title: 'ClusterIP: a pod on another node reaches the Service',
    explain: [
      "tc ingress on the client pod's veth (node-2) finds the ClusterIP:80 in svc4_v1, picks a backend slot,",
      'DNATs to hostnames-1 on node-1 and records the flow in ct4_v4; node-2 routes the packet to node-1.',
      "The reply is translated back on tc egress of the same veth: the client only ever sees the ClusterIP.",
    ],
    async run(c) {
      await c.apply('Deployment hostnames (1 replica, port 9376) and Service hostnames (ClusterIP, 80 → 9376)', [deployment(1), service()]);
      const ip = clusterIP(c.lab);
      await c.until(() => c.request('client', { address: ip, port: PORT, count: 3 }), (a) => allOk(a));
      const answers = await c.request('client', { address: ip, port: PORT, count: 20 });
      c.check(allOk(answers) && names(answers).size === 1 && names(answers).has('hostnames-1'), `20 connections from pod client (node-2) to ${ip}:${PORT} → ${summary(answers)}`);
      await c.explain('node-2', c.lab.pod('client').address, `${ip}:${PORT}`, 'pod');
    },
  },
  {
    title: 'Scale to 2, then 3 replicas: new connections spread evenly',
    explain: [
      'The agent writes the new backends to be_v1, then the extra slots, then the master entry with the new',
      'count, so that no packet sees a slot without its backend. Each new connection picks a slot at random:',
      "what kube-proxy's iptables chain does with `statistic --probability 0.5` (then 0.333…, 0.5, 1).",
    ],
    async run(c) {
      const ip = clusterIP(c.lab);
      for (const replicas of [2, 3]) {
        await c.apply(`Deployment hostnames: replicas ${replicas}`, [deployment(replicas)]);
        const want = Array.from({ length: replicas }, (_, i) => `hostnames-${i + 1}`);
        await c.until(() => c.request('client', { address: ip, port: PORT, count: 30 }), (a) => allOk(a) && names(a).size === replicas);
        const count = 100 * replicas;
        const answers = await c.request('client', { address: ip, port: PORT, count });
        const counts = want.map((n) => answers.filter((a) => a.ok && a.answer === n).length);
        const chi2 = chiSquared(counts);
        c.check(
          allOk(answers) && counts.every((n) => n > 0) && chi2 < CHI2_999[replicas - 1]!,
          `${count} connections: ${summary(answers)} (χ² ${chi2.toFixed(1)} < ${CHI2_999[replicas - 1]}: even)`,
        );
      }
    },
  },
  {
    title: 'NodePort: an outside client reaches it on every node',
    explain: [
      'A 0.0.0.0:<nodePort> frontend appears. XDP on each node\'s uplink matches it before an skb exists and picks',
      'a backend with Maglev (every node picks the same one for a flow); a pod on the other node also gets the',
      "node's address as source (SNAT) so that the reply comes back through it; bpf_fib_lookup forwards.",
    ],
    async run(c) {
      await c.apply('Service hostnames: type NodePort', [service({ type: 'NodePort' })]);
      const nodePort = servicePorts(c.lab).nodePort!;
      for (const node of c.lab.nodes) {
        const opts = { address: node.address, port: nodePort, count: 30, payload: 'whoami\n', timeoutMs: 2000 };
        await c.until(() => c.request('client-1', { ...opts, count: 3 }), allOk);
        const answers = await c.request('client-1', opts);
        // "POD CLIENT:PORT": a pod on this node sees the client itself, a pod elsewhere sees this node.
        const wrongSource = answers.filter((a) => {
          if (!a.ok) return false;
          const [pod, seen] = a.answer.split(' ');
          const local = c.lab.pods.find((p) => p.name === pod)?.node === node.name;
          return !seen?.startsWith(`${local ? c.lab.clients[0]!.address : node.address}:`);
        });
        c.check(allOk(answers) && names(answers).size === 3, `client-1 → ${node.name} ${node.address}:${nodePort}: ${summary(answers)}`);
        c.check(
          allOk(answers) && wrongSource.length === 0,
          `  pods on ${node.name} see the client (198.18.0.100), the others see ${node.address} (SNAT)${wrongSource.length ? `; not so: ${wrongSource.slice(0, 3).map((a) => a.ok && JSON.stringify(a.answer)).join(', ')}` : ''}`,
        );
      }
      await c.explain('node-1', c.lab.clients[0]!.address, `${c.lab.node(1).address}:${nodePort}`, 'uplink');
    },
  },
  {
    title: 'LoadBalancer with loadBalancerSourceRanges: allowed sources reach it, others are dropped',
    explain: [
      "The cloud's ingress IP is one more frontend; the allowed ranges go into srcr4_v1, an LPM trie per",
      'Service. A packet from anywhere else is dropped (reason SOURCE_RANGE), not refused: the client times out,',
      "as with kube-proxy's DROP rule.",
    ],
    async run(c) {
      const allowed = c.lab.clients[0]!;
      const other = c.lab.clients[1]!;
      await c.apply(`Service hostnames: type LoadBalancer, loadBalancerSourceRanges [${allowed.address}/32]`, [
        service({ type: 'LoadBalancer', loadBalancerSourceRanges: [`${allowed.address}/32`] }),
      ]);
      const lb = loadBalancerIP(c.lab);
      await c.until(() => c.request(allowed.name, { address: lb, port: PORT, count: 3 }), allOk);
      const ok = await c.request(allowed.name, { address: lb, port: PORT, count: 30, timeoutMs: 2000 });
      c.check(allOk(ok), `${allowed.name} (${allowed.address}) → ${lb}:${PORT}: ${summary(ok)}`);
      const denied = await c.request(other.name, { address: lb, port: PORT, count: 10, timeoutMs: 500, concurrency: 10 });
      c.check(denied.every((a) => !a.ok && a.error === 'timeout'), `${other.name} (${other.address}) → ${lb}:${PORT}: ${summary(denied)}`);
      await c.explain('node-1', other.address, `${lb}:${PORT}`, 'uplink');
    },
  },
  {
    title: 'externalIPs, externalTrafficPolicy: Local with its health check, session affinity',
    explain: [
      'An external IP is one more frontend, without source ranges (they guard the LB IP only). With ETP Local',
      "the external frontends use this node's endpoints only and keep the client's address (no SNAT); a node",
      'without one drops (NO_LOCAL_ENDPOINTS) and its health-check node port answers 503, so a cloud load',
      'balancer leaves it out. Session affinity: aff4_v1 remembers the backend per client and Service.',
    ],
    async run(c) {
      const external = '198.19.255.200';
      const [client1, client2] = [c.lab.clients[0]!, c.lab.clients[1]!];
      await c.apply(`Service hostnames: externalIPs [${external}]`, [
        service({ type: 'LoadBalancer', loadBalancerSourceRanges: [`${client1.address}/32`], externalIPs: [external] }),
      ]);
      await c.until(() => c.request(client2.name, { address: external, port: PORT, count: 3 }), allOk);
      const viaExternal = await c.request(client2.name, { address: external, port: PORT, count: 20, timeoutMs: 2000 });
      c.check(allOk(viaExternal), `${client2.name} → external IP ${external}:${PORT} (no source ranges there): ${summary(viaExternal)}`);

      await c.apply('Deployment hostnames: replicas 1; Service hostnames: externalTrafficPolicy Local', [
        deployment(1),
        service({ type: 'LoadBalancer', loadBalancerSourceRanges: [`${client1.address}/32`], externalIPs: [external], externalTrafficPolicy: 'Local' }),
      ]);
      const { nodePort, healthCheckNodePort } = servicePorts(c.lab);
      const [withPod, without] = [c.lab.node(1), c.lab.node(2)];
      // What a cloud load balancer asks each node, from outside.
      const hc = await c.until(
        () => Promise.all([withPod, without].map((n) => httpGet(c.lab.netnsName(client1.name), n.address, healthCheckNodePort!, '/healthz'))),
        ([a, b]) => a?.status === 200 && b?.status === 503,
      );
      for (const [i, n] of [withPod, without].entries()) {
        const want = i === 0 ? 200 : 503;
        c.check(hc[i]?.status === want, `health check ${n.address}:${healthCheckNodePort}/healthz → ${hc[i]?.status ?? hc[i]?.error} ${JSON.stringify(hc[i]?.body ?? '')}`);
      }
      const kept = await c.request(client1.name, { address: withPod.address, port: nodePort!, count: 10, payload: 'whoami\n', timeoutMs: 2000 });
      c.check(allOk(kept) && kept.every((a) => a.ok && a.answer.startsWith(`hostnames-1 ${client1.address}:`)), `${client1.name} → ${withPod.name}:${nodePort}: ${summary(kept)}, the pod sees ${client1.address} (client address kept)`);
      const dropped = await c.request(client1.name, { address: without.address, port: nodePort!, count: 5, timeoutMs: 500 });
      c.check(dropped.every((a) => !a.ok && a.error === 'timeout'), `${client1.name} → ${without.name}:${nodePort} (no local endpoint): ${summary(dropped)}`);
      await c.explain(without.name, client1.address, `${without.address}:${nodePort}`, 'uplink');

      await c.apply('Deployment hostnames: replicas 3; Service hostnames: sessionAffinity ClientIP', [
        deployment(3),
        service({ type: 'LoadBalancer', loadBalancerSourceRanges: [`${client1.address}/32`], externalIPs: [external], externalTrafficPolicy: 'Local', sessionAffinity: 'ClientIP' }),
      ]);
      const ip = clusterIP(c.lab);
      // Without affinity, 30 connections over 3 backends all landing on one has odds of 3 in 3^30.
      const sticky = await c.until(() => c.request('client', { address: ip, port: PORT, count: 30 }), (a) => allOk(a) && names(a).size === 1);
      c.check(allOk(sticky) && names(sticky).size === 1, `30 connections from pod client to ${ip}:${PORT} with 3 replicas: ${summary(sticky)} (one backend)`);
    },
  },
];

/**
 * `bpfproxy explain` on a node (inside its namespace, with its agent's config): the path a packet
 * takes through bpfproxy there, step by step, from the live maps.
 */
async function explainLines(lab: Lab, config: string, node: string, from: string, to: string, ingress: 'pod' | 'uplink'): Promise<string[]> {
  const args = ['netns', 'exec', lab.netnsName(node), process.execPath, ...cliCommand(), 'explain', '--config', config, '--from', `${from}:40000`, '--to', to, '--ingress', ingress];
  try {
    return (await run('ip', args, { timeoutMs: 30_000 })).trimEnd().split('\n');
  } catch (e) {
    return [`(explain failed: ${(e as Error).message.split('\n')[0]})`];
  }
}

/** The Service as `lab apply` stored it: the allocated ClusterIP, node ports and ingress IP. */
function liveService(lab: Lab): V1Service {
  const svc = clusterStoreOf(lab.status()).services().find((s) => s.metadata?.namespace === 'default' && s.metadata?.name === 'hostnames');
  if (!svc) throw new Error('Service hostnames is not in the lab');
  return svc;
}

function clusterIP(lab: Lab): string {
  return liveService(lab).spec!.clusterIP!;
}

function loadBalancerIP(lab: Lab): string {
  const ip = liveService(lab).status?.loadBalancer?.ingress?.[0]?.ip;
  if (!ip) throw new Error('Service hostnames has no LoadBalancer ingress IP');
  return ip;
}

function servicePorts(lab: Lab): { nodePort: number | undefined; healthCheckNodePort: number | undefined } {
  const spec = liveService(lab).spec!;
  return { nodePort: spec.ports?.[0]?.nodePort, healthCheckNodePort: spec.healthCheckNodePort };
}


export async function runDemo(): Promise<void> {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (!controller.signal.aborted) console.log(`\n${sig}: stopping, the lab is being removed`);
    controller.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const print = (line = '') => console.log(line);
  const results: { title: string; checks: Check[]; error?: string }[] = [];
  let lab: Lab | undefined;
  const started = performance.now();
  try {
    print('bpfproxy demo: Services, step by step, in a lab of network namespaces');
    print();
    lab = await Lab.up({ name: `demo-${runId()}`, nodes: 2, clients: 2, signal: controller.signal });
    const agents = await startFileCluster(lab, { signal: controller.signal });
    const client = await lab.addPod({ name: 'client', node: 'node-2', ports: [{ port: 8080, protocol: 'TCP' }] });
    print(`lab ${lab.name}: 2 nodes (198.18.0.11, .12), each running a bpfproxy agent (pids ${agents.all.map((a) => a.pid).join(', ')}),`);
    print(`  outside clients client-1 (198.18.0.100) and client-2 (198.18.0.101), pod client on node-2 (${client.address})`);
    for (const [i, step] of STEPS.entries()) {
      controller.signal.throwIfAborted();
      const checks: Check[] = [];
      const result: (typeof results)[number] = { title: step.title, checks };
      results.push(result);
      print();
      print(`[${i + 1}/${STEPS.length}] ${step.title}`);
      const theLab = lab;
      const ctx: Context = {
        lab: theLab,
        agents,
        print: (line = '') => print(`      ${line}`),
        check: (ok, what) => {
          checks.push({ ok, what });
          print(`  ${ok ? '✔' : '✘'} ${what}`);
        },
        apply: async (what, manifests) => {
          print(`  $ bpfproxy lab apply -f -      # ${what}`);
          await applyManifests(theLab, manifests, { log: (l) => print(`    ${l.trim()}`), signal: controller.signal });
        },
        request: (from, opts) => theLab.request(from, opts),
        until: async (probe, done) => {
          const deadline = Date.now() + CONVERGE_MS;
          for (;;) {
            controller.signal.throwIfAborted();
            const r = await probe();
            if (done(r) || Date.now() > deadline) return r;
            await new Promise((res) => setTimeout(res, 200));
          }
        },
        explain: async (node, from, to, ingress) => {
          const lines = await explainLines(theLab, agents.agent(node).config, node, from, to, ingress);
          print(`  $ bpfproxy lab exec ${node} -- bpfproxy explain --from ${from}:40000 --to ${to}`);
          for (const l of lines.filter((x) => x.trim() !== '')) print(`    ${l}`);
        },
      };
      for (const l of step.explain) print(`  │ ${l}`);
      try {
        await step.run(ctx);
      } catch (e) {
        if (controller.signal.aborted) throw e;
        result.error = (e as Error).message;
        print(`  ✘ ${result.error}`);
      }
    }
  } catch (e) {
    if (!controller.signal.aborted) {
      print(`\ndemo failed: ${(e as Error).message}`);
      process.exitCode = 1;
    } else process.exitCode = 130;
  } finally {
    if (lab) {
      await lab.down().catch((e: Error) => {
        print(`tearing down: ${e.message}`);
        process.exitCode ||= 1;
      });
      print(`\nlab ${lab.name} removed`);
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const passed = results.filter((r) => !r.error && r.checks.length > 0 && r.checks.every((c) => c.ok));
  const checks = results.flatMap((r) => r.checks);
  const interrupted = controller.signal.aborted ? ', interrupted' : '';
  print(`${passed.length}/${STEPS.length} steps checked (${checks.filter((c) => c.ok).length}/${checks.length} checks) in ${((performance.now() - started) / 1000).toFixed(1)} s${interrupted}`);
  for (const r of results.filter((x) => !passed.includes(x))) {
    print(`  failed: ${r.title}`);
    for (const c of r.checks.filter((x) => !x.ok)) print(`    ✘ ${c.what}`);
    if (r.error) print(`    ✘ ${r.error}`);
  }
  if (passed.length !== STEPS.length && process.exitCode === undefined) process.exitCode = 1;
}
