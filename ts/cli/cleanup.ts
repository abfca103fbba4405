/**
 * `bpfproxy cleanup`: kube-proxy --cleanup's counterpart. Removes what the agent installed on this
 * node (this network namespace): its links (tcx, XDP) on the uplink, pod interfaces and service
 * device, its pinned maps, the pin directories, and the service device when it is a bare sink.
 * Which objects: the agent's own configuration (`--config`, flags with the agent's names override
 * it), so `bpfproxy cleanup --config same.yaml` targets what `bpfproxy agent --config same.yaml`
 * made. Refuses (exit 1) while an agent runs, unless --force; exit 2 on a bad configuration.
 */
import { hostname } from 'node:os';

import type { Command } from 'commander';

import { ConfigError, readConfigFile, resolveAgentConfig } from '../agent/config.js';
import { AgentRunningError, cleanupNode, type CleanupReport, type CleanupTarget } from '../cleanup/remove.js';

interface CleanupFlags {
  config?: string;
  bpffsDir?: string;
  serviceInterface?: string;
  metricsBindAddress?: string;
  keepServiceDevice?: boolean;
  force?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

/** The agent's resolution (file, then flags, then defaults), so both name the same objects. */
export function cleanupTargetFrom(flags: CleanupFlags): CleanupTarget {
  const file = flags.config ? readConfigFile(flags.config) : {};
  const c = resolveAgentConfig(
    file,
    { bpffsDir: flags.bpffsDir, serviceInterface: flags.serviceInterface, metricsBindAddress: flags.metricsBindAddress } as Parameters<typeof resolveAgentConfig>[1],
    hostname(),
  );
  return { pinDir: c.bpffsDir, serviceInterface: c.serviceInterface, metricsBindAddress: c.metricsBindAddress };
}

export function formatCleanupReport(r: CleanupReport): string {
  const out: string[] = [];
  const verb = r.dryRun ? 'would remove' : 'removed';
  if (r.forced) out.push(`forced although an agent runs: ${r.agent.reasons.join('; ')}`);
  for (const x of r.removed) out.push(`${verb} ${x.kind} ${x.name}: ${x.detail}`);
  for (const k of r.kept) out.push(`kept ${k.name}: ${k.reason}`);
  for (const w of r.warnings) out.push(`warning: ${w}`);
  out.push(
    r.removed.length === 0
      ? `nothing of bpfproxy's found for ${r.pinDir}: nothing to remove`
      : `${r.dryRun ? 'dry run: would remove' : 'removed'} ${r.removed.length} object(s) of bpfproxy's (${r.pinDir})`,
  );
  return out.join('\n');
}

export function registerCleanupCommand(program: Command): void {
  program
    .command('cleanup')
    .description('remove everything bpfproxy installed on this node (programs, links, pins, service device), like kube-proxy --cleanup')
    .option('--config <file>', 'the agent\'s configuration file: clean up what that agent made')
    .option('--bpffs-dir <dir>', 'bpffs directory of the agent\'s pins (default /sys/fs/bpf/bpfproxy)')
    .option('--service-interface <ifname>', 'the agent\'s service device (default: the configuration\'s, else none)')
    .option('--metrics-bind-address <host:port>', 'the agent\'s metrics address, asked whether an agent runs (default 127.0.0.1:10249)')
    .option('--keep-service-device', 'detach from the service device but do not delete it')
    .option('--force', 'clean up even while an agent runs')
    .option('--dry-run', 'say what would be removed; change nothing')
    .option('--json', 'print the report as JSON')
    .action(async (flags: CleanupFlags) => {
      let target: CleanupTarget;
      try {
        target = cleanupTargetFrom(flags);
      } catch (e) {
        console.error(`bpfproxy cleanup: ${e instanceof ConfigError ? 'bad configuration: ' : ''}${(e as Error).message}`);
        process.exitCode = 2;
        return;
      }
      try {
        const report = await cleanupNode(target, {
          ...(flags.dryRun && { dryRun: true }),
          ...(flags.force && { force: true }),
          ...(flags.keepServiceDevice && { keepServiceDevice: true }),
        });
        console.log(flags.json ? JSON.stringify(report, null, 2) : formatCleanupReport(report));
      } catch (e) {
        if (flags.json) {
          const refused = e instanceof AgentRunningError;
          console.log(JSON.stringify({ pinDir: target.pinDir, error: (e as Error).message, ...(refused && { refused: true, agent: e.evidence }) }, null, 2));
        }
        console.error(`bpfproxy cleanup: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
