/**
 * Health-check node ports of `externalTrafficPolicy: Local` Services, answered exactly as
 * kube-proxy does, so that cloud load balancers send traffic only to nodes with a local endpoint:
 * 200 when the node has at least one local ready endpoint and the proxy is healthy, else 503,
 * with a JSON body and the same headers.
 */
import { createServer } from 'node:http';

import { listen, type Listening } from './health.js';

export interface HealthCheck {
  port: number;
  namespace: string;
  name: string;
  /** Local endpoints that are ready (terminating-only counts as 0). */
  localEndpoints: number;
}

export class HealthCheckNodePorts {
  private readonly servers = new Map<number, { check: HealthCheck; listening: Listening }>();

  constructor(
    private readonly proxyHealthy: () => boolean,
    private readonly host = '0.0.0.0',
    private readonly onError: (port: number, e: Error) => void = () => {},
  ) {}

  /** Opens, updates and closes servers so that exactly `checks` are served. */
  async sync(checks: HealthCheck[]): Promise<void> {
    const wanted = new Map(checks.map((c) => [c.port, c]));
    for (const [port, entry] of this.servers) {
      if (!wanted.has(port)) {
        this.servers.delete(port);
        await entry.listening.close();
      }
    }
    for (const [port, check] of wanted) {
      const existing = this.servers.get(port);
      if (existing) {
        existing.check = check;
        continue;
      }
      const entry = { check, listening: undefined as unknown as Listening };
      const server = createServer((_req, res) => {
        const c = entry.check;
        const healthy = this.proxyHealthy();
        const code = c.localEndpoints > 0 && healthy ? 200 : 503;
        res.writeHead(code, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
        res.end(JSON.stringify({ service: { namespace: c.namespace, name: c.name }, localEndpoints: c.localEndpoints, serviceProxyHealthy: healthy }));
      });
      try {
        entry.listening = await listen(server, this.host, port);
        this.servers.set(port, entry);
      } catch (e) {
        // A port taken by something else must not stop the other services' health checks.
        this.onError(port, e as Error);
      }
    }
  }

  ports(): number[] {
    return [...this.servers.keys()].sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    await this.sync([]);
  }
}
