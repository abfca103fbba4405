/**
 * How full each map is. Hash maps are counted by the kernel (map_count.bpf.c: exact, whoever wrote
 * the entries: the datapath's conntrack, affinity and fragment records as much as the agent's
 * services); LPM tries keep no count, but only the agent writes them, so its own count is exact.
 * Arrays are left out: preallocated, indexed by design, they never run short of room.
 */
import { mapSpecs, type MapKey } from '../abi/maps.js';
import type { Datapath } from './loader.js';

export interface MapOccupancy {
  key: MapKey;
  /** The kernel name (ct4_v4, ...). */
  map: string;
  entries: number;
  capacity: number;
}

/**
 * Every map that can fill, with its entries now. `written`: the agent's own entry counts by
 * kernel name (Reconciler.entryCounts), for the LPM tries. Without the kernel's count (a kernel
 * the counter cannot load on), maps the datapath writes are left out rather than guessed.
 */
export function readOccupancy(dp: Datapath, written: Readonly<Record<string, number>>): MapOccupancy[] {
  const counted = dp.countEntries() ?? {};
  const out: MapOccupancy[] = [];
  for (const [key, spec] of Object.entries(mapSpecs) as [MapKey, (typeof mapSpecs)[MapKey]][]) {
    let entries: number | undefined;
    if (spec.type === 'lpm_trie') entries = key === 'clustercidr4' ? (dp.config.clusterCidrs ?? []).length : written[spec.name];
    else if (!spec.type.endsWith('array')) entries = counted[key];
    if (entries === undefined) continue;
    out.push({ key, map: spec.name, entries, capacity: dp.maps[key].raw.info.maxEntries });
  }
  return out;
}
