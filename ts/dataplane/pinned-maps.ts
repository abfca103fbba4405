/**
 * A node's maps opened from their pins, without loading anything: what `bpfproxy services` and
 * `bpfproxy explain` read, with or without a running agent. Only reads are made through these
 * handles. (The addon opens pins read-write; a BPF_F_RDONLY open would make that a guarantee.)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { mapSpecs, type MapKey } from '../abi/maps.js';
import { native, type BpfMapNative } from '../addon/index.js';
import { TypedMap, type DatapathMaps } from './typed-map.js';

export interface PinnedMaps {
  readonly pinDir: string;
  readonly maps: DatapathMaps;
  close(): void;
}

export class NoDatapathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoDatapathError';
  }
}

export function openPinnedMaps(pinDir: string): PinnedMaps {
  const missing = Object.values(mapSpecs)
    .map((s) => s.name)
    .filter((name) => !existsSync(join(pinDir, name)));
  if (missing.length === Object.keys(mapSpecs).length) {
    throw new NoDatapathError(`no bpfproxy datapath is pinned under ${pinDir} (is it the agent's bpffsDir, on a bpffs mount?)`);
  }
  if (missing.length > 0) throw new NoDatapathError(`${pinDir} lacks the pinned map(s) ${missing.join(', ')}: a different bpfproxy version?`);
  const raws: BpfMapNative[] = [];
  const maps = {} as Record<MapKey, TypedMap<unknown, unknown>>;
  try {
    for (const [key, spec] of Object.entries(mapSpecs) as [MapKey, (typeof mapSpecs)[MapKey]][]) {
      const raw = native.BpfMap.fromPin(join(pinDir, spec.name));
      raws.push(raw);
      maps[key] = new TypedMap(spec as never, raw);
    }
  } catch (e) {
    for (const r of raws) r.close();
    throw e;
  }
  return {
    pinDir,
    maps: maps as unknown as DatapathMaps,
    close() {
      for (const r of raws) r.close();
    },
  };
}
