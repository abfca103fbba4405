/**
 * The Kubernetes API as a ClusterSource: Services, EndpointSlices (discovery.k8s.io/v1), ServiceCIDRs
 * (networking.k8s.io/v1, when the agent asks for them and the server has them) and this
 * node's own Node, each by its own list+watch loop (a "reflector").
 *
 * Why not client-node's makeInformer: it gives no previous object on updates, stops for good on any
 * error other than 410, has no backoff, no bookmarks and no stall detection. The loop here is
 * client-go's reflector in miniature, with the client's KubeConfig for auth/TLS:
 *   - list (paginated), diff against what we hold (objects gone from the list become deletions),
 *     then watch from the list's resourceVersion with bookmarks;
 *   - 410 Gone (from the watch or its ERROR event) → relist and diff at once;
 *   - other errors → retry with exponential backoff and full jitter; 401/403 (and other 4xx) are
 *     reported as fatal ("check RBAC") but still retried slowly, since RBAC can be fixed live;
 *   - no event nor bookmark for `stallMs` → the watch is presumed dead (half-open TCP, a hung
 *     apiserver) and restarted; every `resyncMs` a full relist re-diffs everything.
 * `synced` fires once every kind has listed; `health(false, reason)` while any kind is failing,
 * `health(true)` when all work again. Objects are delivered as slim copies of what the API serves
 * (slim.ts: only the fields the agent reads; plain JSON, so timestamps are strings, as with the file
 * source); the reflector's store holds those same copies, never the full objects.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { createInterface } from 'node:readline';

import type { KubeConfig, V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

import { apiPath, type ApiResource } from './kube-api.js';
import { KubeEventRecorder, type KubeEventRecorderOptions } from './kube-events.js';
import { slim } from './slim.js';
import { objectKey, type ClusterEvents, type ClusterSource, type ProblemRecorder, type ProblemRecorderOptions, type ServiceCIDR } from './source.js';

type Kind = 'Service' | 'EndpointSlice' | 'Node' | 'ServiceCIDR';

/**
 * Every resource the source reads, and how: a list, then a watch from its resourceVersion (never a
 * get; the Node is a field-selected list and watch). deploy/base/rbac.yaml grants exactly these
 * (test/deploy/manifests.test.ts derives its check from this table).
 */
export const KUBE_SOURCE_APIS: Readonly<Record<Kind, ApiResource>> = {
  Service: { group: '', version: 'v1', resource: 'services', verbs: ['list', 'watch'] },
  EndpointSlice: { group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', verbs: ['list', 'watch'] },
  Node: { group: '', version: 'v1', resource: 'nodes', verbs: ['list', 'watch'] },
  ServiceCIDR: { group: 'networking.k8s.io', version: 'v1', resource: 'servicecidrs', verbs: ['list', 'watch'] },
};

interface KObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}
interface KStatus {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
}

export interface KubeSourceOptions {
  kubeConfig: KubeConfig;
  /** This node's name: its Node object is watched (addresses, zone, deletion). Without it, no Node. */
  nodeName?: string;
  /** Full relist and diff this often (default 10 min, ±10 % jitter). */
  resyncMs?: number;
  /** A watch with no event nor bookmark this long is restarted (default 3 min). */
  stallMs?: number;
  /** Backoff for retryable errors: first delay and cap (defaults 500 ms, 8 s), full jitter. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Retry delay for fatal errors such as 401/403 (default 30 s, jittered). */
  fatalRetryMs?: number;
  /** Bound on one list request (default 30 s). */
  requestTimeoutMs?: number;
  /** Page size of lists (default 500). */
  pageSize?: number;
  log?: (message: string) => void;
}

export type RelistReason = 'initial' | 'gone' | 'resync' | 'error';

/** What happened, for tests and metrics. */
export interface KubeSourceStats {
  relists: Record<Kind, Record<RelistReason, number>>;
  watchRestarts: Record<Kind, number>;
  stalls: Record<Kind, number>;
}

/** An API or transport error, classified. */
export class KubeRequestError extends Error {
  constructor(
    message: string,
    /** HTTP status, or 0 for network errors and timeouts. */
    readonly status: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'KubeRequestError';
  }
  get gone(): boolean {
    return this.status === 410;
  }
  /** Network errors, timeouts, 5xx and 429 heal by themselves; 401/403/other 4xx need a human. */
  get fatal(): boolean {
    return this.status >= 400 && this.status < 500 && this.status !== 410 && this.status !== 429 && this.status !== 408;
  }
}

