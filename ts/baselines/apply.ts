/**
 * Loading the baselines into a network namespace the caller owns (never the root namespace: every
 * command runs under `ip netns exec`). Timings cover the one program kube-proxy runs per sync
 * (`iptables-restore` or `nft -f`), spawned the same way each time, so the figures compare.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';

import { CommandError, run } from '../util/exec.js';
import { IPTABLES_JUMPS } from './iptables.js';
import { NFT_TABLE } from './nftables.js';

/** iptables-legacy-restore (x_tables) or iptables-nft-restore (nf_tables behind the iptables API). */
export type IptablesVariant = 'legacy' | 'nft';
export const IPTABLES_VARIANTS: readonly IptablesVariant[] = ['legacy', 'nft'];

/** Large syncs take seconds (tens at 30k Services); a stuck tool must still end. */
const APPLY_TIMEOUT_MS = 15 * 60_000;
const SMALL_TIMEOUT_MS = 60_000;

/**
 * The absolute path of a system tool. PATH lookups are not enough: under npm/npx,
 * node_modules/.bin comes first and holds an unrelated `nft` (@vercel/nft).
 */
export function systemTool(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== '' && !d.includes('node_modules')), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  throw new Error(`${name} is not installed (looked in ${dirs.join(', ')}); see hack/system-packages.txt`);
}

function inNetns(netns: string, cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  if (!/^[A-Za-z0-9_.-]+$/.test(netns)) throw new Error(`'${netns}' is not a network namespace name`);
  return run(systemTool('ip'), ['netns', 'exec', netns, systemTool(cmd), ...args], { timeoutMs: opts.timeoutMs ?? SMALL_TIMEOUT_MS });
}

/**
 * Runs `cmd args… FILE` with the text in a temporary file: both tools read a file argument, the
 * timing then covers the tool alone (not Node's pipe), and a tool that fails early cannot break a
 * half-written pipe.
 */
async function withFile<T>(text: string, use: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-baseline-'));
  try {
    const file = join(dir, 'rules');
    writeFileSync(file, text);
    return await use(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function timed(netns: string, cmd: string, args: string[], text: string, what: string, timeoutMs = APPLY_TIMEOUT_MS): Promise<{ ms: number }> {
  return withFile(text, async (file) => {
    const start = process.hrtime.bigint();
    try {
      // `ip netns exec` execs the tool, so the timeout's SIGTERM reaches the tool itself.
      await inNetns(netns, cmd, [...args, file], { timeoutMs });
    } catch (error) {
      // run() reports a kill without its cause; a killed tool that used up its time timed out.
      const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
      if (error instanceof CommandError && error.exitCode === null && elapsedMs >= timeoutMs) {
        throw new Error(`${what} timed out after ${Math.round(elapsedMs / 1000)} s and was stopped`, { cause: error });
      }
      throw explain(error, what);
    }
    return { ms: Number(process.hrtime.bigint() - start) / 1e6 };
  });
}

/**
 * kube-proxy's full sync in iptables mode: the jump rules from the built-in chains are ensured
 * first (EnsureChain + `-C`/`-I`, untimed: kube-proxy skips them on partial syncs), then the text
 * is loaded with `iptables-restore -w 5 --noflush --counters` (RestoreAll with NoFlushTables and
 * RestoreCounters), which alone is timed.
 */
export async function applyIptables(netns: string, text: string, variant: IptablesVariant, opts: ApplyOptions = {}): Promise<{ ms: number }> {
  await ensureIptablesJumps(netns, variant);
  const args = ['-w', '5', '--noflush', '--counters'];
  return timed(netns, `iptables-${variant}-restore`, args, text, `loading kube-proxy's iptables rules (${variant}) into namespace ${netns}`, opts.timeoutMs);
}

export interface ApplyOptions {
  /** Kill the tool after this long (default 15 min); the error says it timed out. */
  timeoutMs?: number;
}

/** kube-proxy's nftables sync: one `nft -f` transaction, timed. */
export async function applyNftables(netns: string, text: string, opts: ApplyOptions = {}): Promise<{ ms: number }> {
  return timed(netns, 'nft', ['-f'], text, `loading kube-proxy's nftables rules into namespace ${netns}`, opts.timeoutMs);
}

/** Syntax and kernel check without changing anything (`iptables-restore --test`). */
export async function checkIptables(netns: string, text: string, variant: IptablesVariant): Promise<void> {
  await timed(netns, `iptables-${variant}-restore`, ['-w', '5', '--test', '--noflush'], text, `checking kube-proxy's iptables rules (${variant}) in namespace ${netns}`);
}

/** `nft -c -f`: parsed and checked against the kernel, not committed. */
export async function checkNftables(netns: string, text: string): Promise<void> {
  await timed(netns, 'nft', ['-c', '-f'], text, `checking kube-proxy's nftables rules in namespace ${netns}`);
}

async function ensureIptablesJumps(netns: string, variant: IptablesVariant): Promise<void> {
  // One shell for all ~30 calls: each `iptables` spawn costs a few ms, and -C must precede -I.
  const ipt = `${systemTool(`iptables-${variant}`)} -w 5`;
  const script = IPTABLES_JUMPS.map(
    (j) =>
      `${ipt} -t ${j.table} -N ${j.target} 2>/dev/null; ` +
      `${ipt} -t ${j.table} -C ${j.chain} ${j.rule} 2>/dev/null || ${ipt} -t ${j.table} -I ${j.chain} ${j.rule} || exit 1`,
  ).join('\n');
  try {
    await inNetns(netns, 'sh', ['-c', script], { timeoutMs: APPLY_TIMEOUT_MS });
  } catch (error) {
    throw explain(error, `installing kube-proxy's iptables jump rules (${variant}) in namespace ${netns}`);
  }
}

/**
 * Removes what the baselines installed in the namespace: the `ip kube-proxy` nft table, and for
 * both iptables variants every KUBE-* chain and every jump to one (as kube-proxy's
 * CleanupLeftovers). iptables-nft's own tables are deleted too once nothing else is left in them,
 * so that no empty hook stays behind to tax later measurements (x_tables tables cannot be
 * unregistered; they stay empty).
 */
export async function resetBaselines(netns: string): Promise<void> {
  try {
    await inNetns(netns, 'nft', ['delete', 'table', 'ip', NFT_TABLE]);
  } catch (error) {
    if (!/No such file or directory/i.test((error as Error).message)) throw explain(error, `deleting nft table ip ${NFT_TABLE} in namespace ${netns}`);
  }
  for (const variant of IPTABLES_VARIANTS) await resetIptables(netns, variant);
}

interface SavedTable {
  name: string;
  chains: string[];
  /** Rules of the built-in chains only. */
  rules: string[];
  /** All rules of the table. */
  ruleCount: number;
}

/**
 * The tables, chains and built-in-chain rules of `iptables-<variant>-save`, read as a stream: at
 * 30k Services the dump is hundreds of MB, and only chain names and jumps are kept. -save lists
 * only the tables that exist: it never creates one.
 */
function saveIptables(netns: string, variant: IptablesVariant): Promise<SavedTable[]> {
  return new Promise((resolve, reject) => {
    const command = [systemTool('ip'), 'netns', 'exec', netns, systemTool(`iptables-${variant}-save`)];
    const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), APPLY_TIMEOUT_MS);
    const tables: SavedTable[] = [];
    let rulesTotal = 0;
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString();
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('*')) tables.push({ name: line.slice(1), chains: [], rules: [], ruleCount: 0 });
      else if (line.startsWith(':')) tables.at(-1)?.chains.push(line.slice(1).split(' ')[0]!);
      else if (line.startsWith('-A ')) {
        const table = tables.at(-1);
        if (table === undefined) return;
        table.ruleCount += 1;
        rulesTotal += 1;
        if (BUILT_IN.has(line.split(' ', 2)[1]!)) table.rules.push(line);
      }
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(tables);
      else reject(new CommandError(command, code, stderr || `killed by ${signal ?? 'a signal'} after ${rulesTotal} rules`));
    });
  });
}

