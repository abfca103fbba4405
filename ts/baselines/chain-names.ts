/**
 * Chain names exactly as kube-proxy derives them, so that a baseline's rules read like a real
 * node's `iptables-save` / `nft list ruleset`.
 */
import { createHash } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (Go's base32.StdEncoding), without the padding nobody reads here. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
  return out;
}

function hash16(text: string): string {
  return base32(createHash('sha256').update(text).digest()).slice(0, 16);
}

// iptables mode (pkg/proxy/iptables/proxier.go portProtoHash, servicePortEndpointChainName):
// sha256 of servicePortName + lowercase protocol (+ "ip:port" for endpoints), base32, 16 chars.
export const iptablesChains = {
  svc: (name: string, protocol: string) => `KUBE-SVC-${hash16(name + protocol)}`,
  svl: (name: string, protocol: string) => `KUBE-SVL-${hash16(name + protocol)}`,
  ext: (name: string, protocol: string) => `KUBE-EXT-${hash16(name + protocol)}`,
  fw: (name: string, protocol: string) => `KUBE-FW-${hash16(name + protocol)}`,
  sep: (name: string, protocol: string, endpoint: string) => `KUBE-SEP-${hash16(name + protocol + endpoint)}`,
};

// nftables mode (pkg/proxy/nftables/proxier.go hashAndTruncate): 8 base32 chars of sha256(name),
// "-", then the readable name "ns/svc/proto/port[__ip/port]", cut to 240 characters.
const NFT_BASE_MAX = 256 - 16;

function hashAndTruncate(name: string): string {
  const full = `${base32(createHash('sha256').update(name).digest()).slice(0, 8)}-${name}`;
  return full.length > NFT_BASE_MAX ? `${full.slice(0, NFT_BASE_MAX - 3)}...` : full;
}

export function nftServiceBase(namespace: string, name: string, protocol: string, portName: string): string {
  return hashAndTruncate(`${namespace}/${name}/${protocol}/${portName}`);
}

export function nftEndpointBase(namespace: string, name: string, protocol: string, portName: string, ip: string, port: number): string {
  return hashAndTruncate(`${namespace}/${name}/${protocol}/${portName}__${ip}/${port}`);
}
