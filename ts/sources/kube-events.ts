/**
 * Problems as Kubernetes Events on the objects they concern, as kube-proxy records its own: the
 * events.k8s.io/v1 API that kube-proxy's recorder uses (client-go tools/events, the API with
 * reportingController, reportingInstance and series; core/v1 Events are its legacy form), one
 * Event per problem and node, type Warning, reportingController `bpfproxy`, reason a stable
 * CamelCase name (problemReason).
 *
 *   - Deduplicated: a problem that persists across syncs is one Event. Its series count rises when
 *     it comes back within seriesWindowMs of going away, and once per heartbeatMs while it lasts
 *     (client-go's 30 min heartbeat: it also keeps the Event from the API server's 1 h TTL).
 *   - Rate-limited: a token bucket bounds API calls (burst, then one per refillMs); at most
 *     maxPending problems wait, the others are dropped and counted.
 *   - Never in the sync loop's way: observe() only records and returns; posting runs on its own.
 *     A failure to post is logged (once per run of failures) and retried a few times; never thrown.
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';

import type { KubeConfig } from '@kubernetes/client-node';

import { problemReason, type Problem } from '../model/index.js';
import { apiPath, type ApiResource } from './kube-api.js';
import type { ProblemRecorder } from './source.js';

/** What the recorder does with the API: deploy/base/rbac.yaml grants exactly this. */
export const EVENTS_API: ApiResource = { group: 'events.k8s.io', version: 'v1', resource: 'events', verbs: ['create', 'patch'] };

export const REPORTING_CONTROLLER = 'bpfproxy';
/** The API server's limit on an Event's note. */
const NOTE_LIMIT = 1024;
const MAX_ATTEMPTS = 3;

export type EventResult = 'created' | 'patched' | 'failed' | 'dropped';

export interface KubeEventRecorderOptions {
  kubeConfig: KubeConfig;
  /** This node: reportingInstance, and what Config problems are about. */
  nodeName: string;
  log: (message: string, fields?: Record<string, unknown>) => void;
  /** Burst of API calls (default 25), then one per refillMs (default 2 s). */
  burst?: number;
  refillMs?: number;
  /** A problem still present gets its count raised this often (default 30 min). */
  heartbeatMs?: number;
  /** A problem back within this time of going away is the same Event's series (default 6 min, as client-go). */
  seriesWindowMs?: number;
  /** Problems waiting to be posted at most (default 1000). */
  maxPending?: number;
  /** Bound on one API call (default 10 s). */
  requestTimeoutMs?: number;
  /** Delay before a failed post is tried again (default 5 s)… */
  retryMs?: number;
  /** …and after 3 failures in a row, before the heartbeat tries again (default 60 s). */
  giveUpMs?: number;
  onResult?: (result: EventResult) => void;
  now?: () => number;
}

interface ObjectReference {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

interface Tracked {
  readonly regarding: ObjectReference;
  readonly namespace: string;
  readonly reason: string;
  readonly note: string;
  /** The Event's name once created. */
  name: string | undefined;
  /** Occurrences so far; the API server has `postedCount`. */
  count: number;
  postedCount: number;
  present: boolean;
  lastObserved: number;
  lastPosted: number;
  attempts: number;
  notBefore: number;
}

const API_VERSIONS: Record<Problem['kind'], string> = { Service: 'v1', EndpointSlice: 'discovery.k8s.io/v1', Node: 'v1', Config: 'v1' };

export class KubeEventRecorder implements ProblemRecorder {
  private readonly tracked = new Map<string, Tracked>();
  /** Keys waiting to be posted, oldest first. */
  private readonly queue = new Set<string>();
  private tokens: number;
  private lastRefill: number;
  private pumping: Promise<void> | undefined;
  private wake: NodeJS.Timeout | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private stopped = false;
  private failing = false;
  private dropping = false;
  private seq = 0;
  private readonly inflight = new Set<ClientRequest>();
  private readonly o: Required<Omit<KubeEventRecorderOptions, 'onResult'>> & Pick<KubeEventRecorderOptions, 'onResult'>;

  constructor(opts: KubeEventRecorderOptions) {
    this.o = {
      burst: 25,
      refillMs: 2000,
      heartbeatMs: 30 * 60_000,
      seriesWindowMs: 6 * 60_000,
      maxPending: 1000,
      requestTimeoutMs: 10_000,
      retryMs: 5000,
      giveUpMs: 60_000,
      now: () => Date.now(),
      ...opts,
    };
    this.tokens = this.o.burst;
    this.lastRefill = this.o.now();
    this.heartbeat = setInterval(() => this.beat(), Math.min(this.o.heartbeatMs, this.o.giveUpMs, 60_000));
    this.heartbeat.unref();
  }

