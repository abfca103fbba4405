// Targets are judged from the figures, and a run writes its JSON, Markdown and charts.
import test from 'ava';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Progress } from '../../ts/bench/progress.js';
import { profile } from '../../ts/bench/profile.js';
import { writeResults } from '../../ts/bench/report.js';
import type { BenchResults, ConnectionPoint, PathName } from '../../ts/bench/results.js';
import { maglevScenario } from '../../ts/bench/scenarios/maglev.js';
import { checkTargets } from '../../ts/bench/targets.js';

const quiet = new Progress({ isTTY: false, write: () => {} });

function run(connections: ConnectionPoint[] = []): BenchResults {
  return {
    meta: {
      startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:01:00.000Z', seconds: 60, quick: true,
      machine: { host: 'h', kernel: 'k', cpuModel: 'c', cpus: 2, memoryMiB: 1, node: 'v', iptables: 'i', nft: 'n', commit: 'x' },
      pinning: { generator: 0, datapath: 1, limits: [] }, tools: [], profile: {},
    },
    connections, failures: {}, targets: [],
  };
}

const point = (path: PathName, services: number, rate: number): ConnectionPoint => ({
  path, services,
  podIp: { mode: 'connect', seconds: 1, rate: path === 'direct' ? rate : rate * 2 },
  ...(path === 'direct' ? {} : { clusterIp: { mode: 'connect' as const, seconds: 1, rate } }),
});

test('connection targets: ratios to the direct path and nftables at each N, met only when every N is', (t) => {
  const pts = [1, 1000].flatMap((n) => [point('direct', n, 1000), point('iptables-legacy', n, 500), point('iptables-nft', n, 380), point('nftables', n, 700), point('bpfproxy', n, n === 1 ? 950 : 850)]);
  const targets = checkTargets(run(pts));
  const direct = targets.find((x) => x.id === 'conn-direct')!;
  t.is(direct.met, false, 'N=1k is 0.85× direct');
  t.regex(direct.measured, /N=1: 0\.95×, N=1k: 0\.85×/);
  t.truthy(direct.note, 'a missed target says why');
  const nft = targets.find((x) => x.id === 'conn-nftables')!;
  t.is(nft.met, true);
  t.regex(targets.find((x) => x.id === 'conn-iptables')!.measured, /N=1: 1\.90× legacy, 2\.50× nft/);
  t.is(targets.find((x) => x.id === 'agent-rss')!.met, null, 'not measured is neither met nor missed');
});

test('a run with a real scenario writes results.json, report.md and its chart', (t) => {
  const p = { ...profile(true), maglevSizes: [251], maglevBackends: [2, 10], maglevRuns: 1 };
  const results = run();
  results.maglev = maglevScenario(p, quiet);
  results.targets = checkTargets(results);
  const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files = writeResults(dir, results);
  t.deepEqual(readdirSync(dir).sort(), [...files].sort());
  t.true(files.includes('maglev.svg'));
  const parsed = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as BenchResults;
  t.is(parsed.maglev!.length, 2);
  for (const m of parsed.maglev!) {
    t.true(m.maxSlots - m.minSlots <= 1, 'equal weights: ⌊M/N⌋ or ⌈M/N⌉ slots each');
    t.true(m.otherMovedShare < m.movedShare);
  }
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  t.regex(md, /\| 251 \| 10 \| [\d.]+ \| 2[45]–2[56] \|/);
  t.regex(md, /!\[maglev\]\(maglev\.svg\)/);
  t.notRegex(md, /undefined|NaN/);
});
