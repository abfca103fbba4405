/**
 * Writes a run's files: results.json (everything), report.md (the ratios, the targets, a table per
 * scenario) and one SVG chart per scenario, all into one folder.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { BenchResults, ConnectionPoint, PathName } from './results.js';
import { barChart, formatNumber, lineChart } from './svg.js';
import { connRate, kN, x } from './targets.js';

const CONN_PATHS: PathName[] = ['direct', 'iptables-legacy', 'iptables-nft', 'nftables', 'bpfproxy'];

function table(head: string[], rows: (string | number)[][]): string {
  const cell = (c: string | number) => (typeof c === 'number' ? formatNumber(c) : c);
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

const fixed = (v: number | undefined, d = 1) => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));

function connectionSection(r0: BenchResults, pts: ConnectionPoint[], charts: Record<string, string>): string {
  const ns = [...new Set(pts.map((p) => p.services))].sort((a, b) => a - b);
  const rate = (path: PathName, n: number, to: 'clusterIp' | 'podIp') => connRate(pts, path, n, to);
  charts['connections.svg'] = lineChart({
    title: 'New TCP connections/s to the last-matched ClusterIP',
    subtitle: 'pod → ClusterIP through the node; direct = pod → pod IP, no proxy',
    yLabel: 'connections/s',
    xLabel: 'Services loaded',
    logX: true,
    x: ns,
    series: CONN_PATHS.map((path) => ({ name: path === 'direct' ? 'direct pod IP (no proxy)' : path, values: ns.map((n) => nullIfNaN(rate(path, n, path === 'direct' ? 'podIp' : 'clusterIp'))) })),
  });
  charts['connections-pod-ip.svg'] = lineChart({
    title: 'New TCP connections/s to a plain pod IP with N Services loaded',
    yLabel: 'connections/s',
    xLabel: 'Services loaded',
    logX: true,
    x: ns,
    series: CONN_PATHS.map((path) => ({ name: path === 'direct' ? 'no rules' : path, values: ns.map((n) => nullIfNaN(rate(path, n, 'podIp'))) })),
  });
  const rows: (string | number)[][] = [];
  for (const n of ns) {
    const direct = rate('direct', n, 'podIp');
    for (const path of CONN_PATHS) {
      const p = pts.find((q) => q.path === path && q.services === n);
      if (!p) continue;
      if (p.error) {
        rows.push([kN(n), path, `failed: ${p.error.replaceAll('|', '/')}`, '', '', '', '', '', '']);
        continue;
      }
      const c = path === 'direct' ? p.podIp : p.clusterIp;
      rows.push([
        kN(n),
        path,
        Math.round(c?.rate ?? NaN),
        x((c?.rate ?? NaN) / direct),
        `${c?.latencyUs?.p50 ?? '?'} / ${c?.latencyUs?.p99 ?? '?'}`,
        errorsOf(c),
        Math.round(p.podIp.rate),
        x(p.podIp.rate / direct),
        fixed(p.programMs, 0),
      ]);
    }
  }
  return [
    '## 1. New connections per second (pod → ClusterIP)',
    '',
    `Each row: a fresh bench topology, the path configured in the node namespace with N Services loaded (N − 1 synthetic ClusterIP Services, one endpoint each, and the target Service, sorted last, with the real backends), then the load generator on its own core connecting to the target ClusterIP (connect + RST), and to a backend\'s pod IP with the same rules loaded. Ratios are to the direct path (pod IP, no rules) measured at the same N. Figures are the best of ${String((r0.meta.profile as { rounds?: number }).rounds ?? 1)} runs of ${String((r0.meta.profile as { pointSeconds?: number }).pointSeconds ?? '?')} s each.`,
    '',
    table(['N', 'path', 'ClusterIP conn/s', '× direct', 'p50 / p99 µs', 'errors', 'pod IP conn/s (rules loaded)', '× direct', 'load ms'], rows),
    '',
    '![connections](connections.svg)',
    '',
    '![connections to a pod IP](connections-pod-ip.svg)',
    '',
  ].join('\n');
}

function errorsOf(r: { errors?: { refused: number; timeout: number; unreachable: number; other: number } } | undefined): string {
  if (!r?.errors) return '';
  const e = r.errors;
  const n = e.refused + e.timeout + e.unreachable + e.other;
  return n === 0 ? '0' : `${n} (${Object.entries(e).filter(([, v]) => v > 0).map(([k, v]) => `${v} ${k}`).join(', ')})`;
}

function nullIfNaN(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** UDP packets per second the node forwarded into the pods (what the sinks read, in results from before that was measured). */
function udpRate(u: { receivedRate: number; forwardedRate?: number } | undefined): number {
  return u?.forwardedRate ?? u?.receivedRate ?? NaN;
}

