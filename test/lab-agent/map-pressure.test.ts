// Conntrack at 100 %, through agent-run nodes (the agent's own config code, with mapSizes.conntrack at
// its floor): long-lived connections from an outside client through node-1's NodePort to a backend on
// node-2 (SNAT: two entries per flow in node-1's ct4_v4) until the table is full. Then, as netfilter
// does with a full table: every established connection keeps working (none reset), new connections
// are dropped and counted as CT_FULL, the agent warns and reports the map full, and its occupancy
// metric is exactly the map's count. Once the long connections close, the agent (past 80 %: GC at
// once, closed flows included) makes room and new connections succeed again.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';

import { privilegedSerial } from '../helpers/env.js';
import { hostnamesService, liveService } from './_fixture.js';
import { eventually } from '../helpers/wait.js';

import { MAP_SIZE_FLOORS } from '../../ts/agent/config-shape.js';
import { mapSpecs } from '../../ts/abi/index.js';
import { openPinnedMaps } from '../../ts/dataplane/pinned-maps.js';
import { httpGet, METRICS_PORT } from '../../ts/lab/agents.js';
import { applyManifests } from '../../ts/lab/file-api/apply.js';
import { startFileCluster } from '../../ts/lab/file-api/file-cluster.js';
import { runId } from '../../ts/lab/net/netns.js';
import { Lab } from '../../ts/lab/topology.js';

const CAPACITY = MAP_SIZE_FLOORS.conntrack!;
/** Two entries per flow: this many connections fill the table; a few more are tried. */
const HELD = CAPACITY / 2 + 40;
const CT = mapSpecs.ct4.name;

/**
 * Many long-lived connections from one process in a namespace, to the hostname server's stream mode
 * (every byte echoed). Commands on stdin, one JSON line of result each: "open N" connects N more
 * (16 at a time, 1.5 s to connect and hear the backend), "ping" sends a line on each connection
 * and waits for its echo, "close" closes each (FIN) and waits for the server's.
 */
const HOLDER = `
const net = require('node:net');
const { address, port } = JSON.parse(process.argv[1]);
const conns = [];
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
function connect() {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port });
    const c = { s, rx: '', pod: undefined, error: undefined, closed: false };
    const timer = setTimeout(() => { s.destroy(); resolve(undefined); }, 1500);
    s.setEncoding('utf8');
    s.on('connect', () => s.write('stream\\n'));
    s.on('data', (d) => {
      c.rx += d;
      if (c.pod === undefined && c.rx.includes('\\n')) {
        c.pod = c.rx.slice(0, c.rx.indexOf('\\n'));
        c.rx = c.rx.slice(c.pod.length + 1);
        clearTimeout(timer);
        resolve(c);
      }
    });
    s.on('error', (e) => { c.error = e.code || e.message; if (c.pod === undefined) { clearTimeout(timer); resolve(undefined); } });
    s.on('close', () => { c.closed = true; });
  });
}
async function open(n) {
  let next = 0, ok = 0, failed = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < n) {
      next++;
      const c = await connect();
      if (c) { conns.push(c); ok++; } else failed++;
    }
  }));
  say({ ok, failed, held: conns.length });
}
async function waitFor(pred, ms) {
  const deadline = Date.now() + ms;
  while (!pred() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return pred();
}
async function ping(n) {
  const line = 'ping ' + n + '\\n';
  for (const c of conns) if (!c.closed) { c.rx = ''; c.s.write(line); }
  await waitFor(() => conns.every((c) => c.closed || c.rx.includes(line)), 5000);
  say({ echoed: conns.filter((c) => !c.closed && c.rx.includes(line)).length, reset: conns.filter((c) => c.error).length, closed: conns.filter((c) => c.closed).length, held: conns.length });
}
async function close() {
  for (const c of conns) c.s.end();
  await waitFor(() => conns.every((c) => c.closed), 10000);
  say({ closed: conns.filter((c) => c.closed).length, reset: conns.filter((c) => c.error).length, held: conns.length });
  process.exit(0);
}
let pings = 0;
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
  const [cmd, arg] = l.trim().split(' ');
  if (cmd === 'open') void open(Number(arg));
  else if (cmd === 'ping') void ping(++pings);
  else if (cmd === 'close') void close();
});
`;

/** What a holder command reports (each command fills its own fields). */
type HolderResult = Record<'ok' | 'failed' | 'held' | 'echoed' | 'reset' | 'closed', number>;

function holder(netns: string, address: string, port: number) {
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', HOLDER, JSON.stringify({ address, port })], { stdio: ['pipe', 'pipe', 'inherit'] });
  const results: ((v: HolderResult) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => results.shift()?.(JSON.parse(l) as HolderResult));
  const ask = (cmd: string) =>
    new Promise<HolderResult>((resolve) => {
      results.push(resolve);
      child.stdin!.write(`${cmd}\n`);
    });
  return { ask, kill: () => child.kill('SIGKILL') };
}

