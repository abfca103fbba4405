/**
 * The services of a node as its maps hold them, for `bpfproxy services`: frontends with their kind,
 * policy flags and affinity; their backends (slot by slot, with state); the Maglev table of each
 * external group (M, entries per backend); per-group counters. Read-only, from the pins, so it
 * works whether or not an agent runs.
 */
import { BackendFlags, SvcFlags, SvcScope } from '../abi/constants.js';
import { DROP_REASONS } from '../abi/drop-reason.js';
import type { Backend4 } from '../abi/layouts.js';
import { flagNames, kindName, protocolName } from '../abi/names.js';
import {
  frontendName,
  maglevShares,
  readBackends,
  readDropCounters,
  readMaglevTables,
  readNodeAddresses,
  readServiceCounters,
  readServiceEntries,
  type MapsWith,
} from '../dataplane/readers.js';
import { compareIPv4Text } from '../util/ip.js';

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

const KIND_ORDER = ['ClusterIP', 'ExternalIP', 'LoadBalancer', 'NodePort'];

function backendView(id: number, b: Backend4 | undefined): BackendView {
  if (!b) return { id, address: '', port: 0, protocol: '', state: ['missing'] };
  const state = [...(b.flags & BackendFlags.LOCAL ? ['local'] : []), ...(b.flags & BackendFlags.TERMINATING ? ['terminating'] : [])];
  return { id, address: b.addr, port: b.port, protocol: protocolName(b.proto), state };
}

type ServiceMaps = MapsWith<'svc4' | 'backends' | 'maglev' | 'svcstat' | 'drops' | 'nodeaddr4'>;

export function serviceTable(dp: ServiceMaps, dropReasons = DROP_REASONS): ServicesView {
  const backends = readBackends(dp);
  const { masters, slots } = readServiceEntries(dp);
  const byFrontend = new Map<string, FrontendView>();
  for (const { key: k, value: v } of masters) {
    const frontend = frontendName(k);
    byFrontend.set(frontend, {
      frontend,
      address: k.addr,
      port: k.port,
      protocol: protocolName(k.proto),
      kind: kindName(v.kind),
      serviceId: v.svc_id,
      flags: flagNames(v.flags, SvcFlags),
      affinitySeconds: v.flags & SvcFlags.AFFINITY ? v.affinity_timeout : null,
      backends: [],
      localBackends: [],
    });
  }
  for (const { key: k, value: v } of [...slots].sort((a, b) => a.key.backend_slot - b.key.backend_slot)) {
    const f = byFrontend.get(frontendName(k));
    if (!f) continue; // a slot no master counts (a write in progress): not served
    const view = { slot: k.backend_slot, ...backendView(v.backend_id, backends.get(v.backend_id)) };
    (k.scope === SvcScope.LOCAL ? f.localBackends : f.backends).push(view);
  }
  const frontends = [...byFrontend.values()].sort(
    (a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || compareIPv4Text(a.address, b.address) || a.port - b.port || a.protocol.localeCompare(b.protocol),
  );

  const maglev: MaglevView[] = [...readMaglevTables(dp)]
    .map(([svcId, table]) => ({
      serviceId: svcId,
      m: table.length,
      shares: maglevShares(table).map(([id, n]) => {
        const b = backends.get(id);
        return { backendId: id, endpoint: b ? `${b.addr}:${b.port}` : 'missing', entries: n, share: n / table.length };
      }),
    }))
    .sort((a, b) => a.serviceId - b.serviceId);

  const counters: CountersView[] = [...new Set(frontends.map((f) => f.serviceId))]
    .sort((a, b) => a - b)
    .map((id) => ({ serviceId: id, ...readServiceCounters(dp, id) }));
  const drops = readDropCounters(dp, dropReasons);
  const nodeAddresses = readNodeAddresses(dp).sort(compareIPv4Text);
  return { frontends, maglev, counters, drops, nodeAddresses };
}
