/**
 * Scenario 6: memory at 10k and 30k Services × k endpoints — the resident set of the process that
 * holds the cluster and programs the maps (VmRSS and VmHWM from /proc), and the BPF maps' memory
 * as the kernel charges it (bytes_memlock from `bpftool map show`, the same figure as the maps'
 * fdinfo memlock).
 *
 * The process is the real agent (`bpfproxy agent`) in a scratch namespace with a veth uplink, fed a
 * directory of YAML (its file source). It runs compiled (tsc into a scratch folder), as the
 * container image runs it: through tsx (bin/bpfproxy.js in a checkout) the same agent carries
 * ~75 MiB more, tsx's loader thread and its transpiled sources.
 *
 * Resident memory is read when it logs "agent ready" (first sync done) and then once a second
 * until it settles: the first full sync leaves hundreds of MiB of garbage (the entries of the whole
 * cluster, parsed documents) that V8's memory reducer collects and returns within seconds of the
 * process going idle — nothing forces a GC. The point's rssMiB is the settled figure, peakRssMiB
 * the high-water mark (VmHWM, which includes the sync), and `process` says what it was at ready.
 * If the agent cannot run, the stand-in ts/bench/memory-child.ts — the agent's sync path (objects →
 * model → entries → Reconciler) in a process of its own — is measured instead, and the point says
 * why.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { mountPrivateBpffs } from '../../dataplane/bpffs.js';
import { UndoStack } from '../../util/undo-stack.js';
import { generateScale } from '../../baselines/index.js';
import { Netns, runId } from '../../lab/net/netns.js';
import { run } from '../../util/exec.js';
import type { Progress } from '../progress.js';
import type { Profile } from '../profile.js';
import type { MemoryPoint } from '../results.js';
import { repoRoot } from '../tools.js';
import { whileRunning } from '../interrupt.js';

const MiB = 1024 * 1024;
const CHILD = 'stand-in: model → entries → reconciler (ts/bench/memory-child.ts)';
/** Resident memory has settled when it fell by less than this over the last SETTLE_WINDOW samples. */
const SETTLE_FRACTION = 0.01;
const SETTLE_WINDOW = 10;
/** Samples are 1 s apart; at most this many after "agent ready". */
const SETTLE_MAX_SAMPLES = 60;

/** How to start the agent: compiled into a scratch package (as the image runs it), or through tsx. */
interface AgentCommand {
  args: string[];
  env: NodeJS.ProcessEnv;
  how: string;
}

/** Compiles ts/ into `dir` (a package of its own: package.json, node_modules linked, the addon by env). */
async function compiledAgent(dir: string): Promise<AgentCommand> {
  const addon = [join(repoRoot, 'build/native/Release/bpfproxy.node'), join(repoRoot, 'build/Release/bpfproxy.node')].find((p) => existsSync(p));
  if (!addon) throw new Error('the native addon is not built');
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  await run(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], { timeoutMs: 300_000 });
  return { args: [join(dir, 'dist/ts/cli/main.js')], env: { ...process.env, BPFPROXY_ADDON: addon }, how: 'compiled' };
}

const THROUGH_TSX: AgentCommand = { args: [join(repoRoot, 'bin/bpfproxy.js')], env: process.env, how: 'through tsx' };

/** VmRSS once a second until it stops falling (see SETTLE_*); the last sample. */
async function settledRssKiB(pid: number): Promise<{ kib: number; seconds: number }> {
  const samples: number[] = [];
  for (let i = 0; i < SETTLE_MAX_SAMPLES; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    samples.push(statusKiB(pid, 'VmRSS'));
    const window = samples.slice(-SETTLE_WINDOW);
    if (window.length === SETTLE_WINDOW && window[0]! - Math.min(...window) <= window[0]! * SETTLE_FRACTION) break;
  }
  return { kib: samples[samples.length - 1]!, seconds: samples.length };
}

