/**
 * The lab's node network: the fabric bridge (the "VPC"), nodes hanging off it by their uplink, and
 * outside clients on the same bridge. Veth pairs are created directly in their two namespaces, so
 * nothing ever appears in the root namespace.
 */
import { run } from '../../util/exec.js';
import {
  EXTERNAL_CIDR,
  FABRIC_GATEWAY,
  NODE_NETWORK_PREFIX,
  nodeAddress,
  podCidr,
  vtepAddress,
  vtepMac,
} from './address-plan.js';
import type { LbRoute, PodNetwork, VtepState } from '../lab-state.js';
import type { Netns } from './netns.js';

export const FABRIC_BRIDGE = 'br0';
export const SECOND_FABRIC_BRIDGE = 'br1';
export const UPLINK = 'eth0';
export const SECOND_UPLINK = 'eth1';
/** flannel's VXLAN settings: VNI 1, the Linux port 8472, the uplink's MTU less 50 bytes of headers. */
export const VXLAN_DEVICE = 'vxlan0';
export const VXLAN_VNI = 1;
export const VXLAN_PORT = 8472;
export const VXLAN_MTU = 1450;
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
export async function wireFabric(fabric: Netns, bridge = FABRIC_BRIDGE): Promise<void> {
  await fabric.ipBatch([
    `link add ${bridge} type bridge stp_state 0 forward_delay 0 mcast_snooping 0`,
    `link set ${bridge} up`,
    // The nodes' default gateway (FABRIC_GATEWAY), on the first node network only: a router that
    // reaches nothing beyond (the second network has no address here, so nothing is routed to it).
    ...(bridge === FABRIC_BRIDGE ? [`addr add ${FABRIC_GATEWAY}/${NODE_NETWORK_PREFIX} dev ${FABRIC_BRIDGE}`, 'route add unreachable default'] : []),
  ]);
  await fabric.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
}

/** Enslaves (and brings up) fabric-side ports of freshly made veth pairs. */
export async function attachToFabric(fabric: Netns, ports: string[], bridge = FABRIC_BRIDGE): Promise<void> {
  await fabric.ipBatch(ports.flatMap((p) => [`link set ${p} master ${bridge}`, `link set ${p} up`]));
}

/**
 * Node k: uplink address and GKE-like routes to every other node's pod CIDR via that node's
 * address (`routed`; with `vxlan` the overlay's routes come from wireVxlan instead). The service
 * device (SERVICE_DEVICE, where the node's own traffic to service addresses is routed) is not the
 * lab's: the agent creates it and keeps its routes (ts/agent/service-device.ts), as it does on a
 * real node.
 */
export async function wireNode(node: Netns, k: number, nodeCount: number, podNetwork: PodNetwork = 'routed'): Promise<void> {
  const routes: string[] = [];
  for (let j = 1; j <= nodeCount; j++) {
    if (j !== k && podNetwork === 'routed') routes.push(`route add ${podCidr(j)} via ${nodeAddress(j)} dev ${UPLINK}`);
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

/** Node k's VTEP as `wireVxlan` makes it. */
export function vtepOf(k: number): VtepState {
  return { device: VXLAN_DEVICE, vni: VXLAN_VNI, port: VXLAN_PORT, address: vtepAddress(k), mac: vtepMac(k), mtu: VXLAN_MTU };
}

/**
 * The overlay, as flannel's vxlan backend programs it: a VXLAN device bound to the node address
 * (no learning: every entry is written), and per other node j a route to its pod CIDR via its VTEP
 * address `onlink` on the device, a permanent neighbour entry (VTEP address → VTEP MAC) and an FDB
 * entry (VTEP MAC → j's node address, where the encapsulated packet goes). The uplink must be up.
 */
export async function wireVxlan(node: Netns, k: number, nodeCount: number): Promise<void> {
  const own = vtepOf(k);
  const peers = Array.from({ length: nodeCount }, (_, i) => i + 1).filter((j) => j !== k);
  await node.ipBatch([
    `link add ${own.device} type vxlan id ${own.vni} local ${nodeAddress(k)} dev ${UPLINK} dstport ${own.port} nolearning`,
    `link set ${own.device} address ${own.mac} mtu ${own.mtu} up`,
    `addr add ${own.address}/32 dev ${own.device}`,
    ...peers.flatMap((j) => {
      const peer = vtepOf(j);
      return [
        `neigh replace ${peer.address} lladdr ${peer.mac} dev ${own.device} nud permanent`,
        `route add ${podCidr(j)} via ${peer.address} dev ${own.device} onlink`,
      ];
    }),
  ]);
  for (const j of peers) await node.exec('bridge', ['fdb', 'append', vtepMac(j), 'dev', own.device, 'dst', nodeAddress(j), 'self', 'permanent']);
}

/** A second uplink (eth1) on the second node network: an address there, nothing routed through it. */
export async function wireSecondUplink(node: Netns, address: string): Promise<void> {
  await node.ipBatch([`addr add ${address}/${NODE_NETWORK_PREFIX} dev ${SECOND_UPLINK}`, `link set ${SECOND_UPLINK} up`]);
}

/**
 * Node k: uplink address and GKE-like routes to every other node's pod CIDR via that node's
 * address (`routed`; with `vxlan` the overlay's routes come from wireVxlan instead). The service
 * device (SERVICE_DEVICE, where the node's own traffic to service addresses is routed) is not the
 * lab's: the agent creates it and keeps its routes (ts/agent/service-device.ts), as it does on a
 * real node.
 * ECMP hashes on L4 ports (fib_multipath_hash_policy=1) so that separate connections spread.
 */
export async function wireClient(client: Netns, address: string, gateways: readonly string[], lbRoute: LbRoute): Promise<void> {
  const lb =
    lbRoute.mode === 'ecmp' && gateways.length > 1
      ? `route add ${EXTERNAL_CIDR} ${gateways.map((g) => `nexthop via ${g} dev ${CLIENT_INTERFACE}`).join(' ')}`
      : `route add ${EXTERNAL_CIDR} via ${gateways[0]} dev ${CLIENT_INTERFACE}`;
  await client.ipBatch([
    `addr add ${address}/${NODE_NETWORK_PREFIX} dev ${CLIENT_INTERFACE}`,
    `link set ${CLIENT_INTERFACE} up`,
    lb,
  ]);
  if (lbRoute.mode === 'ecmp') await client.sysctl('net.ipv4.fib_multipath_hash_policy', 1);
}
