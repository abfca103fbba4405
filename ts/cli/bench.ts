/**
 * `bpfproxy bench`: bpfproxy side by side with kube-proxy's iptables and nftables modes and with no
 * proxy at all, in lab namespaces (docs/benchmarks.md). Progress on stderr; the results (JSON,
 * Markdown, SVG) in a folder, whose path is the one line printed on stdout.
 */
import { Command, InvalidArgumentError } from 'commander';

import { undoAll } from '../bench/interrupt.js';
import { SCENARIOS, type ScenarioId } from '../bench/profile.js';
import { runBench } from '../bench/run.js';

function scenarioList(value: string): ScenarioId[] {
  const ids = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = ids.filter((id) => !(SCENARIOS as readonly string[]).includes(id));
  if (unknown.length > 0 || ids.length === 0) throw new InvalidArgumentError(`expected a comma-separated list of ${SCENARIOS.join(', ')}`);
  return ids as ScenarioId[];
}

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('benchmark bpfproxy against iptables, nftables and no proxy, side by side in lab namespaces (needs root)')
    .option('--quick', 'a smoke run under 3 minutes: small N, 1-second points; the same files')
    .option('--out <dir>', 'results folder (default bench/results/<date>-<host>/; quick runs under bench/results/tmp/)')
    .option('--only <scenarios>', `only these scenarios: ${SCENARIOS.join(',')}`, scenarioList)
    .action(async (o: { quick?: boolean; out?: string; only?: ScenarioId[] }) => {
      let interrupted = false;
      const onSignal = (sig: NodeJS.Signals) => {
        if (interrupted) return;
        interrupted = true;
        process.stderr.write(`\n${sig}: removing the bench's namespaces and mounts…\n`);
        void undoAll((l) => process.stderr.write(`  ${l}\n`)).finally(() => process.exit(130));
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const { dir, results } = await runBench({ quick: o.quick === true, ...(o.out ? { out: o.out } : {}), ...(o.only ? { only: o.only } : {}) });
      for (const t of results.targets) {
        const verdict = t.met === null ? 'not measured' : t.met ? 'met' : 'MISSED';
        process.stderr.write(`${verdict.padEnd(12)} ${t.target}: ${t.measured}\n`);
      }
      for (const [scenario, error] of Object.entries(results.failures)) process.stderr.write(`scenario ${scenario} failed: ${error}\n`);
      console.log(dir);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // A scenario that could not run at all makes the command fail; missed targets do not.
      if (Object.keys(results.failures).length > 0) process.exitCode = 1;
    });
}
