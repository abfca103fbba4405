/**
 * Traffic from inside a lab namespace: many short requests (for answers, spread and errors) and
 * long-lived streaming TCP connections (for "connections survive changes"). Both run the plain-node
 * client script in the source namespace, so sockets are real and nothing is mocked.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { run } from '../../util/exec.js';
import type { Protocol } from '../lab-state.js';

export const HOSTNAME_CLIENT = fileURLToPath(new URL('./hostname-client.mjs', import.meta.url));

export interface RequestOptions {
  address: string;
  port: number;
  protocol?: Protocol;
  /** How many requests, each its own connection or UDP socket (default 1). */
  count?: number;
  /** Per request (default 1000). */
  timeoutMs?: number;
  /** Requests in flight at once (default 50). */
  concurrency?: number;
  /** TCP only: send an HTTP GET (true for "/", or a path) and take the answer from the body. */
  http?: boolean | string;
  /** What to send first (TCP, default "hostname\n") or as the datagram (UDP, default "hostname"); e.g. "clientip\n", or
   *  "whoami\n" (TCP) / "whoami" (UDP) for "POD CLIENT-IP:PORT": the backend and the peer it saw. */
  payload?: string;
}

/** `refused`: RST or ICMP port unreachable; `timeout`: no answer; `reset`: closed without an answer. */
export type RequestError = 'refused' | 'timeout' | 'reset' | 'unreachable' | 'error';

export type Answer = { ok: true; answer: string; ms: number } | { ok: false; error: RequestError; message: string; ms: number };

export async function request(netns: string, opts: RequestOptions): Promise<Answer[]> {
  const count = opts.count ?? 1;
  const timeoutMs = opts.timeoutMs ?? 1000;
  const concurrency = opts.concurrency ?? 50;
  if (!Number.isInteger(count) || count < 1 || count > 100_000) throw new RangeError(`count ${count} is outside 1…100000`);
  const args = { ...opts, protocol: opts.protocol ?? 'TCP', count, timeoutMs, concurrency };
  // Bounded: every request ends within timeoutMs, and they run `concurrency` at a time.
  const bound = Math.ceil(count / concurrency) * timeoutMs + 10_000;
  const out = await run('ip', ['netns', 'exec', netns, process.execPath, HOSTNAME_CLIENT, 'request', JSON.stringify(args)], { timeoutMs: bound });
  return JSON.parse(out) as Answer[];
}

/** Answers per pod name, and errors per kind: what spread and failure tests look at. */
export function tally(answers: Answer[]): { byAnswer: Record<string, number>; byError: Partial<Record<RequestError, number>> } {
  const byAnswer: Record<string, number> = {};
  const byError: Partial<Record<RequestError, number>> = {};
  for (const a of answers) {
    if (a.ok) byAnswer[a.answer] = (byAnswer[a.answer] ?? 0) + 1;
    else byError[a.error] = (byError[a.error] ?? 0) + 1;
  }
  return { byAnswer, byError };
}

export interface TransferOptions {
  address: string;
  port: number;
  /** download: the backend sends `bytes`; upload: we send them. Checked by SHA-256 either way. */
  direction: 'download' | 'upload';
  bytes: number;
  /** For the whole transfer (default 30 s). */
  timeoutMs?: number;
}

export type TransferResult = {
  direction: 'download' | 'upload';
  bytes: number;
  /** Bytes received (download). */
  received: number;
  /** The pod that served it. */
  backend?: string;
  ms: number;
} & ({ ok: true } | { ok: false; error: RequestError | 'corrupt' | 'short'; message: string });

/** One bulk TCP transfer from a namespace to a hostname server, checksummed end to end. */
export async function transfer(netns: string, opts: TransferOptions): Promise<TransferResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  if (!Number.isInteger(opts.bytes) || opts.bytes < 0 || opts.bytes > 256 * 1024 * 1024) throw new RangeError(`bytes ${opts.bytes} is outside 0…256 MiB`);
  const out = await run('ip', ['netns', 'exec', netns, process.execPath, HOSTNAME_CLIENT, 'transfer', JSON.stringify({ ...opts, timeoutMs })], { timeoutMs: timeoutMs + 10_000 });
  return JSON.parse(out) as TransferResult;
}

