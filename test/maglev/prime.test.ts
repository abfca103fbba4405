import test from 'ava';

import {
  DEFAULT_TABLE_SIZE,
  MAX_TABLE_SIZE,
  MIN_TABLE_SIZE,
  MaglevError,
  buildMaglevTable,
  isPrime,
  validateTableSize,
} from '../../ts/maglev/index.js';

test('the bounds and the default are the documented primes', (t) => {
  t.deepEqual([MIN_TABLE_SIZE, DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE], [251, 16381, 131071]);
  for (const size of [251, 16381, 65537, 131071]) t.notThrows(() => validateTableSize(size));
});

test('isPrime agrees with trial division on small numbers', (t) => {
  const primes = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47];
  for (let n = -2; n < 50; n++) t.is(isPrime(n), primes.includes(n), String(n));
  t.false(isPrime(2.5));
  t.false(isPrime(Number.NaN));
});

for (const [size, message] of [
  [250, /outside 251…131071/],
  [131073, /outside 251…131071/],
  [16383, /not prime/],
  [65536, /not prime/],
  [16381.5, /must be an integer/],
] as const) {
  test(`table size ${size} is rejected`, (t) => {
    const error = t.throws(() => validateTableSize(size), { instanceOf: MaglevError });
    t.regex(error.message, message);
    t.throws(() => buildMaglevTable(['a'], size), { instanceOf: MaglevError });
  });
}
