/**
 * The specs' cluster as a lab in --api kube mode, in this process: a lab of namespaces (2 nodes,
 * 2 outside clients), a real control plane, the lab kubelet and cloud controller, and one bpfproxy
 * agent per node using the ServiceAccount of deploy/ (KubeLab). Requests go from the clients' and
 * pods' namespaces with the lab's client.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { resolveAssets } from '../../ts/kube/binaries.js';
import { KubeLab } from '../../ts/lab/kube-api/kube-mode.js';
import { runId } from '../../ts/lab/net/netns.js';
import { Lab } from '../../ts/lab/topology.js';
import type { Answer, ClusterDriver, From, Place, RequestSpec } from './_driver.js';

/** Any image runs the lab's hostname server; this is the one a real cluster would run. */
export const LAB_HOSTNAME_IMAGE = 'registry.k8s.io/e2e-test-images/agnhost:2.53';

export class LabDriver implements ClusterDriver {
  readonly kind = 'lab';
  readonly namespace = 'bpfproxy-e2e';
  readonly externalIP = '198.19.255.200';

  private constructor(
    readonly lab: Lab,
    readonly kube: KubeLab,
  ) {}

  static async start(log: (line: string) => void = () => {}): Promise<LabDriver> {
    const assetsDir = await resolveAssets(log);
    const lab = await Lab.up({ name: `e2e-${runId()}`, nodes: 2, clients: 2 });
    try {
      const kube = await KubeLab.start(lab, { assetsDir });
      return new LabDriver(lab, kube);
    } catch (e) {
      await lab.down().catch(() => {});
      throw e;
    }
  }

  get nodes(): readonly Place[] {
    return this.lab.nodes.map((n) => ({ name: n.name, address: n.address }));
  }

  get clients(): readonly Place[] {
    return this.lab.clients.map((c) => ({ name: c.name, address: c.address }));
  }

  hostnameContainer(port: number): { image: string; command: string[] } {
    return { image: LAB_HOSTNAME_IMAGE, command: ['/agnhost', 'netexec', `--http-port=${port}`, `--udp-port=${port}`] };
  }

  kubectl(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    return this.kube.kubectl(args, opts);
  }

  async request(from: From, spec: RequestSpec): Promise<Answer[]> {
    const source = 'client' in from ? from.client : this.kube.labPodName(this.namespace, from.pod);
    const protocol = spec.protocol ?? 'TCP';
    const ask = spec.ask ?? 'hostname';
    const answers = await this.lab.request(source, {
      address: spec.address,
      port: spec.port,
      protocol,
      count: spec.count ?? 1,
      timeoutMs: spec.timeoutMs ?? 2000,
      concurrency: 20,
      // The hostname server answers its name to a TCP client that sends nothing: no HTTP needed, and
      // none of the race between its 25 ms wait for a first line and a slow client's request.
      ...(protocol === 'UDP' ? { payload: ask } : ask === 'hostname' ? {} : { http: `/${ask}` }),
    });
    // Lab pods are named NAMESPACE-NAME outside `default`; the specs know pods by their own names.
    const prefix = `${this.namespace}-`;
    return answers.map((a) => {
      if (!a.ok) return { ok: false, error: a.error, detail: a.message };
      const body = dechunk(a.answer);
      return { ok: true, answer: body.startsWith(prefix) ? body.slice(prefix.length) : body };
    });
  }

  async loadBalancerIP(service: string): Promise<string> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const out = await this.kubectl(['get', 'service', '-n', this.namespace, service, '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}']);
      if (out.trim()) return out.trim();
      if (Date.now() > deadline) throw new Error(`service ${service}: no LoadBalancer ingress after 30 s`);
      await sleep(200);
    }
  }

  /** Clients already route 198.19.255.0/24 to the nodes (ECMP): nothing to do. */
  async routeToNodes(ip: string): Promise<void> {
    if (!ip.startsWith('198.19.255.')) throw new Error(`${ip} is outside the lab's external range 198.19.255.0/24`);
  }

  async close(): Promise<void> {
    await this.kube.stop().catch(() => {});
    await this.lab.down();
  }
}

/**
 * The lab client hands back an HTTP body as sent; a server may send it chunked (Node's http server
 * does for a response without Content-Length, e.g. the agents' health-check node ports). curl, on
 * real clusters, decodes it: so do we.
 */
export function dechunk(body: string): string {
  // (The client trims the body, so the last chunk's CRLFs may be gone.)
  if (!/^[0-9a-fA-F]+\r\n/.test(body) || !/\r\n0(\r\n)*$/.test(body)) return body;
  let out = '';
  let rest = body;
  for (;;) {
    if (/^0(\r\n)*$/.test(rest)) return out;
    const m = /^([0-9a-fA-F]+)\r\n/.exec(rest);
    if (!m) return body;
    const size = parseInt(m[1]!, 16);
    if (size === 0) return out;
    out += rest.slice(m[0].length, m[0].length + size);
    rest = rest.slice(m[0].length + size + 2);
  }
}
