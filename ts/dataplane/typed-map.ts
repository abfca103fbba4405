/**
 * A BPF map seen through its ABI codecs. Per-CPU maps read as one value per possible CPU (the
 * kernel pads each to 8 bytes), or summed. DatapathMaps: every map of the datapath, typed.
 */
import { native, type BpfMapNative } from '../addon/index.js';
import type { MapKey, MapSpec, mapSpecs } from '../abi/maps.js';

export class TypedMap<K, V> {
  readonly spec: MapSpec<K, V>;
  readonly raw: BpfMapNative;
  private readonly cpus: number;

  constructor(spec: MapSpec<K, V>, raw: BpfMapNative) {
    this.spec = spec;
    this.raw = raw;
    this.cpus = spec.perCpu ? native.numPossibleCpus() : 1;
  }

  private get stride(): number {
    return this.spec.perCpu ? (this.spec.value.size + 7) & ~7 : this.spec.value.size;
  }

  get(key: K): V | null {
    const b = this.raw.lookup(this.spec.key.encode(key as never));
    return b ? this.spec.value.decode(b, 0) : null;
  }

  /** Per-CPU maps: each CPU's value. */
  getPerCpu(key: K): V[] | null {
    const b = this.raw.lookup(this.spec.key.encode(key as never));
    if (!b) return null;
    return Array.from({ length: this.cpus }, (_, i) => this.spec.value.decode(b, i * this.stride));
  }

  set(key: K, value: V | Partial<V>, flags?: number): void {
    let v = this.spec.value.encode(value as never);
    if (this.spec.perCpu) {
      const all = Buffer.alloc(this.stride * this.cpus);
      for (let i = 0; i < this.cpus; i++) v.copy(all, i * this.stride);
      v = all;
    }
    this.raw.update(this.spec.key.encode(key as never), v, flags);
  }

  delete(key: K): boolean {
    return this.raw.delete(this.spec.key.encode(key as never));
  }

  entries(): [K, V][] {
    const { keys, values, count } = this.raw.dump();
    const out: [K, V][] = [];
    const vs = this.spec.perCpu ? this.stride * this.cpus : this.spec.value.size;
    for (let i = 0; i < count; i++) {
      out.push([this.spec.key.decode(keys, i * this.spec.key.size), this.spec.value.decode(values, i * vs)]);
    }
    return out;
  }
}

/** Every map of the datapath by key, as a load (loader.ts) or a node's pins (pinned-maps.ts) give them. */
export type DatapathMaps = { [K in MapKey]: TypedMap<ReturnType<(typeof mapSpecs)[K]['key']['decode']>, ReturnType<(typeof mapSpecs)[K]['value']['decode']>> };

/** Sums numeric fields of per-CPU values. */
export function sumPerCpu<V extends Record<string, unknown>>(values: V[] | null): V | null {
  if (!values || values.length === 0) return null;
  const out: Record<string, unknown> = { ...values[0] };
  for (const v of values.slice(1)) {
    for (const [k, x] of Object.entries(v)) {
      const cur = out[k];
      if (typeof x === 'bigint' && typeof cur === 'bigint') out[k] = cur + x;
      else if (typeof x === 'number' && typeof cur === 'number') out[k] = cur + x;
    }
  }
  return out as V;
}