const sleepAbortable = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });

const jitter = (ms: number, fraction: number) => ms * (1 - fraction + Math.random() * 2 * fraction);

interface KindSpec {
  kind: Kind;
  path: string;
  fieldSelector?: string;
  /**
   * An API the server may not serve (404: networking.k8s.io/v1 ServiceCIDR before Kubernetes 1.33):
   * taken as listed and empty, and asked again at every resync.
   */
  optional?: boolean;
  emit(prev: KObject | undefined, cur: KObject | undefined): void;
}

export class KubeSource implements ClusterSource {
  readonly stats: KubeSourceStats = {
    relists: {
      Service: { initial: 0, gone: 0, resync: 0, error: 0 },
      EndpointSlice: { initial: 0, gone: 0, resync: 0, error: 0 },
      Node: { initial: 0, gone: 0, resync: 0, error: 0 },
      ServiceCIDR: { initial: 0, gone: 0, resync: 0, error: 0 },
    },
    watchRestarts: { Service: 0, EndpointSlice: 0, Node: 0, ServiceCIDR: 0 },
    stalls: { Service: 0, EndpointSlice: 0, Node: 0, ServiceCIDR: 0 },
  };
  private abort = new AbortController();
  private loops: Promise<void>[] = [];
  private reflectors: Reflector[] = [];
  private failing = new Map<Kind, string>();
  private reportedHealthy = true;
  private syncedSent = false;

  constructor(private readonly opts: KubeSourceOptions) {}

  get description(): string {
    return `kubernetes:${this.opts.kubeConfig.getCurrentCluster()?.server ?? '?'}`;
  }

  /** Problems as Events on their objects, through this source's API server and credentials (kube-events.ts). */
  problemRecorder(opts: ProblemRecorderOptions & Partial<KubeEventRecorderOptions>): ProblemRecorder {
    return new KubeEventRecorder({ ...opts, kubeConfig: this.opts.kubeConfig });
  }

  /** Starts the loops and returns at once: `synced` fires later (the API server may be down now). */
  async start(events: ClusterEvents): Promise<void> {
    if (this.loops.length > 0) throw new Error('KubeSource already started');
    this.abort = new AbortController();
    const safe =
      <A extends unknown[]>(fn: (...a: A) => void) =>
      (...a: A) => {
        // A throwing handler must not kill the watch loop.
        try {
          fn(...a);
        } catch (e) {
          this.log(`event handler failed: ${(e as Error).stack ?? String(e)}`);
        }
      };
    const specs: KindSpec[] = [
      {
        kind: 'Service',
        path: apiPath(KUBE_SOURCE_APIS.Service),
        emit: safe((p, c) => events.service(p as V1Service | undefined, c as V1Service | undefined)),
      },
      {
        kind: 'EndpointSlice',
        path: apiPath(KUBE_SOURCE_APIS.EndpointSlice),
        emit: safe((p, c) => events.endpointSlice(p as V1EndpointSlice | undefined, c as V1EndpointSlice | undefined)),
      },
    ];
    if (events.serviceCIDR) {
      const serviceCIDR = events.serviceCIDR.bind(events);
      specs.push({
        kind: 'ServiceCIDR',
        path: apiPath(KUBE_SOURCE_APIS.ServiceCIDR),
        optional: true,
        emit: safe((p, c) => serviceCIDR(p as ServiceCIDR | undefined, c as ServiceCIDR | undefined)),
      });
    }
    if (this.opts.nodeName) {
      specs.push({
        kind: 'Node',
        path: apiPath(KUBE_SOURCE_APIS.Node),
        fieldSelector: `metadata.name=${this.opts.nodeName}`,
        emit: safe((p, c) => events.node(p as V1Node | undefined, c as V1Node | undefined)),
      });
    }
    this.reflectors = specs.map(
      (spec) =>
        new Reflector(spec, this.opts, this.stats, this.abort.signal, {
          listed: () => {
            if (!this.syncedSent && this.reflectors.every((r) => r.hasListed)) {
              this.syncedSent = true;
              safe(() => events.synced())();
            }
          },
          failing: (reason) => this.setFailing(spec.kind, reason, events),
          working: () => this.setFailing(spec.kind, undefined, events),
          log: (m) => this.log(`${spec.kind}: ${m}`),
        }),
    );
    this.loops = this.reflectors.map((r) => r.run());
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.loops);
    this.loops = [];
  }

  /** True once every kind has been listed. */
  get isSynced(): boolean {
    return this.syncedSent;
  }

  private setFailing(kind: Kind, reason: string | undefined, events: ClusterEvents): void {
    if (reason === undefined) this.failing.delete(kind);
    else this.failing.set(kind, reason);
    const healthy = this.failing.size === 0;
    const summary = [...this.failing].map(([k, r]) => `${k}: ${r}`).join('; ');
    // Transitions only, plus a changed reason while unhealthy (an outage turning into a 403 matters).
    if (healthy ? this.reportedHealthy : !this.reportedHealthy && summary === this.lastSummary) return;
    this.reportedHealthy = healthy;
    this.lastSummary = summary;
    try {
      events.health?.(healthy, healthy ? undefined : summary);
    } catch (e) {
      this.log(`health handler failed: ${(e as Error).message}`);
    }
  }
  private lastSummary = '';

  private log(message: string): void {
    this.opts.log?.(message);
  }
}

