/** Smallest table size accepted (Cilium's lower bound): below it the 1% balance target needs < 3 backends. */
export const MIN_TABLE_SIZE = 251;
/** Largest table size accepted (Cilium's upper bound): 131071 u32 slots = 512 KiB per service. */
export const MAX_TABLE_SIZE = 131071;
/** Default table size: prime, ≤1% imbalance up to ~160 backends (M > 100·N). */
export const DEFAULT_TABLE_SIZE = 16381;

export class MaglevError extends Error {
  override readonly name = 'MaglevError';
}

export function isPrime(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) {
    if (n % d === 0) return false;
  }
  return true;
}

/**
 * Throws unless `size` is a prime in [MIN_TABLE_SIZE, MAX_TABLE_SIZE]: Maglev's permutations
 * (skip in 1..M−1) only visit every slot when M is prime.
 */
export function validateTableSize(size: number): void {
  if (!Number.isSafeInteger(size)) {
    throw new MaglevError(`Maglev table size must be an integer, got ${String(size)}`);
  }
  if (size < MIN_TABLE_SIZE || size > MAX_TABLE_SIZE) {
    throw new MaglevError(
      `Maglev table size ${size} is outside ${MIN_TABLE_SIZE}…${MAX_TABLE_SIZE}`,
    );
  }
  if (!isPrime(size)) {
    throw new MaglevError(`Maglev table size ${size} is not prime`);
  }
}