  /** The current problems (the whole list, after a sync): records what changed, returns at once. */
  observe(problems: readonly Problem[]): void {
    if (this.stopped) return;
    const now = this.o.now();
    const current = new Map<string, Problem>();
    for (const p of problems) current.set(this.keyOf(p), p);
    for (const [key, t] of this.tracked) {
      if (t.present && !current.has(key)) {
        t.present = false;
        t.lastObserved = now;
      } else if (!t.present && !current.has(key) && now - t.lastObserved > this.o.seriesWindowMs && !this.queue.has(key)) {
        this.tracked.delete(key);
      }
    }
    for (const [key, p] of current) {
      const t = this.tracked.get(key);
      if (t === undefined) {
        this.tracked.set(key, { ...this.describe(p), name: undefined, count: 1, postedCount: 0, present: true, lastObserved: now, lastPosted: 0, attempts: 0, notBefore: 0 });
        this.enqueue(key);
      } else if (!t.present) {
        // Back again: the same Event's series while it is recent, else a new Event.
        t.present = true;
        if (now - t.lastObserved > this.o.seriesWindowMs) Object.assign(t, { name: undefined, count: 1, postedCount: 0 });
        else t.count++;
        t.lastObserved = now;
        this.enqueue(key);
      }
    }
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    if (this.wake) clearTimeout(this.wake);
    // An agent that stops does not wait for the API server.
    for (const req of this.inflight) req.destroy(new Error('the agent is stopping'));
    await this.pumping;
  }

  /**
   * Problems that last: their count rises once per heartbeat, one PATCH each. Problems whose posts
   * were given up on (the API server away) are tried again.
   */
  private beat(): void {
    const now = this.o.now();
    for (const [key, t] of this.tracked) {
      if (!t.present || this.queue.has(key)) continue;
      if (t.count > t.postedCount && t.notBefore <= now) this.enqueue(key);
      else if (t.postedCount > 0 && now - t.lastPosted >= this.o.heartbeatMs) {
        t.count++;
        t.lastObserved = now;
        this.enqueue(key);
      }
    }
    this.kick();
  }

  private keyOf(p: Problem): string {
    return [p.kind, p.namespace, p.name, p.port ?? '', p.reason].join('\u0000');
  }

  private describe(p: Problem): Pick<Tracked, 'regarding' | 'namespace' | 'reason' | 'note'> {
    // Config problems (and the node's own) are about this node; cluster-scoped objects' Events
    // live in `default`, as the API server requires.
    const regarding: ObjectReference =
      p.kind === 'Config' || p.kind === 'Node'
        ? { apiVersion: 'v1', kind: 'Node', name: p.kind === 'Node' ? p.name : this.o.nodeName }
        : { apiVersion: API_VERSIONS[p.kind], kind: p.kind, namespace: p.namespace || 'default', name: p.name };
    const what = p.kind === 'Config' ? `configuration ${p.name}: ` : p.port ? `port ${p.port}: ` : '';
    const note = `${what}${p.reason}`;
    return {
      regarding,
      namespace: regarding.namespace ?? 'default',
      reason: problemReason(p),
      note: note.length > NOTE_LIMIT ? `${note.slice(0, NOTE_LIMIT - 1)}…` : note,
    };
  }

  private enqueue(key: string): void {
    if (this.queue.has(key)) return;
    if (this.queue.size >= this.o.maxPending) {
      this.o.onResult?.('dropped');
      if (!this.dropping) this.o.log('too many problems waiting to be posted as Events: some are not posted (they are still logged)', { maxPending: this.o.maxPending });
      this.dropping = true;
      return;
    }
    this.queue.add(key);
  }