/** A series' value in a Prometheus text exposition, e.g. 'bpfproxy_map_entries{map="ct4_v4"}'. */
function series(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

privilegedSerial('conntrack at 100 %: established connections carry on, new ones are dropped as CT_FULL, the agent warns and counts exactly; closed, room comes back', async (t) => {
  t.timeout(300_000);
  let lab: Lab | undefined;
  let hold: ReturnType<typeof holder> | undefined;
  t.teardown(async () => {
    hold?.kill();
    await lab?.down();
  });
  lab = await Lab.up({ name: `prs-${runId()}`, nodes: 2, clients: 1 });
  const agents = await startFileCluster(lab, { config: { mapSizes: { conntrack: CAPACITY } } });
  await lab.addPod({ name: 'hostnames-1', node: 'node-2', ports: [{ port: 9376, protocol: 'TCP' }], labels: { app: 'hostnames' } });
  await applyManifests(lab, [hostnamesService({ type: 'NodePort' })]);
  const nodePort = liveService(lab).spec!.ports![0]!.nodePort!;
  const node1 = lab.node('node-1');
  const metrics = async () => (await httpGet(node1.netns, '127.0.0.1', METRICS_PORT, '/metrics')).body as string;
  const ctCount = () => {
    const pinned = openPinnedMaps(agents.pinDir('node-1'));
    try {
      return pinned.maps.ct4.raw.keys().count;
    } finally {
      pinned.close();
    }
  };
  const ready = await eventually('the NodePort to answer', () => lab!.request('client-1', { address: node1.address, port: nodePort, count: 3, timeoutMs: 2000 }), (a) => a.every((x) => x.ok));
  t.true(ready.every((a) => a.ok), 'the NodePort answers');

  // Fill: more long connections than the table holds.
  hold = holder(lab.netnsName('client-1'), node1.address, nodePort);
  const opened = await hold.ask(`open ${HELD}`);
  t.log(`long connections: ${HELD} tried, ${opened.ok} connected, ${opened.failed} refused by the full table`);
  t.true(opened.ok >= CAPACITY / 2 - 10 && opened.ok <= CAPACITY / 2, `about ${CAPACITY / 2} connections fit (two entries each), got ${opened.ok}`);
  t.true(opened.failed >= HELD - CAPACITY / 2, 'the rest did not connect');

  // Full, and counted exactly: the metric is the map's own count.
  const full = await eventually('conntrack full and counted', async () => ({ text: await metrics(), count: ctCount() }), (m) => series(m.text, `bpfproxy_map_entries{map="${CT}"}`) === m.count && m.count === CAPACITY, 10_000);
  t.is(full.count, CAPACITY, 'ct4_v4 is full');
  t.is(series(full.text, `bpfproxy_map_entries{map="${CT}"}`), full.count, 'occupancy metric = the map\'s count');
  t.is(series(full.text, `bpfproxy_map_capacity{map="${CT}"}`), CAPACITY);
  t.is(series(full.text, `bpfproxy_map_pressure{map="${CT}"}`), 1);

  // New connections: dropped, counted.
  const dropsBefore = series(await metrics(), 'bpfproxy_drop_packets_total{reason="CT_FULL"}') ?? 0;
  const fresh = await lab.request('client-1', { address: node1.address, port: nodePort, count: 20, timeoutMs: 1500, concurrency: 20 });
  const freshOk = fresh.filter((a) => a.ok).length;
  t.log(`new connections while full: 20 tried, ${freshOk} connected`);
  t.is(freshOk, 0, 'no new connection while full');
  const after = await metrics();
  const ctFull = series(after, 'bpfproxy_drop_packets_total{reason="CT_FULL"}') ?? 0;
  t.true(ctFull - dropsBefore >= 20, `every new connection's SYN counted as CT_FULL (${ctFull - dropsBefore} more)`);
  t.is(series(after, 'bpfproxy_drop_packets_total{reason="SNAT_EXHAUSTED"}'), 0, 'not mistaken for SNAT exhaustion');

  // Established connections: every one still echoes.
  const ping = await hold.ask('ping');
  t.log(`established while full: ${ping.held} held, ${ping.echoed} echoed, ${ping.reset} reset`);
  t.is(ping.reset, 0, 'no connection reset');
  t.is(ping.echoed, opened.ok, 'every connection echoes');

  // The warning: once, naming the map, its count and the field to raise.
  const log = () => readFileSync(agents.agent('node-1').log, 'utf8');
  const warned = await eventually('the full-map warning', async () => log(), (l) => l.includes(`map ${CT} is full (${CAPACITY}/${CAPACITY} entries)`), 10_000);
  const warning = warned.split('\n').find((l) => l.includes(`map ${CT} is full`))!;
  t.regex(warning, /raise mapSizes\.conntrack/);
  t.regex(warning, /"level":"warn"|"level":40/);
  t.is(warned.split('\n').filter((l) => l.includes(`map ${CT} is full`)).length, 1, 'warned once');
  t.true((series(await metrics(), `bpfproxy_map_pressure_warnings_total{map="${CT}",level="full"}`) ?? 0) >= 1);

  // The long connections close: their flows (TIME_WAIT) are reclaimed under pressure, not in 120 s.
  const closed = await hold.ask('close');
  t.log(`closed: ${closed.closed}/${closed.held} cleanly, ${closed.reset} reset`);
  t.is(closed.reset, 0);
  const started = Date.now();
  const again = await eventually('new connections to succeed again', () => lab!.request('client-1', { address: node1.address, port: nodePort, count: 20, timeoutMs: 1500, concurrency: 20 }), (a) => a.every((x) => x.ok), 20_000);
  t.log(`after close: new connections answered again within ${((Date.now() - started) / 1000).toFixed(1)} s: ${again.filter((a) => a.ok).length}/20`);
  t.true(again.every((a) => a.ok), 'new connections succeed again');
  t.regex(await eventually('the back-under log line', async () => log(), (l) => l.includes(`map ${CT} is back under`), 10_000), new RegExp(`map ${CT} is back under`));
  console.log(`MAP PRESSURE SUMMARY: ct4 ${CAPACITY} entries; long connections ${HELD} tried, ${opened.ok} held, ${ping.reset} reset while full; ` +
    `new connections while full 20 tried, ${20 - freshOk} dropped (CT_FULL +${ctFull - dropsBefore} packets); after close 20/20 answered`);
});
