// IPv4 parsing and CIDR matching on u32 numbers (IPv6 only recognised, to be set aside). Strict on
// purpose: a Service field that is not a canonical dotted quad is reported, not guessed at (no octal
// "010.0.0.1", no "1.2.3"). A leaf: the ABI codecs, the model and the lab all parse addresses, and
// none of them should import another for it.

export interface Cidr4 {
  /** Network address with host bits cleared. */
  readonly base: number;
  readonly prefix: number;
}

/**
 * The address as an unsigned 32-bit number, or undefined if `text` is not a dotted quad. A loop over
 * char codes rather than split + regex: it runs for every endpoint and in every sort comparison, and
 * at 30k Services × 10 endpoints the regex version was the model's largest cost.
 */
export function parseIPv4(text: string): number | undefined {
  let value = 0;
  let octets = 0;
  let octet = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // the end closes the last octet like a '.'
    if (c === 46) {
      if (digits === 0 || octet > 255 || ++octets > 4) return undefined;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return undefined; // a leading zero ("01") is not canonical
      if (++digits > 3) return undefined;
      octet = octet * 10 + (c - 48);
    } else {
      return undefined;
    }
  }
  return octets === 4 ? value : undefined;
}

export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

const HEXTET = /^[0-9a-fA-F]{1,4}$/;

/** True for a textual IPv6 address (RFC 4291 forms, including an embedded IPv4 tail). */
export function isIPv6(text: string): boolean {
  if (!text.includes(':')) return false;
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groups = (half: string | undefined): string[] | undefined => {
    if (half === undefined || half === '') return [];
    const parts = half.split(':');
    return parts.every((p) => p.length > 0) ? parts : undefined;
  };
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  if (head === undefined || tail === undefined) return false;
  const all = [...head, ...tail];
  let count = 0;
  for (let i = 0; i < all.length; i++) {
    const part = all[i]!;
    if (i === all.length - 1 && part.includes('.')) {
      if (parseIPv4(part) === undefined) return false;
      count += 2;
    } else if (HEXTET.test(part)) {
      count += 1;
    } else {
      return false;
    }
  }
  return halves.length === 2 ? count < 8 : count === 8;
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * An IPv4 CIDR. Like kube-proxy (ParseCIDRSloppy) host bits are accepted and cleared,
 * so "10.1.2.3/8" means 10.0.0.0/8; surrounding spaces are trimmed.
 */
export function parseCidr4(text: string): Cidr4 | undefined {
  const [address, prefixText, extra] = text.trim().split('/');
  if (address === undefined || prefixText === undefined || extra !== undefined) return undefined;
  if (!/^(?:0|[1-9][0-9]?)$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > 32) return undefined;
  const ip = parseIPv4(address);
  if (ip === undefined) return undefined;
  return { base: (ip & maskOf(prefix)) >>> 0, prefix };
}

/** True for an IPv6 CIDR; we only need to recognise them to set them aside. */
export function isCidr6(text: string): boolean {
  const [address, prefixText, extra] = text.trim().split('/');
  if (address === undefined || prefixText === undefined || extra !== undefined) return false;
  return /^(?:0|[1-9][0-9]{0,2})$/.test(prefixText) && Number(prefixText) <= 128 && isIPv6(address);
}

export function formatCidr4(cidr: Cidr4): string {
  return `${formatIPv4(cidr.base)}/${cidr.prefix}`;
}

export function cidrContains(cidr: Cidr4, ip: number): boolean {
  return ((ip & maskOf(cidr.prefix)) >>> 0) === cidr.base;
}

export const LOOPBACK_CIDR: Cidr4 = { base: 0x7f000000, prefix: 8 };

export function isLoopback(ip: number): boolean {
  return cidrContains(LOOPBACK_CIDR, ip);
}

/** Orders dotted quads numerically (so 10.0.0.9 < 10.0.0.10); unparsable text sorts last by text. */
export function compareIPv4Text(a: string, b: string): number {
  const x = parseIPv4(a);
  const y = parseIPv4(b);
  if (x !== undefined && y !== undefined) return x - y;
  if (x !== undefined) return -1;
  if (y !== undefined) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
