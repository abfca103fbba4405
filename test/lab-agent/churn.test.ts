// Churn through agent-run nodes (the agent's own config code, kube-proxy's default conntrack
// settings): many short TCP connections from several outside clients through node-1's NodePort to
// a backend on node-2 (SNAT to node-1's address: all of them share node-1's SNAT ports towards
// that backend), twice in a row, and DNS-sized UDP queries through the ClusterIP from pods on
// both nodes and from node-1 itself. Every connection and query must be answered; conntrack
// occupancy and SNAT port use are printed after each batch. Counts: CHURN_TCP (per batch) and
// CHURN_UDP (per source); the defaults are the figures (20,000 × 2 and 10,000), which CI runs.
import type { ExecutionContext } from 'ava';

import { privilegedSerial } from '../helpers/env.js';
import { agentLabFor, liveService } from './_fixture.js';
import { eventually } from '../helpers/wait.js';

import { ctStateName, CtDir, CtFlags, DROP_REASON_SLOTS, IPPROTO, dropReasonName } from '../../ts/abi/index.js';
import { monotonicNs } from '../../ts/abi/clock.js';
import { openPinnedMaps } from '../../ts/dataplane/pinned-maps.js';
import { sumPerCpu } from '../../ts/dataplane/typed-map.js';
import { applyManifests } from '../../ts/lab/file-api/apply.js';
import type { Manifest } from '../../ts/lab/file-api/manifests.js';
import { tally, type Answer } from '../../ts/lab/net/traffic.js';

const CLIENTS = 4;
const TCP_PER_BATCH = Number(process.env.CHURN_TCP ?? 20_000);
const UDP_QUERIES = Number(process.env.CHURN_UDP ?? 10_000);
/** One query's size, as a DNS question for a long name: "echo " + this comes back as the answer. */
const QUERY = 'q'.repeat(60);

const churnService: Manifest = {
  kind: 'Service',
  object: {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'churn', namespace: 'default' },
    spec: {
      type: 'NodePort',
      selector: { app: 'churn' },
      ports: [
        { name: 'tcp', protocol: 'TCP', port: 80, targetPort: 9376 as never },
        { name: 'dns', protocol: 'UDP', port: 53, targetPort: 9376 as never },
      ],
    },
  },
};

/** What node-1's conntrack holds: live entries by flow state, SNAT ports in use, entries GC has yet to delete. */
function occupancy(pinDir: string, nodeIp: string) {
  const pinned = openPinnedMaps(pinDir);
  try {
    const now = monotonicNs();
    const byState: Record<string, number> = {};
    const snatPorts = new Set<number>();
    let live = 0;
    let expired = 0;
    for (const [k, v] of pinned.maps.ct4.entries()) {
      if (v.expires_ns <= now) {
        expired++;
        continue;
      }
      live++;
      if (k.dir !== CtDir.FWD) {
        if (k.daddr === nodeIp && v.flags & CtFlags.SNAT) snatPorts.add(k.dport);
        continue;
      }
      const name = `${k.proto === IPPROTO.TCP ? 'tcp' : 'udp'} ${ctStateName(k.proto, v.state)}`;
      byState[name] = (byState[name] ?? 0) + 1;
    }
    const drops: Record<string, number> = {};
    for (let r = 0; r < DROP_REASON_SLOTS; r++) {
      const n = Number(sumPerCpu(pinned.maps.drops.getPerCpu(r))?.packets ?? 0n);
      if (n > 0) drops[dropReasonName(r)] = n;
    }
    return { live, expired, flows: byState, snatPorts: snatPorts.size, drops };
  } finally {
    pinned.close();
  }
}

/** The kernel's TCP counters of a namespace that tell why a SYN went unanswered (TIME_WAIT, PAWS). */
async function tcpCounters(lab: Awaited<ReturnType<typeof agentLabFor>>['lab'], ns: string): Promise<string> {
  const out = await lab.exec(ns, 'nstat', ['-az', '--json']);
  const all = (JSON.parse(out) as { kernel: Record<string, number> }).kernel;
  const wanted = /PAWS|TW|TimeWait|SynRetrans|ChallengeACK|ListenDrop|ListenOverflow|OutRsts|AttemptFails|EstabResets/;
  return Object.entries(all).filter(([k, v]) => v > 0 && wanted.test(k)).map(([k, v]) => `${k}=${v}`).join(' ');
}

function summary(answers: Answer[]) {
  const { byError } = tally(answers);
  const ok = answers.filter((a) => a.ok).length;
  const slowest = Math.max(...answers.map((a) => a.ms));
  // Answered, but only after the client retransmitted its SYN (or query): something was lost once.
  const late = answers.filter((a) => a.ok && a.ms > 900).length;
  return { ok, failed: answers.length - ok, byError, slowestMs: slowest, late };
}

