/** The Internet checksum (RFC 1071) and the IPv4 pseudo header sum TCP and UDP cover. */

/** One's complement sum of 16-bit big-endian words, not yet complemented. */
export function onesSum(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2) sum += buf[buf.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export function internetChecksum(buf: Buffer, initial = 0): number {
  return ~onesSum(buf, initial) & 0xffff;
}

export function pseudoHeaderSum(src: Buffer, dst: Buffer, proto: number, l4Length: number): number {
  const ph = Buffer.alloc(12);
  src.copy(ph, 0);
  dst.copy(ph, 4);
  ph[9] = proto;
  ph.writeUInt16BE(l4Length, 10);
  return onesSum(ph);
}