interface ReflectorHooks {
  listed(): void;
  failing(reason: string): void;
  working(): void;
  log(message: string): void;
}

const API_VERSION: Record<Kind, string> = { Service: 'v1', EndpointSlice: 'discovery.k8s.io/v1', Node: 'v1', ServiceCIDR: 'networking.k8s.io/v1' };

/** One kind's list+watch loop. */
class Reflector {
  private store = new Map<string, KObject>();
  private resourceVersion = '';
  hasListed = false;
  private nextResyncAt = 0;

  constructor(
    private readonly spec: KindSpec,
    private readonly opts: KubeSourceOptions,
    private readonly stats: KubeSourceStats,
    private readonly stopSignal: AbortSignal,
    private readonly hooks: ReflectorHooks,
  ) {}

  async run(): Promise<void> {
    let failures = 0;
    let fatalInARow = 0;
    let relistReason: RelistReason = 'initial';
    this.scheduleResync();
    while (!this.stopSignal.aborted) {
      try {
        if (!this.resourceVersion) {
          await this.relist(relistReason);
          this.scheduleResync();
        }
        await this.watch();
        failures = 0;
        fatalInARow = 0;
        if (Date.now() >= this.nextResyncAt) {
          this.resourceVersion = '';
          relistReason = 'resync';
        }
      } catch (e) {
        if (this.stopSignal.aborted) break;
        const err = toRequestError(e);
        if (err.status === 404 && this.spec.optional) {
          // Not served: nothing of this kind exists (what we held, if anything, is gone).
          this.absent();
          await sleepAbortable(this.nextResyncAt - Date.now(), this.stopSignal);
          this.scheduleResync();
          this.resourceVersion = '';
          continue;
        }
        if (err.gone) {
          // Our resourceVersion is older than the server's history: start over from a list,
          // whose diff reports whatever was deleted meanwhile.
          this.hooks.log(`410 Gone (${err.message}): relisting`);
          this.resourceVersion = '';
          relistReason = 'gone';
          continue;
        }
        failures++;
        const fatal = err.fatal;
        fatalInARow = fatal ? fatalInARow + 1 : 0;
        const reason = fatal
          ? `${err.message} (HTTP ${err.status}: check credentials and RBAC; retrying slowly)`
          : `${err.message}${err.status ? ` (HTTP ${err.status})` : ''}`;
        this.hooks.failing(reason);
        if (!this.resourceVersion) relistReason = this.hasListed ? 'error' : 'initial';
        // Fatal errors back off from 1 s to fatalRetryMs: a restarting apiserver refuses with 403
        // until its RBAC caches have synced (seconds), which must not cost us 30 s of staleness.
        const base = fatal
          ? Math.min(this.opts.fatalRetryMs ?? 30_000, 1000 * 2 ** Math.min(fatalInARow - 1, 20))
          : Math.min(this.opts.backoffMaxMs ?? 8_000, (this.opts.backoffInitialMs ?? 500) * 2 ** Math.min(failures - 1, 20));
        // Full jitter for retryable errors spreads a fleet of agents reconnecting to one apiserver.
        const delay = Math.max(err.retryAfterMs ?? 0, fatal ? jitter(base, 0.2) : Math.random() * base);
        this.hooks.log(`${reason}; retry ${failures} in ${Math.round(delay)} ms`);
        await sleepAbortable(delay, this.stopSignal);
      }
    }
  }

