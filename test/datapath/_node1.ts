/**
 * Node 1's network for the packet tests that forward (bpf_fib_lookup runs in the test's private
 * namespace): the uplink up0 (198.18.0.11/24), node 2 and the client with known MACs, node 3's
 * MAC unknown; node 2's pod CIDR via node 2, a third pod CIDR via node 3.
 */
import { execFileSync } from 'node:child_process';
import { basename } from 'node:path';

import type { PacketSpec } from '../../ts/packet/index.js';
import { NET, type Env } from './_harness.js';

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
