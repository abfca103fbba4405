/**
 * kube-proxy's two HTTP faces. The health server (default 0.0.0.0:10256) answers /healthz and
 * /livez; the metrics server (default 127.0.0.1:10249) answers /metrics and /proxyMode.
 *
 * Health follows kube-proxy's ProxierHealthServer: healthy unless an update was queued and has
 * not been applied within 2 × syncPeriod; /healthz also fails while the node is being deleted.
 * A sync that throws applies nothing; one whose writes failed applied its update only when every
 * failure was for want of room (synced()).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { AgentMetrics } from './metrics.js';

export const PROXY_MODE = 'bpfproxy';
/** Map write errors that mean "no room" (a full hash map; an LPM trie's ENOSPC). */
const CAPACITY_CODES = new Set(['E2BIG', 'ENOSPC']);

export class ProxierHealth {
  private lastUpdated = 0;
  private oldestPendingQueued: number | undefined;
  private nodeDeleting = false;
  private sourceDegraded: string | undefined;

  constructor(
    private readonly syncPeriodMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** An update is waiting for the next sync. */
  queued(): void {
    this.oldestPendingQueued ??= this.now();
  }

  /**
   * A sync finished, with these failed writes. A write refused for want of room (a Service too large
   * for its map: E2BIG, ENOSPC) is the input's problem, reported and retried, and every other
   * Service is served: the node stays in service. Any other failure (EPERM, EBADF, ENOMEM…) means
   * this node's datapath cannot take updates: as kube-proxy's after a failing iptables-restore, its
   * /healthz fails once the update has waited 2 × syncPeriod, so that load balancers move away.
   */
  synced(startedAt: number, failures: readonly { code: string }[]): void {
    if (failures.every((f) => CAPACITY_CODES.has(f.code))) this.updated(startedAt);
  }

  /** A sync applied everything queued before it started. */
  updated(startedAt: number): void {
    this.lastUpdated = this.now();
    if (this.oldestPendingQueued !== undefined && this.oldestPendingQueued <= startedAt) this.oldestPendingQueued = undefined;
  }

  setNodeDeleting(deleting: boolean): void {
    this.nodeDeleting = deleting;
  }

  /** The cluster source is unreachable: the dataplane still serves what it has, but is stale. */
  setSourceDegraded(reason: string | undefined): void {
    this.sourceDegraded = reason;
  }

  status(forLivez: boolean): { healthy: boolean; body: Record<string, unknown> } {
    const now = this.now();
    const stale = this.oldestPendingQueued !== undefined && now - this.oldestPendingQueued > 2 * this.syncPeriodMs;
    const healthy = !stale && (forLivez || !this.nodeDeleting);
    return {
      healthy,
      body: {
        lastUpdated: new Date(this.lastUpdated || now).toISOString(),
        currentTime: new Date(now).toISOString(),
        nodeEligible: !this.nodeDeleting,
        ...(this.sourceDegraded ? { degraded: this.sourceDegraded } : {}),
      },
    };
  }
}

export interface Listening {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export function listen(server: Server, host: string, port: number): Promise<Listening> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
      });
    });
  });
}

function send(res: ServerResponse, code: number, contentType: string, body: string): void {
  res.writeHead(code, { 'Content-Type': contentType, 'X-Content-Type-Options': 'nosniff' });
  res.end(body);
}

export function healthServer(health: ProxierHealth, metrics: AgentMetrics): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz' && path !== '/livez') return send(res, 404, 'text/plain', '404 page not found\n');
    const { healthy, body } = health.status(path === '/livez');
    const code = healthy ? 200 : 503;
    (path === '/healthz' ? metrics.healthz : metrics.livez).inc({ code: String(code) });
    send(res, code, 'application/json', JSON.stringify(body));
  });
}

export function metricsServer(metrics: AgentMetrics): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/proxyMode') return send(res, 200, 'text/plain; charset=utf-8', PROXY_MODE);
    if (path === '/metrics') {
      metrics.registry
        .metrics()
        .then((text) => send(res, 200, metrics.registry.contentType, text))
        .catch((e: Error) => send(res, 500, 'text/plain', `${e.message}\n`));
      return;
    }
    send(res, 404, 'text/plain', '404 page not found\n');
  });
}