  /** An optional kind the server does not serve: listed, empty. */
  private absent(): void {
    for (const before of this.store.values()) this.spec.emit(before, undefined);
    this.store.clear();
    this.hooks.working();
    if (!this.hasListed) {
      this.hasListed = true;
      this.hooks.listed();
    }
  }

  private scheduleResync(): void {
    this.nextResyncAt = Date.now() + jitter(this.opts.resyncMs ?? 600_000, 0.1);
  }

  private query(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.spec.fieldSelector) q.set('fieldSelector', this.spec.fieldSelector);
    return `${this.spec.path}?${q.toString()}`;
  }

  /** Lists everything (paginated), then reports the difference to what we held. */
  private async relist(reason: RelistReason): Promise<void> {
    const items: KObject[] = [];
    let cont = '';
    let rv = '';
    for (;;) {
      const params: Record<string, string> = { limit: String(this.opts.pageSize ?? 500) };
      if (cont) params.continue = cont;
      let page: { metadata?: { resourceVersion?: string; continue?: string }; items?: KObject[] };
      try {
        page = (await this.requestJson(this.query(params))) as typeof page;
      } catch (e) {
        const err = toRequestError(e);
        // An expired continue token: the list must start over, not the whole loop back off.
        if (err.gone && cont) {
          items.length = 0;
          cont = '';
          continue;
        }
        throw err;
      }
      // Slim copies page by page: a list of 30 000 full objects is never held at once.
      for (const item of page.items ?? []) {
        // List items carry no kind; add it so consumers can tell objects apart (as in YAML).
        (item as { kind?: string }).kind ??= this.spec.kind;
        (item as { apiVersion?: string }).apiVersion ??= API_VERSION[this.spec.kind];
        items.push(slim(this.spec.kind, item));
      }
      rv = page.metadata?.resourceVersion ?? rv;
      cont = page.metadata?.continue ?? '';
      if (!cont) break;
    }
    this.stats.relists[this.spec.kind][reason]++;
    const fresh = new Map<string, KObject>();
    for (const item of items) fresh.set(objectKey(item), item);
    const old = this.store;
    this.store = fresh;
    for (const [key, obj] of fresh) {
      const before = old.get(key);
      if (!before || before.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.spec.emit(before, obj);
    }
    for (const [key, before] of old) if (!fresh.has(key)) this.spec.emit(before, undefined);
    this.resourceVersion = rv;
    this.hooks.working();
    if (!this.hasListed) {
      this.hasListed = true;
      this.hooks.listed();
    }
  }

  /** One watch from our resourceVersion; resolves when it ends cleanly, throws on errors and 410. */
  private async watch(): Promise<void> {
    const stallMs = this.opts.stallMs ?? 180_000;
    // Ask the server to close the watch itself a little before we would call it stalled.
    const timeoutSeconds = Math.max(1, Math.floor(jitter((stallMs * 0.8) / 1000, 0.1)));
    const path = this.query({
      watch: 'true',
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(timeoutSeconds),
    });
    const local = new AbortController();
    const onStop = () => local.abort();
    this.stopSignal.addEventListener('abort', onStop);
    let stallTimer: NodeJS.Timeout | undefined;
    let stalled = false;
    const armStall = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => {
        stalled = true;
        local.abort();
      }, stallMs);
    };
    armStall();
    this.stats.watchRestarts[this.spec.kind]++;
    try {
      const res = await this.open(path, local.signal);
      if (res.statusCode !== 200) throw await statusError(res, `watch ${this.spec.path}`);
      this.hooks.working();
      const lines = createInterface({ input: res, crlfDelay: Infinity });
      // A reset connection errors the response and readline re-emits it: end the loop and rethrow.
      let streamError: Error | undefined;
      const onError = (e: Error) => {
        streamError = e;
        lines.close();
      };
      res.on('error', onError);
      lines.on('error', onError); // readline re-emits its input's errors on itself

      for await (const line of lines) {
        if (!line.trim()) continue;
        armStall();
        let ev: { type?: string; object?: KObject & KStatus };
        try {
          ev = JSON.parse(line) as typeof ev;
        } catch {
          throw new KubeRequestError(`watch ${this.spec.path}: unparsable event`, 0);
        }
        this.handle(ev.type ?? '', ev.object ?? {});
      }
      if (streamError) throw streamError;
    } catch (e) {
      if (stalled) {
        this.stats.stalls[this.spec.kind]++;
        throw new KubeRequestError(`watch stalled: no event nor bookmark for ${stallMs} ms`, 0);
      }
      if (this.stopSignal.aborted) return;
      throw e;
    } finally {
      clearTimeout(stallTimer);
      this.stopSignal.removeEventListener('abort', onStop);
      local.abort();
    }
  }

  private handle(type: string, obj: KObject & KStatus): void {
    switch (type) {
      case 'ADDED':
      case 'MODIFIED': {
        (obj as { kind?: string }).kind ??= this.spec.kind;
        const key = objectKey(obj);
        const before = this.store.get(key);
        const current = slim(this.spec.kind, obj);
        this.store.set(key, current);
        this.spec.emit(before, current);
        break;
      }
      case 'DELETED': {
        const key = objectKey(obj);
        (obj as { kind?: string }).kind ??= this.spec.kind;
        const before = this.store.get(key) ?? slim(this.spec.kind, obj);
        this.store.delete(key);
        this.spec.emit(before, undefined);
        break;
      }
      case 'BOOKMARK':
        break;
      case 'ERROR':
        throw new KubeRequestError(`watch ${this.spec.path}: ${obj.message ?? obj.reason ?? 'error'}`, obj.code ?? 500);
      default:
        return;
    }
    if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
  }

  private async requestJson(path: string): Promise<unknown> {
    const local = new AbortController();
    const onStop = () => local.abort();
    this.stopSignal.addEventListener('abort', onStop);
    const timer = setTimeout(() => local.abort(), this.opts.requestTimeoutMs ?? 30_000);
    try {
      const res = await this.open(path, local.signal);
      if (res.statusCode !== 200) throw await statusError(res, `list ${this.spec.path}`);
      let body = '';
      for await (const chunk of res) body += (chunk as Buffer).toString();
      return JSON.parse(body);
    } catch (e) {
      if (local.signal.aborted && !this.stopSignal.aborted && !(e instanceof KubeRequestError)) {
        throw new KubeRequestError(`list ${this.spec.path}: timed out after ${this.opts.requestTimeoutMs ?? 30_000} ms`, 0);
      }
      throw e;
    } finally {
      clearTimeout(timer);
      this.stopSignal.removeEventListener('abort', onStop);
    }
  }

  /** A GET with the KubeConfig's TLS and credentials (tokens, client certs, exec plugins…). */
  private async open(path: string, signal: AbortSignal): Promise<IncomingMessage> {
    const kc = this.opts.kubeConfig;
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new KubeRequestError('kubeconfig has no current cluster', 400);
    const url = new URL(server.replace(/\/$/, '') + path);
    const opts: RequestOptions = { method: 'GET', headers: {} };
    await kc.applyToHTTPSOptions(opts);
    opts.headers = { ...(opts.headers as Record<string, string>), Accept: 'application/json' };
    opts.signal = signal;
    const fn = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = fn(url, opts, (res) => {
        // A connection reset after the headers errors the response; whoever reads the body sees
        // it as a failed read, but an unread or half-read body must not crash the process.
        res.on('error', () => undefined);
        resolve(res);
      });
      req.on('error', reject);
      req.on('socket', (s) => s.setKeepAlive(true, 30_000));
      req.end();
    });
  }
}

async function statusError(res: IncomingMessage, what: string): Promise<KubeRequestError> {
  let body = '';
  try {
    for await (const chunk of res) body += (chunk as Buffer).toString();
  } catch {
    // the body is only for the message
  }
  let message = body.trim().slice(0, 300);
  try {
    const s = JSON.parse(body) as KStatus;
    if (s.message) message = s.message;
  } catch {
    // not a Status
  }
  const retryAfter = Number(res.headers['retry-after']);
  return new KubeRequestError(
    `${what}: ${message || res.statusMessage || 'error'}`,
    res.statusCode ?? 0,
    Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
  );
}

function toRequestError(e: unknown): KubeRequestError {
  if (e instanceof KubeRequestError) return e;
  const err = e as NodeJS.ErrnoException;
  // Transport errors (ECONNREFUSED, ECONNRESET, TLS, aborts): retryable.
  return new KubeRequestError(`${err.code ? `${err.code}: ` : ''}${err.message ?? String(e)}`, 0);
}
