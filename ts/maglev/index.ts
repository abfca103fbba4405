export {
  DEFAULT_TABLE_SIZE,
  MAX_TABLE_SIZE,
  MIN_TABLE_SIZE,
  MaglevError,
  isPrime,
  validateTableSize,
} from './prime.js';
export { murmur3_32, murmur3_32String } from './murmur3.js';
export {
  OFFSET_SEED,
  SKIP_SEED,
  buildMaglevTable,
  permutationOf,
  resolveSlots,
  type MaglevBackend,
  type MaglevTable,
  type Permutation,
} from './table.js';
export { diffTables, type TableDelta } from './diff.js';
export { maglevStats, type MaglevStats } from './stats.js';