function nodePortSection(r: BenchResults, charts: Record<string, string>): string {
  const pts = r.nodePort ?? [];
  const direct = pts.find((p) => p.path === 'direct' && !p.error);
  const rows = pts.map((p) =>
    p.error
      ? [p.path, `failed: ${p.error.replaceAll('|', '/')}`, '', '', '', '', '', '']
      : [
          p.path,
          Math.round(p.crr?.rate ?? NaN),
          Math.round(udpRate(p.udp)),
          Math.round(p.udp?.receivedRate ?? NaN),
          Math.round(p.udp?.sent.rate ?? NaN),
          fixed(((p.stream?.receivedBytesPerS ?? NaN) * 8) / 1e9, 2),
          x(udpRate(p.udp) / udpRate(pts.find((q) => q.path === 'iptables-legacy')?.udp)),
          errorsOf(p.crr),
        ],
  );
  const cats = ['requests/s', '64-byte packets/s', 'TCP throughput'];
  const rel = (v: number | undefined, base: number | undefined) => nullIfNaN((v ?? NaN) / (base ?? NaN));
  charts['nodeport.svg'] = barChart({
    title: 'NodePort from an outside client, relative to the direct pod IP',
    subtitle: 'request rate (connection per request), 64-byte UDP packets forwarded to the pods, single-stream TCP',
    yLabel: '× direct',
    categories: cats,
    series: pts
      .filter((p) => !p.error && p.path !== 'direct')
      .map((p) => ({
        name: p.path,
        values: [rel(p.crr?.rate, direct?.crr?.rate), rel(udpRate(p.udp), udpRate(direct?.udp)), rel(p.stream?.receivedBytesPerS, direct?.stream?.receivedBytesPerS)],
      })),
  });
  return [
    '## 2. NodePort from an outside client',
    '',
    'client-1 → node-1:NodePort across the fabric bridge, backends on node-1. UDP: 64-byte frames over several flows, the generator sending as fast as it can; "forwarded" counts what the backend pods\' interfaces received (the node\'s work done, the ratio uses it), "arrived" what the sinks read (they share the datapath core, so they may fall behind). Throughput is one TCP stream, counted at the sink. bpfproxy-xdp runs XDP in generic mode (the lab uplink is a veth).',
    '',
    table(['path', 'requests/s', 'UDP pkt/s forwarded', 'UDP pkt/s arrived', 'UDP pkt/s sent', 'TCP Gbit/s', 'UDP × iptables-legacy', 'request errors'], rows),
    '',
    '![NodePort](nodeport.svg)',
    '',
  ].join('\n');
}

function testRunSection(r: BenchResults, charts: Record<string, string>): string {
  const pts = r.testRun ?? [];
  const cases = ['new flow (SYN)', 'established', 'non-service', 'xdp non-service'];
  const ns = [...new Set(pts.filter((p) => p.services > 0).map((p) => p.services))].sort((a, b) => a - b);
  const emptyTc = pts.find((p) => p.case === 'empty tc')?.nsPerPacket ?? NaN;
  const emptyXdp = pts.find((p) => p.case === 'empty xdp')?.nsPerPacket ?? NaN;
  const rows = cases.flatMap((c) =>
    ns.map((n) => {
      const v = pts.find((p) => p.case === c && p.services === n)?.nsPerPacket ?? NaN;
      return [c, kN(n), fixed(v), x(v / (c.startsWith('xdp') ? emptyXdp : emptyTc))];
    }),
  );
  rows.push(['empty tc program', '-', fixed(emptyTc), '1×'], ['empty xdp program', '-', fixed(emptyXdp), '1×']);
  charts['testrun.svg'] = barChart({
    title: 'BPF_PROG_TEST_RUN ns/packet',
    subtitle: `repeat ${pts[0]?.repeat ?? '?'}; the empty program is the floor`,
    yLabel: 'ns/packet',
    categories: cases,
    series: [
      ...ns.map((n) => ({ name: `${kN(n)} Services`, values: cases.map((c) => nullIfNaN(pts.find((p) => p.case === c && p.services === n)?.nsPerPacket ?? NaN)) })),
      { name: 'empty program', values: cases.map((c) => nullIfNaN(c.startsWith('xdp') ? emptyXdp : emptyTc)) },
    ],
  });
  return ['## 3. Per-packet cost (BPF_PROG_TEST_RUN)', '', table(['case', 'Services', 'ns/packet', '× empty program'], rows), '', '![test run](testrun.svg)', ''].join('\n');
}

