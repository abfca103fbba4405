import test from 'ava';

import { murmur3_32, murmur3_32String } from '../../ts/maglev/index.js';

// Reference vectors of MurmurHash3_x86_32 (SMHasher / widely published test values).
const vectors: [string, number, number][] = [
  ['', 0, 0x00000000],
  ['', 1, 0x514e28b7],
  ['', 0xffffffff, 0x81f16f39],
  ['Hello, world!', 1234, 0xfaf6cdb3],
  ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
];

for (const [text, seed, expected] of vectors) {
  test(`murmur3_32(${JSON.stringify(text)}, ${seed}) = 0x${expected.toString(16)}`, (t) => {
    t.is(murmur3_32String(text, seed), expected);
  });
}

test('four zero bytes hash as in the reference implementation (block path without tail)', (t) => {
  t.is(murmur3_32(new Uint8Array(4), 0), 0x2362f9de);
});

test('tails of 1, 2 and 3 bytes are all mixed in', (t) => {
  const hashes = new Set(['a', 'ab', 'abc', 'abcd', 'abcde'].map((s) => murmur3_32String(s, 0)));
  t.is(hashes.size, 5);
});

test('non-ASCII names are hashed as UTF-8', (t) => {
  t.is(murmur3_32String('é', 0), murmur3_32(new Uint8Array([0xc3, 0xa9]), 0));
});
