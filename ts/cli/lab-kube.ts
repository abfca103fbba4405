/**
 * The CLI side of `--api kube` (ts/lab/kube-api/kube-mode.ts does the work):
 *
 * - `lab up --api kube`: the lab is built by the CLI, then a detached supervisor process
 *   (`bpfproxy lab kube-supervisor`, hidden) starts and owns the control plane, the lab kubelet, the
 *   cloud controller, the API relays and the agents — a kubelet must outlive the command that
 *   started it. The CLI returns once the supervisor says `ready`; its log is
 *   /run/bpfproxy/labs/<lab>/kube-supervisor.log. With --foreground all of it runs in the CLI.
 * - `lab down` stops the supervisor (SIGTERM; it stops everything it owns), cleans up after it if it
 *   died, then removes the lab as usual.
 * - `lab kubectl -- ARGS…`: kubectl against the lab's API server as its admin.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Command } from 'commander';
import { Option } from 'commander';

import { resolveAssets } from '../kube/binaries.js';
import { DEFAULT_LAB_NAME } from '../lab/lab-state.js';
import { KubeLab, readKubeLabState, stopKubeLab } from '../lab/kube-api/kube-mode.js';
import { Lab } from '../lab/topology.js';

const SUPERVISOR_READY_TIMEOUT_MS = 5 * 60_000;

export type ClusterApiFlag = 'file' | 'kube';

export function supervisorLog(lab: Lab): string {
  return join(lab.status().runDir, 'kube-supervisor.log');
}

/**
 * Brings a lab's Kubernetes up. In the foreground: here, returning the KubeLab to stop before the
 * lab goes down. Otherwise: in a detached supervisor, returning once it is ready.
 */
export async function startKubeMode(lab: Lab, opts: { foreground: boolean; log?: (line: string) => void }): Promise<KubeLab | undefined> {
  // A cold build of the binaries takes minutes: do it here, where its progress can be seen.
  const assetsDir = await resolveAssets(opts.log ?? ((l) => process.stderr.write(`${l}\n`)));
  if (opts.foreground) return KubeLab.start(lab, { assetsDir });

  const log = supervisorLog(lab);
  const logFd = openSync(log, 'a');
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'lab', 'kube-supervisor', '--name', lab.name, '--assets', assetsDir], {
    detached: true,
    stdio: ['ignore', 'pipe', logFd],
  });
  closeSync(logFd);
  const tail = () => (existsSync(log) ? readFileSync(log, 'utf8').trimEnd().split('\n').slice(-15).join('\n') : '(no log)');
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the lab's Kubernetes supervisor was not ready within ${SUPERVISOR_READY_TIMEOUT_MS / 1000} s (log ${log}):\n${tail()}`)), SUPERVISOR_READY_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the lab's Kubernetes supervisor exited (${signal ?? code}) before it was ready (log ${log}):\n${tail()}`));
    });
  }).catch(async (e: Error) => {
    await stopKubeLab(lab.status()).catch(() => {});
    throw e;
  });
  child.removeAllListeners('exit');
  child.stdout!.destroy();
  child.unref();
  return undefined;
}

export function printKubeMode(lab: Lab): void {
  const k = readKubeLabState(lab.status());
  if (!k) return;
  const name = lab.name === DEFAULT_LAB_NAME ? '' : ` --name ${lab.name}`;
  console.log(`kubernetes API ${k.apiServer} (admin kubeconfig ${k.kubeconfig}); agents use ${k.agentKubeconfig}`);
  console.log(`  try: bpfproxy lab kubectl${name} -- get nodes`);
}

/** `lab kubectl` and the hidden `lab kube-supervisor`. */
export function registerLabKubeCommands(lab: Command): void {
  lab
    .command('kubectl')
    .description("kubectl against the lab's API server (a lab brought up with --api kube), as its admin")
    .addOption(new Option('--name <name>', 'which lab').default(DEFAULT_LAB_NAME))
    .argument('[args...]', 'kubectl arguments (after --)')
    .allowUnknownOption()
    .action(async (args: string[], opts: { name: string }) => {
      const target = Lab.open(opts.name);
      const k = readKubeLabState(target.status());
      if (!k) throw new Error(`lab '${opts.name}' has no API server (bring it up with \`bpfproxy lab up --api kube\`)`);
      const ignore = () => {};
      process.on('SIGINT', ignore);
      const child = spawn(k.kubectl, ['--kubeconfig', k.kubeconfig, ...args], { stdio: 'inherit' });
      process.exitCode = await new Promise<number>((resolve) => {
        child.once('error', (e) => {
          console.error(e.message);
          resolve(127);
        });
        child.once('exit', (c, sig) => resolve(c ?? (sig ? 130 : 1)));
      });
      process.off('SIGINT', ignore);
    });

  lab
    .command('kube-supervisor', { hidden: true })
    .description('(internal) owns the control plane, lab kubelet and agents of a lab up with --api kube')
    .requiredOption('--name <name>', 'which lab')
    .requiredOption('--assets <dir>', 'Kubernetes binaries')
    .action(async (opts: { name: string; assets: string }) => {
      // The CLI that started us stops reading once we are ready; later writes must not kill us.
      process.stdout.on('error', () => {});
      const log = (m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`);
      const target = Lab.open(opts.name);
      let stopping: Promise<void> | undefined;
      let kube: KubeLab | undefined;
      const stop = (why: string) => {
        stopping ??= (async () => {
          log(`stopping (${why})`);
          await kube?.stop();
          log('stopped');
          process.exit(0);
        })();
      };
      for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => stop(sig));
      try {
        kube = await KubeLab.start(target, { assetsDir: opts.assets, log });
      } catch (e) {
        log(`failed: ${(e as Error).stack ?? String(e)}`);
        process.exit(1);
      }
      if (stopping) return;
      log(`ready: API server ${kube.state.apiServer}`);
      process.stdout.write('ready\n');
      // Signal handlers alone do not keep the event loop alive.
      setInterval(() => {}, 1 << 30);
    });
}