function pow2AtLeast(n: number): number {
  let p = 1024;
  while (p < n) p *= 2;
  return p;
}

/** Waits for a line of `child`'s stdout (or stderr) that `matches`; rejects on exit or after `timeoutMs`. */
function waitForLine(child: ReturnType<typeof spawn>, matches: (line: string) => boolean, timeoutMs: number, stderr: () => string, stream: 'stdout' | 'stderr' = 'stdout'): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line within ${timeoutMs / 1000} s: ${stderr().trim().slice(-500)}`)), timeoutMs);
    const lines = createInterface({ input: child[stream]! });
    lines.on('line', (l) => {
      if (!matches(l)) return;
      clearTimeout(timer);
      lines.close();
      resolve(l);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}): ${stderr().trim().slice(0, 500)}`));
    });
  });
}

async function stopChild(child: ReturnType<typeof spawn>, how: () => void): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  how();
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** The real agent at this scale, in a scratch namespace. */
async function measureAgent(services: number, endpoints: number, timeoutMs: number, command: AgentCommand): Promise<MemoryPoint> {
  const cleanup = new UndoStack();
  cleanup.add('interrupt registration', whileRunning('agent, its namespace and bpffs', () => cleanup.run()));
  try {
    const id = runId();
    const ns = await Netns.create(`bpb-${id}-agent`, cleanup);
    await ns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
    await ns.ip('addr', 'add', '198.18.0.11/24', 'dev', 'eth0');
    await ns.ip('link', 'set', 'eth0', 'up');
    await ns.ip('link', 'set', 'eth0p', 'up');
    const pinDir = await mountPrivateBpffs(mkdtempSync(join(tmpdir(), `bpfproxy-bench-agent-${id}-`)), cleanup);
    const work = mkdtempSync(join(tmpdir(), `bpfproxy-bench-agent-src-${id}-`));
    cleanup.add('agent files', () => rmSync(work, { recursive: true, force: true }));
    const sourceDir = join(work, 'cluster');
    mkdirSync(sourceDir);
    const input = generateScale(services, endpoints);
    // JSON documents are YAML documents; one file, one document per object.
    const docs = [...input.services, ...input.endpointSlices].map((o) => JSON.stringify(o)).join('\n---\n');
    writeFileSync(join(sourceDir, 'cluster.yaml'), docs + '\n');
    const config = join(work, 'config.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        clusterCIDR: input.config.clusterCIDR,
        mapSizes: { services: pow2AtLeast(2.5 * services * (1 + endpoints)), backends: pow2AtLeast(1.25 * services * endpoints) },
      }) + '\n',
    );
    const child = spawn(
      'ip',
      ['netns', 'exec', ns.name, process.execPath, ...command.args, 'agent', '--config', config, '--source-dir', sourceDir,
        '--bpffs-dir', pinDir, '--hostname-override', 'node-1', '--uplink-interface', 'eth0', '--xdp-mode', 'off',
        '--healthz-bind-address', '', '--metrics-bind-address', ''],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: command.env },
    );
    cleanup.add('agent process', () => stopChild(child, () => child.kill('SIGTERM')));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    // The agent logs JSON lines on stderr.
    await waitForLine(child, (l) => l.includes('agent ready'), timeoutMs, () => stderr, 'stderr');
    const atReady = statusKiB(child.pid!, 'VmRSS');
    const settled = await settledRssKiB(child.pid!);
    const peak = statusKiB(child.pid!, 'VmHWM');
    const maps = await pinnedMaps(pinDir);
    return {
      services,
      endpointsPerService: endpoints,
      process: `bpfproxy agent (${command.how}; file source, xdp off): resident ${settled.seconds} s after "agent ready", ${(atReady / 1024).toFixed(0)} MiB at ready`,
      rssMiB: settled.kib / 1024,
      peakRssMiB: peak / 1024,
      mapMemlockMiB: maps.reduce((s, m) => s + m.memlockBytes, 0) / MiB,
      maps,
    };
  } finally {
    await cleanup.run();
  }
}

