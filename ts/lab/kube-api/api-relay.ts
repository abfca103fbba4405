/**
 * The lab's API server is on the root namespace's loopback; node agents run inside node namespaces,
 * which cannot reach it. Two relays join them without touching the root namespace's network:
 *
 *   agent (node-k netns) → 127.0.0.1:6443 → api-relay.mjs (node-k netns) → Unix socket (a file, seen
 *   from every namespace) → UnixToTcpRelay (the process owning the lab, root netns) → the API server
 *
 * so agents are configured with `server: https://127.0.0.1:6443`, an explicit API server address as
 * in the DaemonSet, and the API server's own certificate (issued for 127.0.0.1) verifies as is.
 * Relayed connections close when either side does, so an API server outage looks to the agent
 * exactly like one (resets, refused reconnects).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

import { processStartTime } from '../hostname-process.js';
import type { ServerProcess } from '../lab-state.js';

export const NODE_API_ADDRESS = '127.0.0.1';
export const NODE_API_PORT = 6443;
const RELAY_SCRIPT = fileURLToPath(new URL('./api-relay.mjs', import.meta.url));

/** Unix socket → 127.0.0.1:port, in this process. */
export class UnixToTcpRelay {
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  static async start(path: string, targetPort: number): Promise<UnixToTcpRelay> {
    rmSync(path, { force: true });
    const server = createServer();
    const relay = new UnixToTcpRelay(server, path);
    server.on('connection', (client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      for (const s of [client, upstream]) {
        relay.sockets.add(s);
        s.on('close', () => {
          relay.sockets.delete(s);
          close();
        });
        s.on('error', close);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    return relay;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    rmSync(this.path, { force: true });
  }
}

/** Starts api-relay.mjs inside `netns` (detached, like a pod's server) and resolves once it listens. */
export async function startNodeRelay(netns: string, unixPath: string, log: string): Promise<ServerProcess> {
  const logFd = openSync(log, 'a');
  const child = spawn(
    'ip',
    ['netns', 'exec', netns, process.execPath, RELAY_SCRIPT, '--listen', `${NODE_API_ADDRESS}:${NODE_API_PORT}`, '--unix', unixPath],
    { detached: true, stdio: ['ignore', 'pipe', logFd] },
  );
  closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start the API relay in ${netns}`);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`API relay in ${netns} not ready after 10 s`)), 10_000);
    function fail(e: Error) {
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
      reject(e);
    }
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      const tail = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-3).join('; ') : '';
      fail(new Error(`API relay in ${netns} exited (${code}) before it was ready: ${tail}`));
    });
  });
  child.removeAllListeners('exit');
  child.stdout!.destroy();
  child.unref();
  const startTime = processStartTime(pid);
  if (startTime === undefined) throw new Error(`API relay in ${netns} (pid ${pid}) vanished`);
  return { pid, startTime, log };
}