function programmingSection(r: BenchResults, charts: Record<string, string>): string {
  const pts = r.programming ?? [];
  const sizes = [...new Set(pts.map((p) => p.services))].sort((a, b) => a - b);
  const bpf = (n: number) => pts.find((p) => p.tool === 'bpfproxy' && p.services === n);
  const full = (p: (typeof pts)[number] | undefined) => (p ? (Number.isFinite(p.fullMs) ? p.fullMs : (p.fullAtLeastMs ?? NaN)) : NaN);
  const rows = pts.map((p) => [
    `${kN(p.services)} × ${p.endpointsPerService}`,
    p.tool,
    p.error && !Number.isFinite(p.fullMs) ? (p.fullAtLeastMs ? `> ${(p.fullAtLeastMs / 1000).toFixed(0)} s (stopped)` : `failed: ${p.error.replaceAll('|', '/').slice(0, 200)}`) : fixed(p.fullMs, 1),
    p.lines ?? '',
    fixed(p.changeMs, 2),
    p.changeKind,
    p.tool === 'bpfproxy' ? '1×' : `${Number.isFinite(p.fullMs) ? '' : '≥ '}${x(full(p) / (bpf(p.services)?.fullMs ?? NaN))}`,
  ]);
  charts['programming.svg'] = barChart({
    title: 'Full programming: how many times faster bpfproxy is',
    subtitle: 'time of the tool / time of bpfproxy (model → entries → map writes), Services × 10 endpoints',
    yLabel: '× faster than the tool',
    categories: sizes.map(kN),
    series: (['iptables-legacy', 'iptables-nft', 'nftables'] as const).map((tool) => ({
      name: tool,
      values: sizes.map((n) => nullIfNaN(full(pts.find((p) => p.tool === tool && p.services === n)) / (bpf(n)?.fullMs ?? NaN))),
    })),
  });
  const bp = pts.filter((p) => p.tool === 'bpfproxy' && p.detail);
  const detail = bp.map((p) => [kN(p.services), fixed(p.detail!.fullModelMs), fixed(p.detail!.fullEntriesMs), fixed(p.detail!.fullWriteMs), p.detail!.fullEntriesWritten ?? '', fixed(p.detail!.changeModelMs, 2), fixed(p.detail!.changeEntriesMs, 2), fixed(p.detail!.changeWriteMs, 3), p.detail!.changeEntriesWritten ?? '']);
  return [
    '## 4. Programming time',
    '',
    'Full load of S Services × 10 endpoints into an empty node, then one change (one endpoint of one Service goes away). Baselines: only the tool\'s run is timed (`iptables-restore --noflush`, `nft -f`), not kube-proxy generating the text; the change is what kube-proxy sends for it (a partial iptables-restore, which still rewrites KUBE-SERVICES; an incremental nft transaction). bpfproxy: the full load is the agent\'s first sync (model, every entry, batch writes into real maps); the change is its partial sync (the incremental model updates the one Service; only its entries are computed and written).',
    '',
    table(['Services', 'tool', 'full load ms', 'lines', 'one change ms', 'one change is', 'full load × bpfproxy'], rows),
    '',
    'bpfproxy, where the time goes:',
    '',
    table(['Services', 'full: model ms', 'entries ms', 'writes ms', 'entries', 'change: model ms', 'entries ms', 'writes ms', 'entries'], detail),
    '',
    '![programming](programming.svg)',
    '',
  ].join('\n');
}

function maglevSection(r: BenchResults, charts: Record<string, string>): string {
  const pts = r.maglev ?? [];
  const ms = [...new Set(pts.map((p) => p.m))];
  const ns = [...new Set(pts.map((p) => p.backends))];
  charts['maglev.svg'] = barChart({
    title: 'Maglev table build time',
    yLabel: 'ms per build',
    categories: ns.map((n) => `${n} backends`),
    series: ms.map((m) => ({ name: `M = ${m}`, values: ns.map((n) => nullIfNaN(pts.find((p) => p.m === m && p.backends === n)?.buildMs ?? NaN)) })),
  });
  const rows = pts.map((p) => [String(p.m), String(p.backends), fixed(p.buildMs, 3), `${p.minSlots}–${p.maxSlots}`, `${(p.imbalance * 100).toFixed(2)}%`, `${(p.movedShare * 100).toFixed(2)}%`, `${(p.otherMovedShare * 100).toFixed(3)}%`]);
  return [
    '## 5. Maglev',
    '',
    'Imbalance = (max − min slots) / (M/N). "Moved" = share of all slots that changed owner when one backend went away (ideal: its own 1/N); "others moved" = share of the remaining backends\' slots that changed owner (ideal: 0).',
    '',
    table(['M', 'backends', 'build ms', 'slots per backend', 'imbalance', 'moved', 'others moved'], rows),
    '',
    '![maglev](maglev.svg)',
    '',
  ].join('\n');
}

