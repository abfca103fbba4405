/**
 * The lab's node network: the fabric bridge (the "VPC"), nodes hanging off it by their uplink, and
 * outside clients on the same bridge. Veth pairs are created directly in their two namespaces, so
 * nothing ever appears in the root namespace.
 */
import { run } from '../util/exec.js';
import {
  EXTERNAL_CIDR,
  FABRIC_GATEWAY,
  NODE_NETWORK_PREFIX,
  clientAddress,
  nodeAddress,
  podCidr,
} from './address-plan.js';
import type { LbRoute } from './lab-state.js';
import type { Netns } from './netns.js';

export const FABRIC_BRIDGE = 'br0';
export const UPLINK = 'eth0';
export const CLIENT_INTERFACE = 'eth0';
/** The lab nodes' serviceInterface (the agent's default is bpfproxy0; the lab keeps its short name). */
export const SERVICE_DEVICE = 'svc0';

/** A veth pair with `aName` in namespace `a` and `bName` in `b`; both ends are left down. */
export async function vethBetween(a: Netns, aName: string, b: Netns, bName: string): Promise<void> {
  if (aName.length > 15 || bName.length > 15) throw new Error(`interface names are at most 15 characters: ${aName}, ${bName}`);
  await run('ip', ['link', 'add', aName, 'netns', a.name, 'type', 'veth', 'peer', 'name', bName, 'netns', b.name]);
}

/**
 * The bridge with STP off (ports forward at once) and no multicast snooping (nothing to learn, and
 * it would only delay the first IPv6 neighbour discovery when dual-stack lands).
 */
export async function wireFabric(fabric: Netns): Promise<void> {
  await fabric.ipBatch([
    `link add ${FABRIC_BRIDGE} type bridge stp_state 0 forward_delay 0 mcast_snooping 0`,
    `link set ${FABRIC_BRIDGE} up`,
    // The nodes' default gateway (FABRIC_GATEWAY): a router that reaches nothing beyond.
    `addr add ${FABRIC_GATEWAY}/${NODE_NETWORK_PREFIX} dev ${FABRIC_BRIDGE}`,
    'route add unreachable default',
  ]);
  await fabric.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
}

/** Enslaves (and brings up) fabric-side ports of freshly made veth pairs. */
export async function attachToFabric(fabric: Netns, ports: string[]): Promise<void> {
  await fabric.ipBatch(ports.flatMap((p) => [`link set ${p} master ${FABRIC_BRIDGE}`, `link set ${p} up`]));
}

/**
 * Node k: uplink address and GKE-like routes to every other node's pod CIDR via that node's
 * address. The service device (SERVICE_DEVICE, where the node's own traffic to service addresses is
 * routed) is not the lab's: the agent creates it and keeps its routes (ts/agent/service-device.ts),
 * as it does on a real node.
 */
export async function wireNode(node: Netns, k: number, nodeCount: number): Promise<void> {
  const routes: string[] = [];
  for (let j = 1; j <= nodeCount; j++) {
    if (j !== k) routes.push(`route add ${podCidr(j)} via ${nodeAddress(j)} dev ${UPLINK}`);
  }
  await node.ipBatch([
    `addr add ${nodeAddress(k)}/${NODE_NETWORK_PREFIX} dev ${UPLINK}`,
    `link set ${UPLINK} up`,
    ...routes,
    // As on a real node, whatever it has no route for goes to the network's router; kube-proxy's
    // rules (the baselines) then see it in FORWARD, and the router answers the rest.
    `route add default via ${FABRIC_GATEWAY} dev ${UPLINK}`,
  ]);
  // Forwarding makes the namespace a router; rp_filter off because SNAT and ETP paths are asymmetric.
  await node.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);
}

/**
 * Outside client i: on the node network, a route to the LoadBalancer/external range through one
 * node or ECMP over all nodes (a cloud load balancer), and deliberately no route to pod CIDRs.
 * ECMP hashes on L4 ports (fib_multipath_hash_policy=1) so that separate connections spread.
 */
export async function wireClient(client: Netns, i: number, nodeCount: number, lbRoute: LbRoute): Promise<void> {
  const lb =
    lbRoute.mode === 'ecmp' && nodeCount > 1
      ? `route add ${EXTERNAL_CIDR} ${Array.from({ length: nodeCount }, (_, j) => `nexthop via ${nodeAddress(j + 1)} dev ${CLIENT_INTERFACE}`).join(' ')}`
      : `route add ${EXTERNAL_CIDR} via ${nodeAddress(lbRoute.mode === 'node' ? lbRoute.node : 1)} dev ${CLIENT_INTERFACE}`;
  await client.ipBatch([
    `addr add ${clientAddress(i)}/${NODE_NETWORK_PREFIX} dev ${CLIENT_INTERFACE}`,
    `link set ${CLIENT_INTERFACE} up`,
    lb,
  ]);
  if (lbRoute.mode === 'ecmp') await client.sysctl('net.ipv4.fib_multipath_hash_policy', 1);
}
