/**
 * Shared pieces of the tests against a real control plane: when they run (always under CI=true,
 * building the binaries if needed; elsewhere only when the binaries are there), a recorder of
 * source events, a TCP proxy that can cut the source off the apiserver, and bounded waits.
 */
import test, { type ExecutionContext } from 'ava';
import { createServer, connect, type Server, type Socket } from 'node:net';

import { findAssets, resolveAssets } from '../../ts/kube/binaries.js';
import { ControlPlane, type ControlPlaneOptions } from '../../ts/kube/control-plane.js';
import { objectKey, type ClusterEvents } from '../../ts/sources/source.js';
import { isCI, isRoot } from '../helpers/env.js';

const haveAssets = findAssets() !== undefined;
if (!isCI && !haveAssets) {
  console.warn(
    'test/kube: skipped: no Kubernetes test binaries (run hack/k8s-test-binaries.sh or set KUBEBUILDER_ASSETS)',
  );
}
/** Under CI these tests always run (a missing build is built); elsewhere they need the binaries. */
const runKube = isCI || haveAssets;
export const kubeTest = runKube ? test.serial : test.serial.skip;
export const kubeBefore = runKube ? test.before : test.before.skip;
export const kubeAfterAlways = runKube ? test.after.always : test.after.always.skip;
/** Lab tests in --api kube mode need the binaries and root (namespaces, BPF). */
const runLabKube = runKube && (isRoot || isCI);
export const labKubeTest = runLabKube ? test.serial : test.serial.skip;
export const labKubeBefore = runLabKube ? test.before : test.before.skip;
export const labKubeAfterAlways = runLabKube ? test.after.always : test.after.always.skip;

/** Starts a plane for a test file; under CI a cold binaries build may take many minutes. */
export async function startPlane(t: ExecutionContext, opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  if (!findAssets()) {
    t.timeout(45 * 60_000, 'building the Kubernetes test binaries');
    await resolveAssets((l) => t.log(l));
  }
  t.timeout(3 * 60_000, 'starting etcd and kube-apiserver');
  return ControlPlane.start(opts);
}

interface Obj {
  metadata?: { namespace?: string; name?: string; resourceVersion?: string };
}

/** Applies source events to maps (what an agent would hold) and keeps a log of them. */
export function recorder() {
  const services = new Map<string, Obj>();
  const slices = new Map<string, Obj>();
  const nodes = new Map<string, Obj>();
  const serviceCIDRs = new Map<string, Obj>();
  const log: string[] = [];
  const health: Array<{ healthy: boolean; reason?: string }> = [];
  let syncedAt = -1;
  const apply = (kind: string, m: Map<string, Obj>, prev: Obj | undefined, cur: Obj | undefined) => {
    const key = objectKey((cur ?? prev)!);
    // The previous object must be what we were told last time: proves updates carry it.
    const held = m.get(key);
    const prevOk = prev === undefined ? held === undefined : held?.metadata?.resourceVersion === prev.metadata?.resourceVersion;
    log.push(`${kind} ${prev ? (cur ? 'update' : 'delete') : 'add'} ${key}${prevOk ? '' : ' (previous mismatch)'}`);
    if (cur) m.set(key, cur);
    else m.delete(key);
  };
  const events: ClusterEvents = {
    service: (p, c) => apply('service', services, p, c),
    endpointSlice: (p, c) => apply('slice', slices, p, c),
    node: (p, c) => apply('node', nodes, p, c),
    serviceCIDR: (p, c) => apply('servicecidr', serviceCIDRs, p, c),
    synced: () => (syncedAt = log.length),
    health: (healthy, reason) => health.push(reason === undefined ? { healthy } : { healthy, reason }),
  };
  return {
    events,
    services,
    slices,
    nodes,
    serviceCIDRs,
    log,
    health,
    get synced() {
      return syncedAt >= 0;
    },
    /** The log entries before `synced` fired. */
    beforeSynced: () => log.slice(0, Math.max(syncedAt, 0)),
    get healthy() {
      return health.length === 0 || health[health.length - 1]!.healthy;
    },
  };
}

/** namespace/name → resourceVersion of what the apiserver holds now. */
export async function serverState(cp: ControlPlane, resource: string): Promise<Map<string, string>> {
  const list = JSON.parse(await cp.kubectl(['get', resource, '-A', '-o', 'json'])) as { items: Obj[] };
  return new Map(list.items.map((o) => [objectKey(o), o.metadata?.resourceVersion ?? '']));
}

export function sameState(held: Map<string, Obj>, server: Map<string, string>): boolean {
  if (held.size !== server.size) return false;
  for (const [k, rv] of server) if (held.get(k)?.metadata?.resourceVersion !== rv) return false;
  return true;
}

export async function apply(cp: ControlPlane, ...objects: unknown[]): Promise<void> {
  await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
}

export const service = (ns: string, name: string, port = 80, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { namespace: ns, name, labels },
  spec: { ports: [{ name: 'http', port, protocol: 'TCP', targetPort: 8080 }] },
});

export const slice = (ns: string, name: string, svc: string, ips: string[]) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { namespace: ns, name, labels: { 'kubernetes.io/service-name': svc } },
  addressType: 'IPv4',
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});

export const node = (name: string, zone: string) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, labels: { 'topology.kubernetes.io/zone': zone } },
});

/** A loopback TCP relay to the apiserver that a test can cut (existing and new connections). */
export class CuttableProxy {
  private sockets = new Set<Socket>();
  private cut = false;
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<CuttableProxy> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const proxy = new CuttableProxy(server, (server.address() as { port: number }).port);
    server.on('connection', (client) => {
      if (proxy.cut) return client.destroy();
      const upstream = connect(targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        proxy.sockets.add(s);
        s.on('close', () => proxy.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    return proxy;
  }

  setCut(cut: boolean): void {
    this.cut = cut;
    if (cut) for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.setCut(true);
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
