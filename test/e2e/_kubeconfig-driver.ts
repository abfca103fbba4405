/**
 * The specs' cluster as an existing cluster (kind, by hack/kind-e2e.sh) reached by a kubeconfig:
 *
 *   BPFPROXY_E2E_KUBECONFIG=/path/kubeconfig   the cluster (bpfproxy deployed, no kube-proxy)
 *   BPFPROXY_E2E_CLIENTS=c1,c2                 ≥ 2 Docker containers outside the cluster, on the
 *                                              nodes' network, with sh, curl and ip, and NET_ADMIN
 *                                              (e.g. `docker run -d --network kind --cap-add NET_ADMIN
 *                                              --name c1 registry.k8s.io/e2e-test-images/agnhost:2.53 pause`)
 *   BPFPROXY_E2E_KUBECTL=kubectl               optional; kubectl on PATH otherwise
 *   BPFPROXY_E2E_LB_IPS=198.19.255.0/24        optional; where LoadBalancer IPs come from when the
 *                                              cluster has no load balancer implementation
 *
 * Requests from pods run curl/nc inside the pod (`kubectl exec`), from clients inside the client
 * container (`docker exec`). LoadBalancer and external IPs reach the nodes the way the lab's clients
 * reach them: a /32 route in each client container via a node (as a cloud load balancer in VIP mode
 * would deliver them). When nothing in the cluster assigns an ingress IP within a few seconds this
 * driver does it, like the lab's cloud controller. Nothing here runs on the lab machine (no Docker).
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Answer, ClusterDriver, From, Place, RequestSpec } from './_driver.js';

const AGNHOST = 'registry.k8s.io/e2e-test-images/agnhost:2.53';

function exec(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20, env: opts.env ?? process.env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** curl's and nc's exit codes, in the lab client's words. */
function curlError(code: number): string {
  return ({ 6: 'unreachable', 7: 'refused', 28: 'timeout', 52: 'reset', 56: 'reset' } as Record<number, string>)[code] ?? `exit ${code}`;
}

/** A shell loop doing `count` requests, one line each: "OK answer" or "ERR code". */
function requestScript(spec: RequestSpec): string {
  const seconds = Math.max(1, Math.ceil((spec.timeoutMs ?? 2000) / 1000));
  const ask = spec.ask ?? 'hostname';
  const one =
    (spec.protocol ?? 'TCP') === 'TCP'
      ? `out=$(curl -s -m ${seconds} http://${spec.address}:${spec.port}/${ask}); rc=$?`
      : `out=$(echo ${ask} | nc -u -w ${seconds} ${spec.address} ${spec.port}); rc=$?; [ $rc -eq 0 ] && [ -z "$out" ] && rc=28`;
  return `i=0; while [ $i -lt ${spec.count ?? 1} ]; do ${one}; if [ $rc -eq 0 ]; then echo "OK $out"; else echo "ERR $rc"; fi; i=$((i+1)); done`;
}

function parseAnswers(out: string): Answer[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('OK ') || l.startsWith('ERR '))
    .map((l) => (l.startsWith('OK ') ? { ok: true, answer: l.slice(3).trim() } : { ok: false, error: curlError(Number(l.slice(4))) }));
}

export class KubeconfigDriver implements ClusterDriver {
  readonly kind = 'kubeconfig';
  readonly namespace = 'bpfproxy-e2e';
  readonly externalIP: string;
  private readonly kubectlBin = process.env.BPFPROXY_E2E_KUBECTL ?? 'kubectl';
  private lbNext = 1;

  private constructor(
    private readonly kubeconfig: string,
    readonly nodes: readonly Place[],
    readonly clients: readonly Place[],
    private readonly lbPrefix: string,
  ) {
    this.externalIP = `${lbPrefix}250`;
  }

  static async start(kubeconfig: string): Promise<KubeconfigDriver> {
    const names = (process.env.BPFPROXY_E2E_CLIENTS ?? '').split(',').filter(Boolean);
    if (names.length < 2) throw new Error('BPFPROXY_E2E_CLIENTS must name at least two client containers (see test/e2e/kubeconfig-driver.ts)');
    const kubectl = (args: string[]) => exec(process.env.BPFPROXY_E2E_KUBECTL ?? 'kubectl', ['--kubeconfig', kubeconfig, ...args]);
    const nodeList = JSON.parse(await kubectl(['get', 'nodes', '-o', 'json'])) as {
      items: Array<{ metadata: { name: string }; status: { addresses: Array<{ type: string; address: string }> } }>;
    };
    const nodes = nodeList.items.map((n) => ({ name: n.metadata.name, address: n.status.addresses.find((a) => a.type === 'InternalIP')!.address }));
    const clients: Place[] = [];
    for (const name of names) {
      const address = (await exec('docker', ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', name])).trim().split(/\s+/)[0]!;
      clients.push({ name, address });
    }
    // A namespace left by an earlier, interrupted run would make the specs' `create namespace` fail.
    await kubectl(['delete', 'namespace', 'bpfproxy-e2e', '--ignore-not-found', '--wait=true', '--timeout=120s']);
    const range = process.env.BPFPROXY_E2E_LB_IPS ?? '198.19.255.0/24';
    const m = /^(\d+\.\d+\.\d+\.)0\/24$/.exec(range);
    if (!m) throw new Error(`BPFPROXY_E2E_LB_IPS must be a /24 such as 198.19.255.0/24, not ${range}`);
    return new KubeconfigDriver(kubeconfig, nodes, clients, m[1]!);
  }

  hostnameContainer(port: number): { image: string; command: string[] } {
    return { image: AGNHOST, command: ['/agnhost', 'netexec', `--http-port=${port}`, `--udp-port=${port}`] };
  }

  kubectl(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    return exec(this.kubectlBin, ['--kubeconfig', this.kubeconfig, ...args], opts);
  }

  async request(from: From, spec: RequestSpec): Promise<Answer[]> {
    const script = requestScript(spec);
    const bound = (spec.count ?? 1) * ((spec.timeoutMs ?? 2000) + 1000) + 30_000;
    const out =
      'client' in from
        ? await exec('docker', ['exec', from.client, 'sh', '-c', script], { timeoutMs: bound })
        : await this.kubectl(['exec', '-n', this.namespace, from.pod, '--', 'sh', '-c', script], { timeoutMs: bound });
    return parseAnswers(out);
  }

  async loadBalancerIP(service: string): Promise<string> {
    const get = async () =>
      (await this.kubectl(['get', 'service', '-n', this.namespace, service, '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}'])).trim();
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const ip = await get();
      if (ip) return ip;
      await sleep(500);
    }
    // No load balancer implementation answered: act as the lab's cloud controller does.
    const ip = `${this.lbPrefix}${this.lbNext++}`;
    await this.kubectl(['patch', 'service', '-n', this.namespace, service, '--subresource=status', '-p', JSON.stringify({ status: { loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } } })]);
    return ip;
  }

  async routeToNodes(ip: string): Promise<void> {
    const via = this.nodes[this.nodes.length - 1]!.address;
    for (const c of this.clients) await exec('docker', ['exec', c.name, 'ip', 'route', 'replace', `${ip}/32`, 'via', via]);
  }

  async close(): Promise<void> {
    await this.kubectl(['delete', 'namespace', this.namespace, '--ignore-not-found', '--wait=false']).catch(() => {});
  }
}
