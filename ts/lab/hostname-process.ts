/**
 * Starting and stopping a pod's hostname server. The server outlives the process that started it
 * (`bpfproxy lab apply` exits while pods keep serving), so it runs detached, is tracked by pid and
 * start time in the lab state, and is stopped by pid only after checking that the pid is still it.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { ServerProcess } from './lab-state.js';

export const HOSTNAME_SERVER = fileURLToPath(new URL('./hostname-server.mjs', import.meta.url));

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 3_000;

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function isServerAlive(server: ServerProcess): boolean {
  return processStartTime(server.pid) === server.startTime;
}

/** Runs the hostname server inside `netns` and resolves once it listens on every port. */
export async function startHostnameServer(opts: { netns: string; podName: string; ports: number[]; log: string }): Promise<ServerProcess> {
  const logFd = openSync(opts.log, 'a');
  const args = ['netns', 'exec', opts.netns, process.execPath, HOSTNAME_SERVER, '--name', opts.podName];
  for (const port of opts.ports) args.push('--port', String(port));
  // `ip netns exec` execs the command in place, so the pid we get is the server's own.
  const child = spawn('ip', args, { detached: true, stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start the hostname server of pod ${opts.podName}`);
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`hostname server of pod ${opts.podName} not ready after ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      const done = (err?: Error) => {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        if (err) reject(err);
        else resolve();
      };
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('ready\n')) done();
      });
      child.once('error', done);
      child.once('exit', (code, signal) => {
        const log = existsSync(opts.log) ? readFileSync(opts.log, 'utf8').trim().split('\n').slice(-3).join('; ') : '';
        done(new Error(`hostname server of pod ${opts.podName} exited (${signal ?? code}) before it was ready: ${log}`));
      });
    });
  } catch (e) {
    if (child.exitCode === null) child.kill('SIGKILL');
    throw e;
  }
  // Let this process exit while the server keeps running.
  child.stdout!.destroy();
  child.unref();
  const startTime = processStartTime(pid);
  if (startTime === undefined) throw new Error(`hostname server of pod ${opts.podName} (pid ${pid}) vanished`);
  return { pid, startTime, log: opts.log };
}

/** Stops one of our processes by pid (TERM, then KILL), waiting until it is gone. */
export async function stopProcess(server: Pick<ServerProcess, 'pid' | 'startTime'>): Promise<void> {
  if (!isServerAlive({ ...server, log: '' })) return;
  signal(server.pid, 'SIGTERM');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!isServerAlive({ ...server, log: '' }) || isZombie(server.pid)) return;
    await sleep(10);
  }
  signal(server.pid, 'SIGKILL');
  const killDeadline = Date.now() + STOP_TIMEOUT_MS;
  while (Date.now() < killDeadline) {
    if (!isServerAlive({ ...server, log: '' }) || isZombie(server.pid)) return;
    await sleep(10);
  }
  throw new Error(`process ${server.pid} did not exit`);
}

/** A child of ours that has exited but not been reaped yet is as good as gone. */
export function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