function statusKiB(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** bytes_memlock of every map pinned directly under `dir`. */
async function pinnedMaps(dir: string): Promise<MemoryPoint['maps']> {
  const maps: MemoryPoint['maps'] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    // bpffs' own iterator files (maps.debug, progs.debug) and links/ are not maps.
    if (statSync(path).isDirectory() || name.endsWith('.debug')) continue;
    const info = JSON.parse(await run('bpftool', ['-j', 'map', 'show', 'pinned', path])) as { name: string; max_entries: number; bytes_memlock: number };
    maps.push({ name: info.name, maxEntries: info.max_entries, memlockBytes: info.bytes_memlock });
  }
  return maps;
}

async function measure(services: number, endpoints: number, timeoutMs: number): Promise<MemoryPoint> {
  const cleanup = new UndoStack();
  cleanup.add('interrupt registration', whileRunning('memory child and its bpffs', () => cleanup.run()));
  try {
    const pinDir = await mountPrivateBpffs(mkdtempSync(join(tmpdir(), `bpfproxy-bench-mem-${runId()}-`)), cleanup);
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'ts/bench/memory-child.ts'), String(services), String(endpoints), pinDir], {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    cleanup.add('memory child', () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const line = await waitForLine(child, () => true, timeoutMs, () => stderr);
    const ready = JSON.parse(line) as { failures: number };
    if (ready.failures > 0) throw new Error(`the memory child failed ${ready.failures} map writes`);
    const rss = statusKiB(child.pid!, 'VmRSS');
    const peak = statusKiB(child.pid!, 'VmHWM');
    const maps = await pinnedMaps(pinDir);
    child.stdin.end();
    await new Promise((r) => child.once('exit', r));
    return {
      services,
      endpointsPerService: endpoints,
      process: CHILD,
      rssMiB: rss / 1024,
      peakRssMiB: peak / 1024,
      mapMemlockMiB: maps.reduce((s, m) => s + m.memlockBytes, 0) / MiB,
      maps,
    };
  } finally {
    await cleanup.run();
  }
}

export async function memoryScenario(p: Profile, progress: Progress): Promise<MemoryPoint[]> {
  const points: MemoryPoint[] = [];
  progress.begin('6 memory', p.memoryServices.length);
  const build = mkdtempSync(join(tmpdir(), 'bpfproxy-bench-agent-build-'));
  let command = THROUGH_TSX;
  try {
    command = await compiledAgent(build);
  } catch (e) {
    progress.note(`cannot compile the agent (${(e as Error).message.slice(0, 300)}); running it through tsx`);
  }
  try {
    await measureAll(p, progress, points, command);
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
  return points;
}

async function measureAll(p: Profile, progress: Progress, points: MemoryPoint[], command: AgentCommand): Promise<void> {
  for (const services of p.memoryServices) {
    progress.step(`${services} × ${p.memoryEndpoints}`);
    try {
      let m: MemoryPoint;
      try {
        m = await measureAgent(services, p.memoryEndpoints, p.applyBudgetMs * 3, command);
      } catch (e) {
        progress.note(`the agent could not be measured (${(e as Error).message.slice(0, 300)}); measuring the stand-in`);
        m = { ...(await measure(services, p.memoryEndpoints, p.applyBudgetMs * 2)), note: `agent: ${(e as Error).message.slice(0, 300)}` };
      }
      points.push(m);
      progress.stepDone(`RSS ${m.rssMiB.toFixed(0)} MiB (peak ${m.peakRssMiB.toFixed(0)}), maps ${m.mapMemlockMiB.toFixed(1)} MiB`);
    } catch (e) {
      const error = (e as Error).message;
      points.push({ services, endpointsPerService: p.memoryEndpoints, process: CHILD, rssMiB: NaN, peakRssMiB: NaN, mapMemlockMiB: NaN, maps: [], error });
      progress.stepDone(`FAILED: ${error}`);
    }
  }
}
