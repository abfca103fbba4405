import { murmur3_32String } from './murmur3.js';
import { DEFAULT_TABLE_SIZE, MaglevError, validateTableSize } from './prime.js';

// The two seeds are part of the cross-node contract: every node must derive the same permutation
// for the same backend name, so changing them reshuffles every table in the cluster.
export const OFFSET_SEED = 0x6d61676c; // "magl"
export const SKIP_SEED = 0x65763031; // "ev01"

/** Marks a slot not yet filled during construction; never present in a returned table. */
const EMPTY = 0xffffffff;

export interface MaglevBackend {
  /** Stable identity shared by all nodes, e.g. "198.18.128.5:9376/TCP". */
  readonly name: string;
  /** Relative share of slots; a non-negative integer, default 1. 0 leaves the backend out. */
  readonly weight?: number;
}

export interface MaglevTable {
  readonly size: number;
  /** Backends that received a turn (weight > 0), sorted by name; slots index into this list. */
  readonly backends: readonly string[];
  readonly weights: readonly number[];
  /** slots[i] = index into `backends` of the backend owning slot i. */
  readonly slots: Uint32Array;
}

export interface Permutation {
  readonly offset: number;
  readonly skip: number;
}

/** offset = h1(name) mod M, skip = h2(name) mod (M−1) + 1, as in the Maglev paper (§3.4). */
export function permutationOf(name: string, size: number): Permutation {
  return {
    offset: murmur3_32String(name, OFFSET_SEED) % size,
    skip: (murmur3_32String(name, SKIP_SEED) % (size - 1)) + 1,
  };
}

function normalize(backends: readonly (string | MaglevBackend)[]): MaglevBackend[] {
  const byName = new Map<string, number>();
  for (const entry of backends) {
    const name = typeof entry === 'string' ? entry : entry.name;
    const weight = typeof entry === 'string' ? 1 : (entry.weight ?? 1);
    if (name.length === 0) throw new MaglevError('Maglev backend name must not be empty');
    if (!Number.isSafeInteger(weight) || weight < 0) {
      throw new MaglevError(`Maglev backend ${name}: weight must be a non-negative integer`);
    }
    if (byName.has(name)) throw new MaglevError(`Maglev backend ${name} listed twice`);
    byName.set(name, weight);
  }
  // Sorting by code units (not locale) makes the input order irrelevant on every node.
  return [...byName]
    .filter(([, weight]) => weight > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, weight]) => ({ name, weight }));
}

/**
 * Builds the Maglev lookup table: backends take turns, each claiming the next free slot of its own
 * permutation, until all `size` slots are filled. With equal weights every backend ends up with
 * ⌊M/N⌋ or ⌈M/N⌉ slots. Weights follow Envoy's scheme: a backend of weight w takes a turn in
 * round r only when r·w has reached its running target, so shares are proportional to weights and
 * equal weights reduce exactly to the paper's algorithm.
 */
export function buildMaglevTable(
  backends: readonly (string | MaglevBackend)[],
  size: number = DEFAULT_TABLE_SIZE,
): MaglevTable {
  validateTableSize(size);
  const sorted = normalize(backends);
  const n = sorted.length;
  if (n === 0) throw new MaglevError('Maglev table needs at least one backend with weight > 0');

  const next = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const weight = new Float64Array(n);
  const target = new Float64Array(n);
  let maxWeight = 0;
  for (let i = 0; i < n; i++) {
    const backend = sorted[i]!;
    const permutation = permutationOf(backend.name, size);
    next[i] = permutation.offset;
    skip[i] = permutation.skip;
    weight[i] = backend.weight ?? 1;
    if (weight[i]! > maxWeight) maxWeight = weight[i]!;
  }
  target.fill(maxWeight);

  const slots = new Uint32Array(size).fill(EMPTY);
  let filled = 0;
  for (let round = 1; filled < size; round++) {
    for (let i = 0; i < n && filled < size; i++) {
      if (round * weight[i]! < target[i]!) continue;
      target[i]! += maxWeight;
      // Walk this backend's permutation to its next free slot; the position is kept between
      // turns so the whole build is O(M log M) probes, not O(M·N).
      let c = next[i]!;
      const step = skip[i]!;
      while (slots[c] !== EMPTY) {
        c += step;
        if (c >= size) c -= size;
      }
      slots[c] = i;
      c += step;
      if (c >= size) c -= size;
      next[i] = c;
      filled++;
    }
  }

  return {
    size,
    backends: sorted.map((b) => b.name),
    weights: sorted.map((b) => b.weight ?? 1),
    slots,
  };
}

/** The table with each slot mapped through `idOf` (e.g. backend name → dataplane backend id). */
export function resolveSlots(table: MaglevTable, idOf: (name: string) => number): Uint32Array {
  const ids = table.backends.map(idOf);
  const out = new Uint32Array(table.size);
  const slots = table.slots;
  for (let i = 0; i < out.length; i++) out[i] = ids[slots[i]!]!;
  return out;
}
