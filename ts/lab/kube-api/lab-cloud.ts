/**
 * The lab's "cloud controller": there is no cloud, so this gives every LoadBalancer Service an
 * ingress IP from the lab's external range (198.19.255.0/24), which outside clients already route to
 * the nodes (docs/lab.md), as a cloud's service controller would after provisioning a load balancer.
 *
 * - `spec.loadBalancerIP` (deprecated, still honoured by clouds) is used when set and in range.
 * - An IP, once given, stays with its Service; free IPs are chosen lowest first, skipping every IP
 *   another Service holds as ingress or lists in externalIPs.
 * - A Service with a `loadBalancerClass` belongs to another implementation and is left alone.
 * - A Service that stops being a LoadBalancer loses its ingress (the service controller does that).
 * Level-triggered over a list-watch of Services, like the kubelet.
 */
import { ListWatch } from '../../kube/list-watch.js';
import type { KubeApiError, KubeRest } from '../../kube/rest.js';

/** 198.19.255.1 … .254 (the range's network and broadcast addresses are left out). */
const RANGE_PREFIX = '198.19.255.';
const FIRST_HOST = 1;
const LAST_HOST = 254;

interface ServiceObject {
  metadata: { name: string; namespace: string; uid: string };
  spec?: { type?: string; loadBalancerIP?: string; loadBalancerClass?: string; externalIPs?: string[] };
  status?: { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string }> } };
}

const inRange = (ip: string | undefined): ip is string => {
  if (!ip?.startsWith(RANGE_PREFIX)) return false;
  const host = Number(ip.slice(RANGE_PREFIX.length));
  return Number.isInteger(host) && host >= FIRST_HOST && host <= LAST_HOST;
};

export class LabCloud {
  private readonly services: ListWatch<ServiceObject>;
  /** uid → the IP it was given: it stays with the Service, whatever a stale watch event says. */
  private readonly given = new Map<string, string>();
  /** Services with a status patch in flight. */
  private readonly pending = new Set<string>();
  private stopped = false;
  private tick: NodeJS.Timeout | undefined;

  constructor(
    private readonly rest: KubeRest,
    private readonly log: (m: string) => void = () => {},
  ) {
    this.services = new ListWatch<ServiceObject>({ rest, path: '/api/v1/services', onChange: () => this.reconcile(), log });
  }

  async start(): Promise<void> {
    this.services.start();
    await this.services.whenSynced();
    this.tick = setInterval(() => this.reconcile(), 2000);
    this.reconcile();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.tick);
    await this.services.stop();
  }

  private reconcile(): void {
    if (this.stopped || !this.services.synced) return;
    const all = [...this.services.store.values()];
    const mine = (svc: ServiceObject) => svc.spec?.type === 'LoadBalancer' && !svc.spec.loadBalancerClass;
    const live = new Set(all.filter(mine).map((s) => s.metadata.uid));
    for (const uid of this.given.keys()) if (!live.has(uid)) this.given.delete(uid);
    const held = new Set<string>(this.given.values());
    for (const s of all) {
      for (const i of s.status?.loadBalancer?.ingress ?? []) if (i.ip) held.add(i.ip);
      for (const ip of s.spec?.externalIPs ?? []) held.add(ip);
    }
    for (const svc of all) {
      const { uid } = svc.metadata;
      if (this.pending.has(uid)) continue;
      const ingress = svc.status?.loadBalancer?.ingress ?? [];
      if (!mine(svc)) {
        if (ingress.length > 0 && !svc.spec?.loadBalancerClass) this.patch(svc, undefined);
        continue;
      }
      const asked = svc.spec?.loadBalancerIP;
      const current = ingress.length === 1 ? ingress[0]?.ip : undefined;
      const want = inRange(asked) ? asked : (this.given.get(uid) ?? (inRange(current) ? current : this.freeIp(held)));
      if (!want) {
        this.log(`service ${svc.metadata.namespace}/${svc.metadata.name}: no free LoadBalancer IP in ${RANGE_PREFIX}0/24`);
        continue;
      }
      held.add(want);
      this.given.set(uid, want);
      if (current !== want || ingress.length !== 1) this.patch(svc, want);
    }
  }

  private freeIp(held: Set<string>): string | undefined {
    for (let h = FIRST_HOST; h <= LAST_HOST; h++) if (!held.has(RANGE_PREFIX + h)) return RANGE_PREFIX + h;
    return undefined;
  }

  private patch(svc: ServiceObject, ip: string | undefined): void {
    const { namespace, name, uid } = svc.metadata;
    this.pending.add(uid);
    const status = { loadBalancer: ip ? { ingress: [{ ip, ipMode: 'VIP' }] } : { ingress: null } };
    this.rest
      .patch(`/api/v1/namespaces/${namespace}/services/${name}/status`, { status })
      .then(() => {
        this.log(`service ${namespace}/${name}: ${ip ? `LoadBalancer ingress ${ip}` : 'LoadBalancer ingress removed'}`);
      })
      .catch((e: KubeApiError) => {
        if (!e.notFound) this.log(`service ${namespace}/${name}: ${e.message}`);
      })
      .finally(() => this.pending.delete(uid));
  }
}