export interface StreamOptions {
  address: string;
  port: number;
  /** A line is sent (and must come back) this often (default 20). */
  intervalMs?: number;
  /** For connecting, and for the last echoes after stop (default 3000). */
  timeoutMs?: number;
}

export interface StreamProgress {
  sentBytes: number;
  echoedBytes: number;
  /** The longest wait between two echoes: a stall shows here even if the connection survives. */
  maxGapMs: number;
}

export interface StreamResult {
  backend: string | undefined;
  sentLines: number;
  sentBytes: number;
  echoedBytes: number;
  /** Everything echoed was exactly what was sent. */
  intact: boolean;
  maxGapMs: number;
  error: { error: RequestError; message: string } | null;
}

type StreamEvent =
  | { event: 'connected'; backend: string; local: string }
  | ({ event: 'progress' } & StreamProgress)
  | ({ event: 'done' } & StreamResult);

/**
 * A long-lived TCP connection to a hostname server in stream mode: it learns the backend's name, then
 * sends a line every intervalMs and checks each comes back. If this process dies, the client sees its
 * stdin close and stops on its own.
 */
export class StreamConnection {
  /** The backend's pod name and the client's address:port (the flow's source). */
  readonly connected: Promise<{ backend: string; local: string }>;
  private latest: StreamProgress = { sentBytes: 0, echoedBytes: 0, maxGapMs: 0 };
  private readonly finished: Promise<StreamResult>;
  private readonly child;

  private constructor(netns: string, opts: StreamOptions) {
    const args = { intervalMs: 20, timeoutMs: 3000, ...opts };
    this.child = spawn('ip', ['netns', 'exec', netns, process.execPath, HOSTNAME_CLIENT, 'stream', JSON.stringify(args)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    // The client may exit on its own (its server went away) just before stop() writes to it: the
    // write then fails with EPIPE, which says nothing the 'close' handler below does not.
    this.child.stdin!.on('error', () => {});
    let onConnected: (v: { backend: string; local: string }) => void;
    let onConnectFailed: (e: Error) => void;
    this.connected = new Promise((resolve, reject) => {
      onConnected = resolve;
      onConnectFailed = reject;
    });
    // Callers that only await stop() must not see an unhandled rejection from here.
    this.connected.catch(() => {});
    this.finished = new Promise((resolve, reject) => {
      let result: StreamResult | undefined;
      createInterface({ input: this.child.stdout! }).on('line', (line) => {
        const ev = JSON.parse(line) as StreamEvent;
        if (ev.event === 'connected') onConnected({ backend: ev.backend, local: ev.local });
        else if (ev.event === 'progress') this.latest = { sentBytes: ev.sentBytes, echoedBytes: ev.echoedBytes, maxGapMs: ev.maxGapMs };
        else {
          const { event: _event, ...rest } = ev;
          result = rest;
          if (!rest.backend) onConnectFailed(new Error(`stream to ${opts.address}:${opts.port} failed: ${rest.error?.message ?? 'no backend'}`));
        }
      });
      this.child.once('error', reject);
      this.child.once('close', (code) => {
        if (result) resolve(result);
        else {
          const err = new Error(`stream client exited (${code}) without a result`);
          onConnectFailed(err);
          reject(err);
        }
      });
    });
    this.finished.catch(() => {});
  }

  static open(netns: string, opts: StreamOptions): StreamConnection {
    return new StreamConnection(netns, opts);
  }

  get progress(): StreamProgress {
    return { ...this.latest };
  }

  /** Stops sending, waits for the last echoes, closes the connection and reports. */
  async stop(): Promise<StreamResult> {
    if (this.child.exitCode === null && this.child.stdin?.writable) this.child.stdin.end('stop\n');
    return this.finished;
  }
}
