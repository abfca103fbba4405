/**
 * Rebuilds the id bookkeeping of a previous agent from the pinned maps, so that a restarted agent
 * gives every live service group and backend the id it already has in the maps (and writes
 * nothing when nothing changed), and never hands a fresh key an id that conntrack or affinity
 * entries still name.
 *
 *   - backends: be_v1 holds id → address:port/protocol, which is the model's backend key;
 *   - service groups: svc4_v1 masters hold frontend → svc_id, and a desired state computed
 *     without service ids tells which group each frontend belongs to; a group whose frontends in
 *     the maps all carry one id takes it back (first group by key if two claim one id);
 *   - `next` lies beyond every id seen anywhere: svc4_v1, be_v1, maglev_v1, ct4_v4, aff4_v1.
 * Ids freed before the restart that no map names any more are forgotten, which is harmless.
 */
import type { Datapath } from '../dataplane/loader.js';
import { backendName, frontendName, readAffinity, readBackends, readConntrack, readMaglevIds, readServiceEntries } from '../dataplane/readers.js';
import type { DesiredState, IdAllocatorSnapshot, IdState } from '../model/index.js';

const U32_MAX = 0xffffffff;

export interface MapIds {
  /** "addr:port/PROTO" of each master → its svc_id. */
  frontends: Map<string, number>;
  /** backend key → id. */
  backends: Map<string, number>;
  maxServiceId: number;
  maxBackendId: number;
}

export function readMapIds(dp: Datapath): MapIds {
  const frontends = new Map<string, number>();
  let maxServiceId = 0;
  let maxBackendId = 0;
  const { masters, slots } = readServiceEntries(dp);
  for (const { key, value } of masters) {
    maxServiceId = Math.max(maxServiceId, value.svc_id);
    frontends.set(frontendName(key), value.svc_id);
  }
  for (const { value } of slots) {
    maxServiceId = Math.max(maxServiceId, value.svc_id);
    maxBackendId = Math.max(maxBackendId, value.backend_id);
  }
  const backends = new Map<string, number>();
  for (const [id, b] of readBackends(dp)) {
    backends.set(backendName(b), id);
    maxBackendId = Math.max(maxBackendId, id);
  }
  for (const svcId of readMaglevIds(dp)) maxServiceId = Math.max(maxServiceId, svcId);
  for (const [, v] of readConntrack(dp)) {
    maxServiceId = Math.max(maxServiceId, v.svc_id);
    maxBackendId = Math.max(maxBackendId, v.backend_id);
  }
  for (const [k, v] of readAffinity(dp)) {
    maxServiceId = Math.max(maxServiceId, k.svc_id);
    maxBackendId = Math.max(maxBackendId, v.backend_id);
  }
  return { frontends, backends, maxServiceId, maxBackendId };
}

function snapshot(assigned: Map<string, number>, maxSeen: number): IdAllocatorSnapshot {
  return {
    assigned: [...assigned].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    released: [],
    next: Math.min(maxSeen + 1, U32_MAX),
    first: 1,
    last: U32_MAX,
  };
}

/**
 * The ids to continue from. `probe(backendIds)` computes the desired state with the recovered
 * backend ids and no service ids (any ids: only the frontend → group relation is used).
 */
export function recoverIds(ids: MapIds, probe: (previousIds: IdState) => DesiredState): IdState {
  const backends = snapshot(ids.backends, ids.maxBackendId);
  const probeState = probe({ backends, services: snapshot(new Map(), 0) });
  const groupKeyById = new Map(probeState.services.map((s) => [s.id, s.key]));
  // Group key → the old ids its frontends carry in the maps.
  const claims = new Map<string, Set<number>>();
  for (const f of probeState.frontends) {
    const old = ids.frontends.get(`${f.address}:${f.port}/${f.protocol}`);
    const group = groupKeyById.get(f.serviceId);
    if (old === undefined || group === undefined) continue;
    claims.set(group, (claims.get(group) ?? new Set()).add(old));
  }
  const assigned = new Map<string, number>();
  const taken = new Set<number>();
  for (const group of [...claims.keys()].sort()) {
    const olds = claims.get(group)!;
    if (olds.size !== 1) continue; // frontends of one group disagree: the group starts afresh
    const [id] = olds;
    if (taken.has(id!)) continue;
    taken.add(id!);
    assigned.set(group, id!);
  }
  return { backends, services: snapshot(assigned, ids.maxServiceId) };
}
