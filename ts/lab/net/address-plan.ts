/**
 * The lab's address plan (docs/lab.md, shared/reference/lab.md). Everything comes from the RFC 2544
 * benchmarking range 198.18.0.0/15, which is never routed outside, so a lab cannot clash with a
 * real network.
 */

/** The node network (the "VPC"): the fabric bridge's subnet. */
export const NODE_NETWORK = '198.18.0.0/24';
export const NODE_NETWORK_PREFIX = 24;
/**
 * A second node network (`secondNetwork`), for nodes with a second uplink (eth1): node k is
 * 198.18.2.(10+k), its own outside clients .100–.120, as on the first.
 */
export const SECOND_NODE_NETWORK = '198.18.2.0/24';
/** The whole cluster (pod) CIDR; node k owns 198.18.(128+k).0/24 of it. */
export const CLUSTER_CIDR = '198.18.128.0/17';
/**
 * The node network's router: the nodes' default gateway, on the fabric bridge. Like the edge of a
 * real VPC it knows no further network, and answers "net unreachable" for whatever is sent its
 * way (an address no node owns, a ClusterIP a node has no datapath for).
 */
export const FABRIC_GATEWAY = '198.18.0.1';
/** ClusterIPs. */
export const SERVICE_CIDR = '198.19.0.0/17';
/** LoadBalancer ingress and external IPs. */
export const EXTERNAL_CIDR = '198.19.255.0/24';

/**
 * The pods' default gateway: a link-local address that exists nowhere, resolved by a permanent
 * neighbour entry to the MAC of the node side of the pod's veth (the Calico/Cilium shape).
 */
export const POD_GATEWAY = '169.254.1.1';

/** 16 nodes leave the node range .11–.26 clear of the client range .100–.120. */
export const MAX_NODES = 16;
export const MAX_CLIENTS = 21;
/** Pod host numbers .2–.254 of a node's /24; .1 is left free for a gateway if one is ever wanted. */
export const FIRST_POD_HOST = 2;
export const LAST_POD_HOST = 254;

export function nodeAddress(k: number): string {
  checkRange('node', k, 1, MAX_NODES);
  return `198.18.0.${10 + k}`;
}

export function clientAddress(i: number): string {
  checkRange('client', i, 1, MAX_CLIENTS);
  return `198.18.0.${100 + i - 1}`;
}

export function secondNodeAddress(k: number): string {
  checkRange('node', k, 1, MAX_NODES);
  return `198.18.2.${10 + k}`;
}

/** The j-th client of the second node network. */
export function secondClientAddress(j: number): string {
  checkRange('client', j, 1, MAX_CLIENTS);
  return `198.18.2.${100 + j - 1}`;
}

/**
 * The VXLAN pod network (`podNetwork: 'vxlan'`), flannel's shape: node k's VTEP address is the
 * network address of its pod CIDR, 198.18.(128+k).0/32 (flannel gives flannel.1 the same), and its
 * MAC a fixed, locally administered one, so that every node can write its peers' entries at once.
 */
export function vtepAddress(k: number): string {
  checkRange('node', k, 1, MAX_NODES);
  return `198.18.${128 + k}.0`;
}

export function vtepMac(k: number): string {
  checkRange('node', k, 1, MAX_NODES);
  return `0e:c6:12:00:00:${k.toString(16).padStart(2, '0')}`;
}

export function podCidr(k: number): string {
  checkRange('node', k, 1, MAX_NODES);
  return `198.18.${128 + k}.0/24`;
}

export function podAddress(k: number, host: number): string {
  checkRange('node', k, 1, MAX_NODES);
  checkRange('pod host', host, FIRST_POD_HOST, LAST_POD_HOST);
  return `198.18.${128 + k}.${host}`;
}

function checkRange(what: string, n: number, min: number, max: number): void {
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`${what} number ${n} is outside ${min}…${max}`);
}
