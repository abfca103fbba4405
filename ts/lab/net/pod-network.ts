/**
 * A pod's network, the shape Calico and Cilium use: a point-to-point veth, the pod side `eth0` with a
 * /32, the node side (named after the pod) with no address at all, a /32 route on the node to the
 * pod, and in the pod a default route via a link-local gateway (169.254.1.1, `onlink`) whose
 * neighbour entry is pinned to the node side's MAC.
 *
 * Why this shape: every packet a pod sends — to another pod, to a ClusterIP, anywhere — leaves through
 * its one veth and enters the node on the node side, where the tc program sees it before routing;
 * there is no bridge on the node to bypass it. The permanent neighbour entry means no ARP and no
 * proxy_arp sysctl, and nothing needs an address from the pod CIDR on the node.
 */
import { POD_GATEWAY } from './address-plan.js';
import { macOf, type Netns } from './netns.js';
import { vethBetween } from './node-network.js';

export const POD_INTERFACE = 'eth0';

/**
 * Wires the pod and returns the MAC of the node side (the pod's gateway). `mtu`: the pod network's
 * (on an overlay, the VXLAN device's, as flannel's CNI sets it); default the veth's 1500.
 */
export async function wirePod(node: Netns, pod: Netns, hostInterface: string, podAddress: string, mtu?: number): Promise<string> {
  await vethBetween(pod, POD_INTERFACE, node, hostInterface);
  const setMtu = (ifname: string) => (mtu === undefined ? [] : [`link set ${ifname} mtu ${mtu}`]);
  await node.ipBatch([...setMtu(hostInterface), `link set ${hostInterface} up`, `route add ${podAddress}/32 dev ${hostInterface} scope link`]);
  const hostMac = await macOf(node, hostInterface);
  await pod.ipBatch([
    ...setMtu(POD_INTERFACE),
    `addr add ${podAddress}/32 dev ${POD_INTERFACE}`,
    `link set ${POD_INTERFACE} up`,
    `neigh replace ${POD_GATEWAY} lladdr ${hostMac} dev ${POD_INTERFACE} nud permanent`,
    `route add default via ${POD_GATEWAY} dev ${POD_INTERFACE} onlink`,
  ]);
  return hostMac;
}
