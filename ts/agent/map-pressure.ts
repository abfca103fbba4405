/**
 * Warnings when a map fills: one when it passes PRESSURE_THRESHOLD of its capacity, one when it is
 * full, and a note when it is back under (below REARM, so that a map hovering at the threshold
 * does not log at every check). Each names the map, its entries and capacity, what a full map
 * costs, and the configuration field that sizes it.
 */
import type { MapKey } from '../abi/maps.js';
import type { MapOccupancy } from '../dataplane/occupancy.js';
import { MAP_SIZE_FIELDS } from './datapath-config.js';

export const PRESSURE_THRESHOLD = 0.8;
const REARM = 0.75;

export type PressureLevel = 'ok' | 'high' | 'full';

/** What a full map costs. */
const WHEN_FULL: Partial<Record<MapKey, string>> = {
  ct4: 'new flows are dropped (drop reason CT_FULL); established flows are kept',
  aff4: 'the least recently used ClientIP affinities are forgotten',
  frag4: 'the least recently used fragmented datagrams lose their later fragments',
};
const AGENT_WRITES_FAIL = 'the agent\'s writes fail (bpfproxy_map_write_errors_total): Services are not programmed';

export interface PressureChange extends MapOccupancy {
  level: PressureLevel;
  previous: PressureLevel;
  /** A log line for the change. */
  message: string;
}

export function pressureLevel(o: MapOccupancy, previous: PressureLevel = 'ok'): PressureLevel {
  if (o.entries >= o.capacity) return 'full';
  const ratio = o.entries / o.capacity;
  if (ratio >= PRESSURE_THRESHOLD) return 'high';
  return ratio >= REARM && previous !== 'ok' ? 'high' : 'ok';
}

export class MapPressure {
  private readonly levels = new Map<string, PressureLevel>();

  /** The level of every map, updated; returns the changes worth a log line (rises, and returns to ok). */
  update(occupancy: readonly MapOccupancy[]): PressureChange[] {
    const changes: PressureChange[] = [];
    for (const o of occupancy) {
      const previous = this.levels.get(o.map) ?? 'ok';
      const level = pressureLevel(o, previous);
      this.levels.set(o.map, level);
      if (level === previous || (previous === 'full' && level === 'high')) continue;
      changes.push({ ...o, level, previous, message: describe(o, level) });
    }
    return changes;
  }

  level(map: string): PressureLevel {
    return this.levels.get(map) ?? 'ok';
  }
}

function describe(o: MapOccupancy, level: PressureLevel): string {
  const pct = Math.floor((100 * o.entries) / o.capacity);
  const field = MAP_SIZE_FIELDS[o.key];
  const raise = field ? `raise ${field}` : 'its size is fixed';
  const cost = WHEN_FULL[o.key] ?? AGENT_WRITES_FAIL;
  if (level === 'ok') return `map ${o.map} is back under ${Math.round(PRESSURE_THRESHOLD * 100)} % (${o.entries}/${o.capacity} entries)`;
  if (level === 'full') return `map ${o.map} is full (${o.entries}/${o.capacity} entries): ${cost}; ${raise}`;
  return `map ${o.map} is ${pct} % full (${o.entries}/${o.capacity} entries); when full, ${cost}; ${raise}`;
}
