/**
 * One bench run: build the native tools, run the chosen scenarios in order (a scenario that fails
 * is recorded and the run goes on), check the targets, write the files. Everything the traffic
 * scenarios build lives in lab namespaces of their own and is removed as each point ends.
 */
import { execFileSync } from 'node:child_process';
import { cpus as osCpus, hostname, release, totalmem } from 'node:os';
import { join } from 'node:path';

import { cpuPlan } from './cpus.js';
import { Progress } from './progress.js';
import { profile, SCENARIOS, type ScenarioId } from './profile.js';
import { writeResults } from './report.js';
import type { BenchResults, MachineInfo } from './results.js';
import { connectionsScenario } from './scenarios/connections.js';
import { maglevScenario } from './scenarios/maglev.js';
import { memoryScenario } from './scenarios/memory.js';
import { nodePortScenario } from './scenarios/nodeport.js';
import { programmingScenario } from './scenarios/programming.js';
import { testRunScenario } from './scenarios/testrun.js';
import { useSystemPath } from './system-path.js';
import { checkTargets } from './targets.js';
import { buildTools, repoRoot } from './tools.js';

export interface BenchOptions {
  quick: boolean;
  /** Output folder; default bench/results/<date>-<host>/ (quick runs: bench/results/tmp/…). */
  out?: string;
  only?: ScenarioId[];
  progress?: Progress;
}

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot }).toString().trim().split('\n')[0]!;
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): MachineInfo {
  const dirty = firstLine('git', ['status', '--porcelain', '--untracked-files=no']) !== '' ? ' (with local changes)' : '';
  return {
    host: hostname(),
    kernel: release(),
    cpuModel: osCpus()[0]?.model ?? 'unknown',
    cpus: osCpus().length,
    memoryMiB: Math.round(totalmem() / 1048576),
    node: process.version,
    iptables: firstLine('iptables-legacy', ['--version']).replace(/^iptables /, ''),
    nft: firstLine('nft', ['--version']),
    commit: firstLine('git', ['rev-parse', '--short', 'HEAD']) + dirty,
  };
}

export function defaultOutDir(quick: boolean, date = new Date()): string {
  const stamp = `${date.toISOString().slice(0, 10)}-${hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  return quick ? join(repoRoot, 'bench', 'results', 'tmp', `${stamp}-quick`) : join(repoRoot, 'bench', 'results', stamp);
}

export async function runBench(opts: BenchOptions): Promise<{ dir: string; files: string[]; results: BenchResults }> {
  if (process.getuid?.() !== 0) throw new Error('bpfproxy bench needs root (network namespaces, BPF, iptables inside them)');
  const dropped = useSystemPath();
  const progress = opts.progress ?? new Progress();
  if (dropped.length > 0) progress.note(`PATH: left out ${dropped.join(', ')} (system tools only)`);
  const started = new Date();
  const p = profile(opts.quick);
  const only = new Set(opts.only ?? SCENARIOS);
  const tools = await buildTools();
  const cpus = cpuPlan();
  for (const l of cpus.limits) progress.note(`note: ${l}`);

  const results: BenchResults = {
    meta: {
      startedAt: started.toISOString(),
      finishedAt: '',
      seconds: 0,
      quick: opts.quick,
      machine: machineInfo(),
      pinning: { generator: cpus.generator, datapath: cpus.datapath, limits: cpus.limits },
      tools: tools.commands,
      profile: { ...p },
    },
    failures: {},
    targets: [],
  };
  const attempt = async (id: ScenarioId, fn: () => Promise<void>) => {
    if (!only.has(id)) return;
    try {
      await fn();
    } catch (e) {
      results.failures[id] = (e as Error).message;
      progress.note(`scenario ${id} failed: ${(e as Error).message}`);
    }
  };
  // Cheap, CPU-only scenarios first: a broken lab or kernel then still leaves figures behind.
  await attempt('maglev', async () => void (results.maglev = maglevScenario(p, progress)));
  await attempt('testrun', async () => void (results.testRun = await testRunScenario(p, tools, progress)));
  await attempt('programming', async () => void (results.programming = await programmingScenario(p, progress)));
  await attempt('memory', async () => void (results.memory = await memoryScenario(p, progress)));
  await attempt('connections', async () => void (results.connections = await connectionsScenario(p, tools, cpus, progress)));
  await attempt('nodeport', async () => void (results.nodePort = await nodePortScenario(p, tools, cpus, progress)));

  const finished = new Date();
  results.meta.finishedAt = finished.toISOString();
  results.meta.seconds = (finished.getTime() - started.getTime()) / 1000;
  results.targets = checkTargets(results);
  const dir = opts.out ?? defaultOutDir(opts.quick, started);
  const files = writeResults(dir, results);
  progress.end();
  return { dir, files, results };
}