async function tcpBatch(t: ExecutionContext, lab: Awaited<ReturnType<typeof agentLabFor>>['lab'], address: string, port: number) {
  const started = Date.now();
  const per = Math.ceil(TCP_PER_BATCH / CLIENTS);
  const answers = (await Promise.all(Array.from({ length: CLIENTS }, (_, i) =>
    lab.request(`client-${i + 1}`, { address, port, count: per, timeoutMs: 40_000, concurrency: 25 })))).flat();
  return { ...summary(answers), seconds: (Date.now() - started) / 1000, answers };
}

privilegedSerial('churn: short TCP connections from outside through a NodePort with SNAT, twice; DNS-sized UDP through the ClusterIP from pods and the node', async (t) => {
  t.timeout(900_000);
  const { lab, agents } = await agentLabFor(t, { nodes: 2, clients: CLIENTS });
  const ports = [{ port: 9376, protocol: 'TCP' as const }, { port: 9376, protocol: 'UDP' as const }];
  await lab.addPod({ name: 'churn-backend', node: 'node-2', ports, labels: { app: 'churn' } });
  const pods = {
    otherNode: await lab.addPod({ name: 'dns-client-1', node: 'node-1', ports }),
    backendNode: await lab.addPod({ name: 'dns-client-2', node: 'node-2', ports }),
  };
  await applyManifests(lab, [churnService]);
  const svc = liveService(lab, 'churn');
  const nodePort = svc.spec!.ports!.find((p) => p.protocol === 'TCP')!.nodePort!;
  const node1 = lab.node('node-1').address;
  const pinDir = agents.pinDir('node-1');
  const ready = await eventually('the NodePort to answer', () => lab.request('client-1', { address: node1, port: nodePort, count: 5, timeoutMs: 2000 }), (a) => a.every((x) => x.ok));
  t.true(ready.every((a) => a.ok), 'the NodePort answers before the churn');

  const lines: string[] = [];
  for (const batch of [1, 2]) {
    const r = await tcpBatch(t, lab, node1, nodePort);
    t.log(`backend TCP counters: ${await tcpCounters(lab, 'churn-backend')}; client-1: ${await tcpCounters(lab, 'client-1')}`);
    const occ = occupancy(pinDir, node1);
    const rate = Math.round(TCP_PER_BATCH / r.seconds);
    const line = `churn TCP batch ${batch}: ${r.ok}/${r.ok + r.failed} ok in ${r.seconds.toFixed(1)} s (${rate}/s), failed ${JSON.stringify(r.byError)}, ${r.late} after a retransmission, slowest ${r.slowestMs} ms; ` +
      `node-1 conntrack: ${occ.live} live entries ${JSON.stringify(occ.flows)}, ${occ.expired} expired awaiting GC, SNAT ports in use ${occ.snatPorts}, drops so far ${JSON.stringify(occ.drops)}`;
    t.log(line);
    lines.push(line);
    t.is(r.failed, 0, `batch ${batch}: every connection answered`);
    t.true(r.answers.every((a) => !a.ok || a.answer === 'churn-backend'), `batch ${batch}: every answer from the backend`);
  }

  // UDP: a query per socket (its own flow), UDP_QUERIES from each source: a pod on another node, one
  // on the backend's node, and node-1 itself (its service device's egress translates).
  const sources = [
    { name: 'pod on node-1', from: pods.otherNode.name, node: 'node-1' },
    { name: 'pod on node-2 (the backend\'s)', from: pods.backendNode.name, node: 'node-2' },
    { name: 'node-1 itself', from: 'node-1', node: 'node-1' },
  ];
  for (const s of sources) {
    const started = Date.now();
    const answers = await lab.request(s.from, { address: svc.spec!.clusterIP!, port: 53, protocol: 'UDP', payload: `echo ${QUERY}`, count: UDP_QUERIES, timeoutMs: 5000, concurrency: 25 });
    const r = summary(answers);
    // The source's own node translates (tc on the pod's veth, or the node's service device): its conntrack holds the flows.
    const occ = occupancy(agents.pinDir(s.node), lab.node(s.node).address);
    const line = `churn UDP from ${s.name}: ${r.ok}/${answers.length} answered in ${((Date.now() - started) / 1000).toFixed(1)} s, failed ${JSON.stringify(r.byError)}; ` +
      `${s.node} conntrack: ${occ.live} live entries ${JSON.stringify(occ.flows)}`;
    t.log(line);
    lines.push(line);
    t.is(r.failed, 0, `UDP from ${s.name}: every query answered`);
    t.true(answers.every((a) => !a.ok || a.answer === QUERY), 'every answer is the query echoed');
  }
  // The one line CI logs show.
  console.log(`CHURN SUMMARY (tcp ${TCP_PER_BATCH}×2 from ${CLIENTS} clients, udp ${UDP_QUERIES}): ${lines.join(' | ')}`);
});
