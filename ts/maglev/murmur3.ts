// MurmurHash3 x86_32 (Austin Appleby, public domain), over bytes. Chosen for Maglev because it is
// small, fast with Math.imul, well specified, and trivially reimplemented in C or Go if another
// component ever needs to agree with our tables.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

export function murmur3_32(data: Uint8Array, seed: number): number {
  let h = seed >>> 0;
  const length = data.length;
  const blockEnd = length & ~3;
  for (let i = 0; i < blockEnd; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (length & 3) {
    case 3:
      k ^= data[blockEnd + 2]! << 16;
    // falls through
    case 2:
      k ^= data[blockEnd + 1]! << 8;
    // falls through
    case 1:
      k ^= data[blockEnd]!;
      k = Math.imul(k, C1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, C2);
      h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const encoder = new TextEncoder();

/** MurmurHash3 x86_32 of the UTF-8 encoding of `text`. */
export function murmur3_32String(text: string, seed: number): number {
  return murmur3_32(encoder.encode(text), seed);
}
