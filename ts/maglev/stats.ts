import { MaglevError } from './prime.js';

export interface MaglevStats {
  readonly size: number;
  readonly backends: number;
  /** Slots owned by each backend index. */
  readonly counts: readonly number[];
  readonly min: number;
  readonly max: number;
  /** min/size and max/size. */
  readonly minShare: number;
  readonly maxShare: number;
  /** (max − min) / (size / backends): spread relative to a fair share; 0 is perfect. */
  readonly imbalance: number;
}

/** Slot counts and balance of a table whose slots hold backend indices 0…n−1. */
export function maglevStats(slots: ArrayLike<number>, n: number): MaglevStats {
  if (!Number.isSafeInteger(n) || n < 1) throw new MaglevError('maglevStats needs n ≥ 1');
  const counts = new Array<number>(n).fill(0);
  for (let i = 0; i < slots.length; i++) {
    const owner = slots[i]!;
    if (!(owner >= 0 && owner < n)) {
      throw new MaglevError(`slot ${i} holds ${owner}, not a backend index below ${n}`);
    }
    counts[owner]!++;
  }
  const size = slots.length;
  const min = Math.min(...counts);
  const max = Math.max(...counts);
  return {
    size,
    backends: n,
    counts,
    min,
    max,
    minShare: min / size,
    maxShare: max / size,
    imbalance: (max - min) / (size / n),
  };
}