function memorySection(r: BenchResults, charts: Record<string, string>): string {
  const pts = r.memory ?? [];
  charts['memory.svg'] = barChart({
    title: 'Memory at scale',
    subtitle: 'resident set of the syncing process; BPF map memory as the kernel charges it',
    yLabel: 'MiB',
    categories: pts.map((p) => `${kN(p.services)} × ${p.endpointsPerService}`),
    series: [
      { name: 'resident (MiB)', values: pts.map((p) => nullIfNaN(p.rssMiB)) },
      { name: 'peak resident (MiB)', values: pts.map((p) => nullIfNaN(p.peakRssMiB)) },
      { name: 'BPF maps (MiB)', values: pts.map((p) => nullIfNaN(p.mapMemlockMiB)) },
    ],
  });
  const rows = pts.map((p) => [`${kN(p.services)} × ${p.endpointsPerService}`, p.error ? `failed: ${p.error}` : fixed(p.rssMiB, 0), fixed(p.peakRssMiB, 0), fixed(p.mapMemlockMiB, 1), p.maps.map((m) => `${m.name} ${m.maxEntries}: ${(m.memlockBytes / 1048576).toFixed(1)}`).join(', ')]);
  return [
    '## 6. Memory',
    '',
    `Process: ${pts[0]?.process ?? 'n/a'}. Map memory is bytes_memlock from \`bpftool map show\` (what fdinfo reports), maps sized for the load with 25% room (conntrack at its default size).`,
    '',
    table(['Services', 'resident MiB', 'peak MiB', 'BPF maps MiB', 'maps (max entries: MiB)'], rows),
    '',
    '![memory](memory.svg)',
    '',
  ].join('\n');
}

export function renderReport(r: BenchResults): { markdown: string; charts: Record<string, string> } {
  const charts: Record<string, string> = {};
  const m = r.meta;
  const verdict = (met: boolean | null) => (met === null ? 'not measured' : met ? '**met**' : '**missed**');
  const parts = [
    `# bpfproxy bench — ${m.quick ? 'quick run' : 'full run'} on ${m.machine.host}, ${m.startedAt.slice(0, 10)}`,
    '',
    `Ratios taken side by side in one run (${(m.seconds / 60).toFixed(1)} minutes). Absolute figures are this machine's; the ratios are the point.`,
    '',
    table(
      ['machine', ''],
      [
        ['host', m.machine.host],
        ['CPU', `${m.machine.cpuModel} × ${m.machine.cpus}`],
        ['memory', `${m.machine.memoryMiB} MiB`],
        ['kernel', m.machine.kernel],
        ['Node.js', m.machine.node],
        ['iptables / nft', `${m.machine.iptables} / ${m.machine.nft}`],
        ['commit', m.machine.commit],
        ['pinning', `load generator on CPU ${m.pinning.generator}; datapath softirq (RPS) and sinks on CPU ${m.pinning.datapath}`],
        ['limits', m.pinning.limits.join('; ') || 'none'],
      ],
    ),
    '',
    '## Targets',
    '',
    table(['target', 'measured', 'verdict'], r.targets.map((t) => [t.target, t.measured.replaceAll('|', '/'), verdict(t.met)])),
    '',
    ...r.targets.filter((t) => t.note).map((t) => `- **${t.target}** — ${t.note}`),
    '',
  ];
  for (const [scenario, error] of Object.entries(r.failures)) parts.push(`> Scenario ${scenario} failed: ${error}`, '');
  if (r.connections?.length) parts.push(connectionSection(r, r.connections, charts));
  if (r.nodePort?.length) parts.push(nodePortSection(r, charts));
  if (r.testRun?.length) parts.push(testRunSection(r, charts));
  if (r.programming?.length) parts.push(programmingSection(r, charts));
  if (r.maglev?.length) parts.push(maglevSection(r, charts));
  if (r.memory?.length) parts.push(memorySection(r, charts));
  parts.push('## Reproducing', '', '```sh', `npm run bench${m.quick ? ' -- --quick' : ''}`, '```', '', 'Native tools, built by the harness:', '', ...m.tools.map((t) => `- \`${t}\``), '');
  return { markdown: parts.join('\n'), charts };
}

export function writeResults(dir: string, r: BenchResults): string[] {
  mkdirSync(dir, { recursive: true });
  const { markdown, charts } = renderReport(r);
  const files = ['results.json', 'report.md', ...Object.keys(charts)];
  writeFileSync(join(dir, 'results.json'), JSON.stringify(r, null, 2) + '\n');
  writeFileSync(join(dir, 'report.md'), markdown);
  for (const [name, svg] of Object.entries(charts)) writeFileSync(join(dir, name), svg);
  return files;
}
