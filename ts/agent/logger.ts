/**
 * Structured logs with pino: one JSON object per line by default (what log pipelines ingest), or
 * one readable line per record (`--log-format text`) for people at a terminal. The text form is
 * a small formatter of our own rather than pino-pretty: it is the only thing we would use of it.
 *
 * Verbosity follows kube-proxy's `--v`: 0–1 info, 2–3 debug, 4+ trace.
 */
import { Writable } from 'node:stream';

import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;
export type LogFormat = 'json' | 'text';

export interface LoggerOptions {
  format?: LogFormat;
  /** kube-proxy style verbosity (--v). */
  verbosity?: number;
  /** Where lines go (default: standard error, so that command output on stdout stays clean). */
  destination?: NodeJS.WritableStream;
  /** Fields on every line. */
  base?: Record<string, unknown>;
}

export function levelForVerbosity(v: number): pino.Level {
  return v >= 4 ? 'trace' : v >= 2 ? 'debug' : 'info';
}

/** `2026-11-22T03:24:58.044Z INFO  agent ready node=node-1 services=3` */
export function formatTextLine(record: Record<string, unknown>): string {
  const { time, level, msg, pid: _pid, hostname: _hostname, ...fields } = record;
  const when = typeof time === 'number' ? new Date(time).toISOString() : String(time ?? '');
  const parts = Object.entries(fields).map(([k, v]) => `${k}=${formatValue(v)}`);
  return `${when} ${String(level).toUpperCase().padEnd(5)} ${String(msg ?? '')}${parts.length ? ' ' + parts.join(' ') : ''}\n`;
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v !== null && typeof v === 'object') {
    const err = v as { type?: string; message?: string; stack?: string };
    if (typeof err.message === 'string' && typeof err.type === 'string') return JSON.stringify(`${err.type}: ${err.message}`);
    return JSON.stringify(v);
  }
  return String(v);
}

/** A stream that turns pino's JSON lines into text lines. */
function textDestination(out: NodeJS.WritableStream): DestinationStream {
  let pending = '';
  return new Writable({
    write(chunk: Buffer | string, _enc, done) {
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          out.write(formatTextLine(JSON.parse(line) as Record<string, unknown>));
        } catch {
          out.write(line + '\n');
        }
      }
      done();
    },
  });
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const out = opts.destination ?? process.stderr;
  const destination = opts.format === 'text' ? textDestination(out) : (out as DestinationStream);
  return pino(
    {
      level: levelForVerbosity(opts.verbosity ?? 0),
      base: { ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}
