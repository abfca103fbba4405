/**
 * Flows that outlive their endpoint's membership, kube-proxy's conntrack cleanup. The datapath keeps
 * a flow on its backend while the backend exists in be_v1, but backends are shared by address and
 * port across Services: an endpoint that stops serving one Service while another still lists it
 * keeps its be_v1 entry, and the datapath alone cannot tell. The sync loop can: after each sync,
 * the backends a Service group stopped choosing from are handed here, and
 *
 *   - that group's UDP flows to them are deleted, both entries, so that the next datagram picks a
 *     serving endpoint (kube-proxy deletes the same conntrack entries: the stale-UDP bug class);
 *     TCP flows finish where they are, as with kube-proxy;
 *   - that group's ClientIP affinity entries naming them are deleted, whatever the protocol, so
 *     that new connections stop going there.
 *
 * One pass over each map, only after a sync that took a backend away from a group. Each entry is
 * looked up again just before its delete and left alone if it no longer names that backend (a new
 * flow or pick took the key meanwhile); deadlines the datapath refreshed in between do not matter.
 */
import { aff4Key, aff4Value, ct4Key, ct4Value } from '../abi/layouts.js';
import { CtDir, IPPROTO } from '../abi/constants.js';
import type { DesiredService } from '../model/index.js';
import { partnerKey } from './conntrack-gc.js';
import type { DatapathMaps } from './typed-map.js';

/** Service group id → backend ids it no longer chooses from. */
export type StaleMemberships = ReadonlyMap<number, ReadonlySet<number>>;

/** What a sync's changes to Service groups took away from each (before → after, by group key). */
export function staleMemberships(changes: Iterable<{ before: DesiredService | undefined; after: DesiredService | undefined }>): Map<number, Set<number>> {
  const stale = new Map<number, Set<number>>();
  for (const { before, after } of changes) {
    if (!before) continue;
    const kept = new Set(after && after.id === before.id ? after.backends : []);
    const gone = before.backends.filter((id) => !kept.has(id));
    if (gone.length > 0) stale.set(before.id, new Set(gone));
  }
  return stale;
}

export interface StaleFlushResult {
  /** UDP flows deleted (each is two entries). */
  flows: number;
  affinities: number;
}

export function flushStaleFlows(maps: Pick<DatapathMaps, 'ct4' | 'aff4'>, stale: StaleMemberships): StaleFlushResult {
  const result: StaleFlushResult = { flows: 0, affinities: 0 };
  if (stale.size === 0) return result;
  {
    const map = maps.ct4.raw;
    const { keys, values, count } = map.dump();
    for (let i = 0; i < count; i++) {
      const keyBuf = keys.subarray(i * ct4Key.size, (i + 1) * ct4Key.size);
      const key = ct4Key.decode(keyBuf);
      if (key.dir !== CtDir.FWD || key.proto !== IPPROTO.UDP) continue;
      const value = ct4Value.decode(values, i * ct4Value.size);
      if (!stale.get(value.svc_id)?.has(value.backend_id)) continue;
      const again = map.lookup(keyBuf);
      const now = again && ct4Value.decode(again);
      if (!now || now.svc_id !== value.svc_id || now.backend_id !== value.backend_id || now.nat_daddr !== value.nat_daddr || !map.delete(keyBuf)) continue;
      map.delete(ct4Key.encode(partnerKey(key, value)));
      result.flows++;
    }
  }
  {
    const map = maps.aff4.raw;
    const { keys, values, count } = map.dump();
    for (let i = 0; i < count; i++) {
      const key = aff4Key.decode(keys, i * aff4Key.size);
      const value = aff4Value.decode(values, i * aff4Value.size);
      if (!stale.get(key.svc_id)?.has(value.backend_id)) continue;
      const keyBuf = keys.subarray(i * aff4Key.size, (i + 1) * aff4Key.size);
      const again = map.lookup(keyBuf);
      if (again && aff4Value.decode(again).backend_id === value.backend_id && map.delete(keyBuf)) result.affinities++;
    }
  }
  return result;
}