  private kick(): void {
    // A pending wake-up (for a token, or a retry) runs the pump itself.
    if (this.stopped || this.pumping !== undefined || this.wake !== undefined || this.queue.size === 0) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      this.kick();
    });
  }

  private takeToken(now: number): number {
    const refills = Math.floor((now - this.lastRefill) / this.o.refillMs);
    if (refills > 0) {
      this.tokens = Math.min(this.o.burst, this.tokens + refills);
      this.lastRefill += refills * this.o.refillMs;
    }
    if (this.tokens > 0) {
      this.tokens--;
      return 0;
    }
    return this.lastRefill + this.o.refillMs - now;
  }

  private async pump(): Promise<void> {
    while (!this.stopped && this.queue.size > 0) {
      const now = this.o.now();
      const key = [...this.queue].find((k) => (this.tracked.get(k)?.notBefore ?? 0) <= now);
      if (key === undefined) return this.sleepUntil(Math.min(...[...this.queue].map((k) => this.tracked.get(k)?.notBefore ?? now)) - now);
      const wait = this.takeToken(now);
      if (wait > 0) return this.sleepUntil(wait);
      this.queue.delete(key);
      const t = this.tracked.get(key);
      if (t === undefined || t.count === t.postedCount) continue;
      await this.post(key, t);
    }
    if (this.queue.size === 0) this.dropping = false;
  }

  private sleepUntil(ms: number): void {
    this.wake = setTimeout(() => {
      this.wake = undefined;
      this.kick();
    }, Math.max(ms, 1));
    this.wake.unref();
  }

  private async post(key: string, t: Tracked): Promise<void> {
    const now = this.o.now();
    const count = t.count;
    const series = count > 1 ? { count, lastObservedTime: microTime(t.lastObserved) } : undefined;
    try {
      let status: number;
      let body: string;
      if (t.name !== undefined) {
        ({ status, body } = await this.request('PATCH', `${apiPath(EVENTS_API, t.namespace)}/${encodeURIComponent(t.name)}`, { series }));
        // Gone (expired, deleted): a new Event carries the series on.
        if (status === 404) t.name = undefined;
        else if (status >= 200 && status < 300) this.o.onResult?.('patched');
      }
      if (t.name === undefined) {
        const name = `${eventNamePrefix(t.regarding.name)}.${(BigInt(now) * 1_000_000n + BigInt(this.seq++ % 1_000_000)).toString(16)}`;
        ({ status, body } = await this.request('POST', apiPath(EVENTS_API, t.namespace), {
          apiVersion: `${EVENTS_API.group}/${EVENTS_API.version}`,
          kind: 'Event',
          metadata: { name, namespace: t.namespace },
          eventTime: microTime(now),
          ...(series ? { series } : {}),
          reportingController: REPORTING_CONTROLLER,
          reportingInstance: `${REPORTING_CONTROLLER}-${this.o.nodeName}`.slice(0, 128),
          action: 'Sync',
          reason: t.reason,
          regarding: t.regarding,
          note: t.note,
          type: 'Warning',
        }));
        if (status >= 200 && status < 300) {
          t.name = name;
          this.o.onResult?.('created');
        }
      }
      if (!(status! >= 200 && status! < 300)) throw new Error(`HTTP ${status!}: ${apiMessage(body!)}`);
      t.postedCount = count;
      t.lastPosted = now;
      t.attempts = 0;
      if (this.failing) this.o.log('posting Events works again');
      this.failing = false;
    } catch (e) {
      this.o.onResult?.('failed');
      t.attempts++;
      if (!this.failing) {
        this.o.log('cannot post an Event (further failures are not logged until one succeeds)', {
          regarding: `${t.regarding.kind} ${t.regarding.namespace ? `${t.regarding.namespace}/` : ''}${t.regarding.name}`,
          reason: t.reason,
          error: (e as Error).message,
        });
      }
      this.failing = true;
      if (t.attempts < MAX_ATTEMPTS) {
        t.notBefore = this.o.now() + this.o.retryMs;
        this.enqueue(key);
      } else {
        // Given up for now: the heartbeat tries again later, if the problem is still there.
        t.attempts = 0;
        t.notBefore = this.o.now() + this.o.giveUpMs;
      }
    }
  }

  private async request(method: 'POST' | 'PATCH', path: string, payload: unknown): Promise<{ status: number; body: string }> {
    const kc = this.o.kubeConfig;
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new Error('kubeconfig has no current cluster');
    const url = new URL(server.replace(/\/$/, '') + path);
    const data = JSON.stringify(payload);
    const opts: RequestOptions = { method, headers: {} };
    await kc.applyToHTTPSOptions(opts);
    opts.headers = {
      ...(opts.headers as Record<string, string>),
      Accept: 'application/json',
      'Content-Type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json',
      'Content-Length': String(Buffer.byteLength(data)),
    };
    opts.timeout = this.o.requestTimeoutMs;
    const fn = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = fn(url, opts, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      this.inflight.add(req);
      req.on('close', () => this.inflight.delete(req));
      req.on('timeout', () => req.destroy(new Error(`timed out after ${this.o.requestTimeoutMs} ms`)));
      req.on('error', reject);
      req.end(data);
    });
  }
}

/** RFC 3339 with microseconds, as metav1.MicroTime. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

/** An Event's name starts with the object's, made a DNS subdomain (client-go: name.hexnanos). */
function eventNamePrefix(name: string): string {
  const clean = name.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return (clean || 'bpfproxy').slice(0, 200);
}

function apiMessage(body: string): string {
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body.slice(0, 300);
  } catch {
    return body.slice(0, 300);
  }
}
