/**
 * The services of a node as its maps hold them, for `bpfproxy services`: frontends with their kind,
 * policy flags and affinity; their backends (slot by slot, with state); the Maglev table of each
 * external group (M, entries per backend); per-group counters. Read-only, from the pins, so it
 * works whether or not an agent runs.
 */
import { BackendFlags, IPPROTO, SvcFlags, SvcKind, SvcScope } from '../abi/constants.js';
import { DropReason } from '../abi/drop-reason.js';
import type { Backend4 } from '../abi/layouts.js';
import { sumPerCpu } from '../dataplane/typed-map.js';
import type { DatapathMaps } from '../dataplane/typed-map.js';
import { native } from '../addon/index.js';

export interface BackendView {
  id: number;
  address: string;
  port: number;
  protocol: string;
  /** local, terminating; 'missing' when a slot names an id be_v1 does not hold. */
  state: string[];
}

export interface FrontendView {
  frontend: string;
  address: string;
  port: number;
  protocol: string;
  kind: string;
  serviceId: number;
  flags: string[];
  affinitySeconds: number | null;
  backends: (BackendView & { slot: number })[];
  localBackends: (BackendView & { slot: number })[];
}

export interface MaglevView {
  serviceId: number;
  m: number;
  shares: { backendId: number; endpoint: string; entries: number; share: number }[];
}

export interface CountersView {
  serviceId: number;
  packets: number;
  bytes: number;
  newFlows: number;
}

export interface ServicesView {
  frontends: FrontendView[];
  maglev: MaglevView[];
  counters: CountersView[];
  drops: { reason: string; packets: number; bytes: number }[];
  nodeAddresses: string[];
}

/** Every DropReason, by number and name (the enum shared with bpf/include/bpfproxy/drop_reason.h). */
export const DROP_REASONS: readonly { value: number; name: string }[] = Object.entries(DropReason)
  .filter(([, v]) => typeof v === 'number')
  .map(([name, value]) => ({ name, value: value as number }));

const PROTO_NAME: Record<number, string> = { [IPPROTO.TCP]: 'TCP', [IPPROTO.UDP]: 'UDP', [IPPROTO.SCTP]: 'SCTP' };
const KIND_NAME: Record<number, string> = {
  [SvcKind.CLUSTER_IP]: 'ClusterIP',
  [SvcKind.NODE_PORT]: 'NodePort',
  [SvcKind.LOAD_BALANCER]: 'LoadBalancer',
  [SvcKind.EXTERNAL_IP]: 'ExternalIP',
};
const KIND_ORDER = ['ClusterIP', 'ExternalIP', 'LoadBalancer', 'NodePort'];

function names(flags: number, table: Record<string, number>): string[] {
  return Object.entries(table)
    .filter(([, bit]) => flags & bit)
    .map(([n]) => n);
}

function backendView(id: number, b: Backend4 | undefined): BackendView {
  if (!b) return { id, address: '', port: 0, protocol: '', state: ['missing'] };
  const state = [...(b.flags & BackendFlags.LOCAL ? ['local'] : []), ...(b.flags & BackendFlags.TERMINATING ? ['terminating'] : [])];
  return { id, address: b.addr, port: b.port, protocol: PROTO_NAME[b.proto] ?? String(b.proto), state };
}

const ipKey = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);

export function readServices(dp: { maps: DatapathMaps }, dropReasons = DROP_REASONS): ServicesView {
  const m = dp.maps;
  const backends = new Map(m.backends.entries());
  const masters = new Map<string, FrontendView>();
  const slots: { fe: string; scope: number; slot: number; backendId: number }[] = [];
  for (const [k, v] of m.svc4.entries()) {
    const protocol = PROTO_NAME[k.proto] ?? String(k.proto);
    const fe = `${k.addr}:${k.port}/${protocol}`;
    if (k.scope === SvcScope.ALL && k.backend_slot === 0) {
      masters.set(fe, {
        frontend: fe,
        address: k.addr,
        port: k.port,
        protocol,
        kind: KIND_NAME[v.kind] ?? `kind ${v.kind}`,
        serviceId: v.svc_id,
        flags: names(v.flags, SvcFlags),
        affinitySeconds: v.flags & SvcFlags.AFFINITY ? v.affinity_timeout : null,
        backends: [],
        localBackends: [],
      });
    } else {
      slots.push({ fe, scope: k.scope, slot: k.backend_slot, backendId: v.backend_id });
    }
  }
  for (const s of slots.sort((a, b) => a.slot - b.slot)) {
    const f = masters.get(s.fe);
    if (!f) continue; // a slot no master counts (a write in progress): not served
    const view = { slot: s.slot, ...backendView(s.backendId, backends.get(s.backendId)) };
    (s.scope === SvcScope.LOCAL ? f.localBackends : f.backends).push(view);
  }
  const frontends = [...masters.values()].sort(
    (a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || ipKey(a.address) - ipKey(b.address) || a.port - b.port || a.protocol.localeCompare(b.protocol),
  );

  const maglev: MaglevView[] = [];
  for (const [svcId, innerId] of m.maglev.entries()) {
    const inner = native.BpfMap.fromId(innerId);
    try {
      const { values, count } = inner.dump();
      const share = new Map<number, number>();
      for (let i = 0; i < count; i++) share.set(values.readUInt32LE(4 * i), (share.get(values.readUInt32LE(4 * i)) ?? 0) + 1);
      maglev.push({
        serviceId: svcId,
        m: count,
        shares: [...share]
          .sort(([a], [b]) => a - b)
          .map(([id, n]) => {
            const b = backends.get(id);
            return { backendId: id, endpoint: b ? `${b.addr}:${b.port}` : 'missing', entries: n, share: n / count };
          }),
      });
    } finally {
      inner.close();
    }
  }
  maglev.sort((a, b) => a.serviceId - b.serviceId);

  const counters: CountersView[] = [];
  for (const id of [...new Set(frontends.map((f) => f.serviceId))].sort((a, b) => a - b)) {
    const s = sumPerCpu(m.svcstat.getPerCpu(id));
    counters.push({ serviceId: id, packets: Number(s?.packets ?? 0n), bytes: Number(s?.bytes ?? 0n), newFlows: Number(s?.new_flows ?? 0n) });
  }
  const drops = dropReasons.map((r) => {
    const s = sumPerCpu(m.drops.getPerCpu(r.value));
    return { reason: r.name, packets: Number(s?.packets ?? 0n), bytes: Number(s?.bytes ?? 0n) };
  });
  const nodeAddresses = m.nodeaddr4
    .entries()
    .map(([a]) => a)
    .sort((a, b) => ipKey(a) - ipKey(b));
  return { frontends, maglev, counters, drops, nodeAddresses };
}