const BUILT_IN = new Set(['INPUT', 'FORWARD', 'OUTPUT', 'PREROUTING', 'POSTROUTING']);

async function resetIptables(netns: string, variant: IptablesVariant): Promise<void> {
  const tables = await saveIptables(netns, variant);
  const lines: string[] = [];
  for (const table of tables) {
    const ours = table.chains.filter((chain) => chain.startsWith('KUBE-'));
    const jumps = table.rules.filter((rule) => {
      const [, chain] = rule.split(' ');
      return BUILT_IN.has(chain!) && / -j KUBE-[A-Z0-9-]+$/.test(rule);
    });
    if (ours.length === 0 && jumps.length === 0) continue;
    // Loops, not spreads: a 30k-Service table has ~350k chains.
    lines.push(`*${table.name}`);
    for (const chain of ours) lines.push(`:${chain} - [0:0]`);
    for (const rule of jumps) lines.push(`-D${rule.slice(2)}`);
    for (const chain of ours) lines.push(`-X ${chain}`);
    lines.push('COMMIT');
  }
  if (lines.length > 0) {
    await timed(netns, `iptables-${variant}-restore`, ['-w', '5', '--noflush'], lines.join('\n') + '\n', `removing kube-proxy's iptables rules (${variant}) from namespace ${netns}`);
  }
  if (variant === 'nft') {
    for (const table of await saveIptables(netns, variant)) {
      if (table.ruleCount === 0 && table.chains.every((chain) => BUILT_IN.has(chain))) {
        await inNetns(netns, 'nft', ['delete', 'table', 'ip', table.name]);
      }
    }
  }
}

function explain(error: unknown, what: string): Error {
  if (error instanceof CommandError) {
    // The tools name the failing line; keep the first lines of their complaint.
    const detail = error.stderr.trim().split('\n').slice(0, 5).join('\n');
    return new Error(`${what} failed (exit ${error.exitCode ?? '?'}): ${detail || 'no output'}`, { cause: error });
  }
  return new Error(`${what} failed: ${(error as Error).message}`, { cause: error });
}
