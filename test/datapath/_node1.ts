/**
 * Node 1's network for the packet tests that forward (bpf_fib_lookup runs in the test's private
 * namespace): the uplink up0 (198.18.0.11/24), node 2 and the client with known MACs, node 3's
 * MAC unknown; node 2's pod CIDR via node 2, a third pod CIDR via node 3.
 */
import { execFileSync } from 'node:child_process';
import { basename } from 'node:path';

import type { PacketSpec } from '../../ts/packet/index.js';
import { NET, type Env } from './_fixture.js';

export const UPLINK_MAC = '02:00:00:00:00:0b';
export const NODE2_MAC = '02:00:00:00:00:12';
export const CLIENT_MAC = '02:00:00:00:00:64';
export const UNKNOWN_NODE = '198.18.0.13';

export function wireNode1(env: Env): void {
  const ns = basename(env.netns);
  const ip = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args]);
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'up0', 'address', UPLINK_MAC, 'type', 'veth', 'peer', 'name', 'fabric0');
  ip('link', 'set', 'fabric0', 'up');
  ip('link', 'set', 'up0', 'up');
  ip('addr', 'add', `${NET.node1}/24`, 'dev', 'up0');
  ip('neigh', 'add', NET.node2, 'lladdr', NODE2_MAC, 'dev', 'up0', 'nud', 'permanent');
  ip('neigh', 'add', NET.client, 'lladdr', CLIENT_MAC, 'dev', 'up0', 'nud', 'permanent');
  ip('route', 'add', '198.18.130.0/24', 'via', NET.node2);
  ip('route', 'add', '198.18.131.0/24', 'via', UNKNOWN_NODE);
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
}

/** What forwarding makes of a translated frame: TTL one less, and the next hop's MACs if known. */
export function forwarded(spec: PacketSpec, eth?: { src: string; dst: string }): PacketSpec {
  return { ...spec, ...(eth ? { eth } : {}), ip: { ...spec.ip, ttl: (spec.ip.ttl ?? 64) - 1 } };
}

/** Node 1's VXLAN device (flannel's flannel.1) and node 4's VTEP behind it. */
export const OVERLAY_MAC = '0e:c6:12:00:00:01';
export const VTEP4_MAC = '0e:c6:12:00:00:04';
export const OVERLAY_MTU = 1450;
/** A pod of node 4, reached through the overlay. */
export const OVERLAY_POD = '198.18.132.10';

/**
 * A flannel-like overlay on top of wireNode1: vx0 (VNI 1, port 8472, MTU 1450) on up0, node 4's pod
 * CIDR via its VTEP address onlink, a permanent neighbour entry and an FDB entry to node 4.
 */
export function wireOverlay(env: Env): void {
  const ns = basename(env.netns);
  const ip = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args]);
  ip('link', 'add', 'vx0', 'address', OVERLAY_MAC, 'mtu', String(OVERLAY_MTU), 'type', 'vxlan', 'id', '1', 'local', NET.node1, 'dev', 'up0', 'dstport', '8472', 'nolearning');
  ip('link', 'set', 'vx0', 'up');
  ip('addr', 'add', '198.18.129.0/32', 'dev', 'vx0');
  ip('neigh', 'add', '198.18.132.0', 'lladdr', VTEP4_MAC, 'dev', 'vx0', 'nud', 'permanent');
  ip('route', 'add', '198.18.132.0/24', 'via', '198.18.132.0', 'dev', 'vx0', 'onlink');
  execFileSync('bridge', ['-n', ns, 'fdb', 'append', VTEP4_MAC, 'dev', 'vx0', 'dst', UNKNOWN_NODE, 'self', 'permanent']);
}
