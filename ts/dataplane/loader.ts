/**
 * Loads the node's datapath: the embedded objects (tc_pod, tc_uplink, xdp_uplink) with the same
 * rodata configuration, every map pinned under one bpffs directory so that the objects share them
 * (the first load creates and pins, the next ones reuse the pins; an incompatible pin fails the
 * load instead of being replaced). Returns typed handles to maps and programs.
 */
import { join } from 'node:path';

import { embeddedObject, native, type BpfObjectNative, type BpfProgramNative } from '../addon/index.js';
import { BPF_F_INNER_MAP, MAGLEV_M_DEFAULT } from '../abi/constants.js';
import { rodataOf, type DatapathConfig } from '../abi/config.js';
import { mapSpecs, type MapKey } from '../abi/maps.js';
import { u32 } from '../abi/codec.js';
import { TypedMap } from './typed-map.js';

export const datapathObjects = ['tc_pod', 'tc_uplink', 'xdp_uplink'] as const;
export type DatapathObjectName = (typeof datapathObjects)[number];

export const datapathPrograms = {
  tcPodIngress: { object: 'tc_pod', name: 'tc_pod_ingress' },
  tcPodEgress: { object: 'tc_pod', name: 'tc_pod_egress' },
  tcUplinkIngress: { object: 'tc_uplink', name: 'tc_uplink_ingress' },
  tcHostEgress: { object: 'tc_uplink', name: 'tc_host_egress' },
  xdpUplink: { object: 'xdp_uplink', name: 'xdp_uplink' },
} as const;
export type DatapathProgramKey = keyof typeof datapathPrograms;

export interface LoadDatapathOptions {
  /** A directory on a bpffs mount; maps are pinned here by name. */
  pinDir: string;
  config: DatapathConfig;
  /** max_entries per map, by map key (svc4, ct4, ...) or kernel name; defaults are the C ones. */
  mapSizes?: Partial<Record<MapKey, number>>;
}

export type DatapathMaps = { [K in MapKey]: TypedMap<ReturnType<(typeof mapSpecs)[K]['key']['decode']>, ReturnType<(typeof mapSpecs)[K]['value']['decode']>> };

export interface Datapath {
  readonly pinDir: string;
  readonly config: DatapathConfig;
  readonly maps: DatapathMaps;
  readonly programs: Record<DatapathProgramKey, BpfProgramNative>;
  /** The loaded objects, for BTF introspection (typeLayout, rodataVariables). */
  readonly objects: Record<DatapathObjectName, BpfObjectNative>;
  /** Creates (or replaces) the Maglev table of a service from the backend ids of its M entries. */
  setMaglevTable(svcId: number, table: ArrayLike<number>): void;
  deleteMaglevTable(svcId: number): void;
  /** Releases this process's handles; pinned maps stay (unpin by removing the files). */
  close(): void;
}

export async function loadDatapath(opts: LoadDatapathOptions): Promise<Datapath> {
  const rodata = rodataOf(opts.config);
  const mapOptions: Record<string, { maxEntries?: number; pinPath: string }> = {};
  for (const [key, spec] of Object.entries(mapSpecs) as [MapKey, (typeof mapSpecs)[MapKey]][]) {
    const size = opts.mapSizes?.[key];
    mapOptions[spec.name] = { pinPath: join(opts.pinDir, spec.name), ...(size !== undefined ? { maxEntries: size } : {}) };
  }

  const objects = {} as Record<DatapathObjectName, BpfObjectNative>;
  try {
    for (const name of datapathObjects) {
      const obj = new native.BpfObject(embeddedObject(name), name, { rodata, maps: mapOptions });
      objects[name] = obj;
      await obj.load();
    }
  } catch (e) {
    for (const o of Object.values(objects)) o.close();
    throw e;
  }

  const first = objects[datapathObjects[0]];
  const maps = {} as Record<MapKey, TypedMap<unknown, unknown>>;
  for (const [key, spec] of Object.entries(mapSpecs) as [MapKey, (typeof mapSpecs)[MapKey]][]) {
    maps[key] = new TypedMap(spec as never, first.map(spec.name));
  }
  const programs = {} as Record<DatapathProgramKey, BpfProgramNative>;
  for (const [key, p] of Object.entries(datapathPrograms) as [DatapathProgramKey, (typeof datapathPrograms)[DatapathProgramKey]][]) {
    programs[key] = objects[p.object].program(p.name);
  }

  const maglevM = opts.config.maglevM ?? MAGLEV_M_DEFAULT;
  return {
    pinDir: opts.pinDir,
    config: opts.config,
    maps: maps as unknown as DatapathMaps,
    programs,
    objects,
    setMaglevTable(svcId, table) {
      if (table.length !== maglevM) throw new RangeError(`a Maglev table has ${maglevM} entries, got ${table.length}`);
      const inner = native.BpfMap.create({ type: 'array', name: `mgl_${svcId}`.slice(0, 15), keySize: 4, valueSize: 4, maxEntries: maglevM, flags: BPF_F_INNER_MAP });
      const keys = Buffer.alloc(4 * maglevM);
      const values = Buffer.alloc(4 * maglevM);
      for (let i = 0; i < maglevM; i++) {
        keys.writeUInt32LE(i, 4 * i);
        values.writeUInt32LE(table[i] ?? 0, 4 * i);
      }
      try {
        inner.updateBatch(keys, values, maglevM);
        // One update swaps the whole table in: a packet sees the old table or the new one.
        maps.maglev.raw.update(u32.encode(svcId), u32.encode(inner.fd));
      } finally {
        inner.close(); // the outer map holds its own reference
      }
    },
    deleteMaglevTable(svcId) {
      maps.maglev.raw.delete(u32.encode(svcId));
    },
    close() {
      for (const m of Object.values(maps)) m.raw.close();
      for (const p of Object.values(programs)) p.close();
      for (const o of Object.values(objects)) o.close();
    },
  };
}
