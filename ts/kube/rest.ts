/**
 * A small Kubernetes REST client for the lab's kubelet, cloud controller and node heartbeats: JSON
 * in, JSON out, the KubeConfig's TLS and credentials, every request bounded in time. Why not
 * client-node's generated API classes: patch content types and subresources (binding, status) are
 * awkward there, and errors lose the API's Status message; here an error says method, path, HTTP
 * status and the server's own message.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';

import type { KubeConfig } from '@kubernetes/client-node';

export class KubeApiError extends Error {
  constructor(
    message: string,
    /** HTTP status, or 0 for network errors and timeouts. */
    readonly status: number,
    /** The Status object's reason (NotFound, AlreadyExists, Conflict…), when the server sent one. */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
  get notFound(): boolean {
    return this.status === 404;
  }
  get conflict(): boolean {
    return this.status === 409;
  }
}

export type PatchType = 'merge' | 'strategic' | 'json';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
};

export interface KubeRestOptions {
  /** Bound on each request (default 10 s). */
  timeoutMs?: number;
}

export class KubeRest {
  constructor(
    readonly kubeConfig: KubeConfig,
    private readonly opts: KubeRestOptions = {},
  ) {}

  get server(): string {
    const server = this.kubeConfig.getCurrentCluster()?.server;
    if (!server) throw new KubeApiError('kubeconfig has no current cluster', 0);
    return server.replace(/\/$/, '');
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, undefined, { signal });
  }
  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }
  patch<T>(path: string, body: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.request<T>('PATCH', path, body, { contentType: PATCH_CONTENT_TYPE[type] });
  }
  delete<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('DELETE', path, body);
  }

  /** A streaming GET (watches): resolves with the response once headers arrive; non-2xx is an error. */
  async stream(path: string, signal: AbortSignal): Promise<IncomingMessage> {
    const url = new URL(this.server + path);
    const opts: RequestOptions = { method: 'GET', headers: {} };
    await this.kubeConfig.applyToHTTPSOptions(opts);
    opts.headers = { ...(opts.headers as Record<string, string>), Accept: 'application/json' };
    opts.signal = signal;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const fn = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = fn(url, opts, (r) => {
        // A reset after the headers errors the response; whoever reads sees it, nobody crashes.
        r.on('error', () => undefined);
        resolve(r);
      });
      req.on('error', (e: NodeJS.ErrnoException) => reject(new KubeApiError(`GET ${path}: ${e.code ? `${e.code}: ` : ''}${e.message}`, 0)));
      req.on('socket', (s) => s.setKeepAlive(true, 30_000));
      req.end();
    });
    if (res.statusCode !== 200) {
      let text = '';
      for await (const c of res) text += (c as Buffer).toString();
      let message = text.trim().slice(0, 300);
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? message;
      } catch {
        // not a Status object
      }
      throw new KubeApiError(`GET ${path}: HTTP ${res.statusCode}: ${message}`, res.statusCode ?? 0);
    }
    return res;
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    extra: { contentType?: string; signal?: AbortSignal | undefined } = {},
  ): Promise<T> {
    const url = new URL(this.server + path);
    const opts: RequestOptions = { method, headers: {} };
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const data = body === undefined ? undefined : JSON.stringify(body);
    opts.headers = {
      ...(opts.headers as Record<string, string>),
      Accept: 'application/json',
      ...(data !== undefined ? { 'Content-Type': extra.contentType ?? 'application/json', 'Content-Length': String(Buffer.byteLength(data)) } : {}),
    };
    const timeoutMs = this.opts.timeoutMs ?? 10_000;
    const local = new AbortController();
    const timer = setTimeout(() => local.abort(), timeoutMs);
    const onAbort = () => local.abort();
    extra.signal?.addEventListener('abort', onAbort);
    opts.signal = local.signal;
    const what = `${method} ${path}`;
    try {
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const fn = url.protocol === 'https:' ? httpsRequest : httpRequest;
        const req = fn(url, opts, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(data);
      });
      if (status >= 200 && status < 300) return (text ? JSON.parse(text) : {}) as T;
      let message = text.trim().slice(0, 300);
      let reason: string | undefined;
      try {
        const s = JSON.parse(text) as { message?: string; reason?: string };
        if (s.message) message = s.message;
        reason = s.reason;
      } catch {
        // not a Status object
      }
      throw new KubeApiError(`${what}: HTTP ${status}: ${message}`, status, reason);
    } catch (e) {
      if (e instanceof KubeApiError) throw e;
      const err = e as NodeJS.ErrnoException;
      const timedOut = local.signal.aborted && !extra.signal?.aborted;
      throw new KubeApiError(`${what}: ${timedOut ? `timed out after ${timeoutMs} ms` : `${err.code ? `${err.code}: ` : ''}${err.message}`}`, 0);
    } finally {
      clearTimeout(timer);
      extra.signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** An RFC 3339 time with microseconds, as MicroTime fields (Lease renewTime, Event eventTime) need. */
export function microTime(date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** RFC 3339 to the second, as Time fields (conditions, startTime) are stored. */
export function kubeTime(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
