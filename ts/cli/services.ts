/**
 * `bpfproxy services`: what a node's datapath serves, read from its pinned maps (no agent needed):
 * frontends, their backends slot by slot, Maglev tables, counters and drops. A table for people,
 * `--json` for scripts.
 */
import { Command } from 'commander';

import { readConfigFile } from '../agent/config.js';
import { openPinnedMaps, type PinnedMaps } from '../dataplane/pinned-maps.js';
import { serviceTable, type ServicesView } from '../explain/service-table.js';

export const DEFAULT_BPFFS_DIR = '/sys/fs/bpf/bpfproxy';

/** Columns padded to their widest cell; numbers right-aligned. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  return cells
    .map((r) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

/** The bpffs directory: the flag, else the config file's, else the default. */
export function bpffsDirFrom(opts: { bpffsDir?: string; config?: string }): string {
  if (opts.bpffsDir) return opts.bpffsDir;
  if (opts.config) return readConfigFile(opts.config).bpffsDir ?? DEFAULT_BPFFS_DIR;
  return DEFAULT_BPFFS_DIR;
}

/**
 * Runs a read-only command over a node's pinned maps (closed after): a node without a datapath is
 * the command's error (exit 1), said once for every command that reads pins.
 */
export async function withPinnedMaps(command: string, opts: { bpffsDir?: string; config?: string }, use: (maps: PinnedMaps) => void | Promise<void>): Promise<void> {
  let maps: PinnedMaps;
  try {
    maps = openPinnedMaps(bpffsDirFrom(opts));
  } catch (e) {
    console.error(`bpfproxy ${command}: ${(e as Error).message}`);
    process.exitCode = 1;
    return;
  }
  try {
    await use(maps);
  } finally {
    maps.close();
  }
}

const bytes = (n: number) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : n < 1 << 30 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / (1 << 30)).toFixed(1)} GiB`);

export function formatServices(v: ServicesView): string {
  const out: string[] = [];
  const counters = new Map(v.counters.map((c) => [c.serviceId, c]));
  const policy = (flags: string[]) =>
    flags
      .map((f) => ({ ETP_LOCAL: 'etp=Local', ITP_LOCAL: 'itp=Local', AFFINITY: 'affinity', SOURCE_RANGES: 'source-ranges', REJECT: 'reject', MAGLEV: 'maglev', TERM_FALLBACK: 'terminating-fallback', MASQUERADE: 'masquerade-all', DETECT_LOCAL: 'detect-local' })[f] ?? f)
      .join(',') || '-';
  out.push(
    table(
      ['FRONTEND', 'KIND', 'ID', 'POLICY', 'AFFINITY', 'BACKENDS', 'LOCAL', 'PACKETS', 'BYTES', 'NEW FLOWS'],
      v.frontends.map((f) => {
        const c = counters.get(f.serviceId);
        return [
          f.frontend,
          f.kind,
          f.serviceId,
          policy(f.flags),
          f.affinitySeconds === null ? '-' : `${f.affinitySeconds}s`,
          f.backends.length,
          f.localBackends.length,
          c?.packets ?? 0,
          bytes(c?.bytes ?? 0),
          c?.newFlows ?? 0,
        ];
      }),
    ),
  );
  if (v.frontends.some((f) => f.kind === 'NodePort')) out.push(`\nNodePorts answer on: ${v.nodeAddresses.join(', ') || '(no node address)'}`);

  const rows = v.frontends.flatMap((f) =>
    [...f.backends.map((b) => ['all', b] as const), ...f.localBackends.map((b) => ['local', b] as const)].map(([scope, b]) => [
      f.frontend,
      scope,
      b.slot,
      b.id,
      b.address ? `${b.address}:${b.port}/${b.protocol}` : '-',
      b.state.join(',') || 'ready',
    ]),
  );
  if (rows.length > 0) out.push('\nBACKENDS\n' + table(['FRONTEND', 'SET', 'SLOT', 'ID', 'ENDPOINT', 'STATE'], rows));

  if (v.maglev.length > 0) {
    out.push(
      '\nMAGLEV\n' +
        table(
          ['ID', 'M', 'BACKEND', 'ENDPOINT', 'ENTRIES', 'SHARE'],
          v.maglev.flatMap((t) => t.shares.map((s) => [t.serviceId, t.m, s.backendId, s.endpoint, s.entries, `${(s.share * 100).toFixed(1)}%`])),
        ),
    );
  }
  const drops = v.drops.filter((d) => d.packets > 0);
  out.push(drops.length > 0 ? '\nDROPS\n' + table(['REASON', 'PACKETS', 'BYTES'], drops.map((d) => [d.reason, d.packets, bytes(d.bytes)])) : '\nno drops');
  return out.join('\n');
}

export function registerServicesCommand(program: Command): void {
  program
    .command('services')
    .description('show the services a node serves, read from its pinned maps: frontends, backends, Maglev tables, counters')
    .option('--bpffs-dir <dir>', `the agent's bpffs directory (default ${DEFAULT_BPFFS_DIR})`)
    .option('--config <file>', 'take bpffsDir from the agent\'s configuration file')
    .option('--json', 'print JSON')
    .action((opts: { bpffsDir?: string; config?: string; json?: boolean }) =>
      withPinnedMaps('services', opts, (maps) => {
        const view = serviceTable(maps);
        console.log(opts.json ? JSON.stringify(view, null, 2) : formatServices(view));
      }),
    );
}
