import { DEFAULT_TABLE_SIZE, validateTableSize } from '../maglev/prime.js';
import { cidrContains, compareIPv4Text, isCidr6, isLoopback, parseCidr4, parseIPv4 } from '../util/ip.js';
import type { Problem } from './problems.js';

/** A TCP socket the agent serves on the node (ProxyConfig.agentPorts). */
export interface AgentPort {
  /** '0.0.0.0': every node address. */
  readonly address: string;
  readonly port: number;
  /** What is served there, for the message ("healthz", "metrics"). */
  readonly what: string;
}

/**
 * Proxy configuration. Option names follow kube-proxy's KubeProxyConfiguration where one exists;
 * durations are milliseconds (the agent turns "30s"-style strings into numbers).
 */
export interface ProxyConfig {
  /** Value of the service.kubernetes.io/service-proxy-name label that selects us. */
  readonly proxyName: string;
  /**
   * Pod CIDR(s) of the cluster, comma-separated as in kube-proxy. ClusterIP traffic from outside
   * it is masqueraded; empty means "do not masquerade by source" (kube-proxy's behaviour too).
   */
  readonly clusterCIDR: string;
  /** CIDRs whose node addresses accept NodePort traffic; empty means every node address. */
  readonly nodePortAddresses: readonly string[];
  /** Masquerade all ClusterIP traffic (kube-proxy --masquerade-all). */
  readonly masqueradeAll: boolean;
  /** Full resync interval (kube-proxy default 30 s). */
  readonly syncPeriod: number;
  /** Minimum interval between syncs (kube-proxy default 1 s). */
  readonly minSyncPeriod: number;
  readonly conntrack: ConntrackConfig;
  /** Maglev lookup table size M: a prime in 251…131071. */
  readonly maglevTableSize: number;
  /**
   * Source ports our SNAT may use. Above Linux's default ip_local_port_range (32768–60999) and the
   * NodePort range (30000–32767) so our translations never collide with the kernel's own sockets.
   */
  readonly snatPortRange: PortRange;
  /**
   * TCP ports the agent itself serves on the node (healthz; metrics when bound beyond loopback):
   * no externalIP, LoadBalancer IP or NodePort may shadow them (refusals.ts). Filled by the agent
   * from the sockets it bound.
   */
  readonly agentPorts: readonly AgentPort[];
}

export interface ConntrackConfig {
  /** kube-proxy conntrack.tcpEstablishedTimeout, default 24 h. */
  readonly tcpEstablishedTimeout: number;
  /** kube-proxy conntrack.tcpCloseWaitTimeout, default 1 h. */
  readonly tcpCloseWaitTimeout: number;
  /** kube-proxy conntrack.udpTimeout; default is the kernel's nf_conntrack_udp_timeout, 30 s. */
  readonly udpTimeout: number;
  /** kube-proxy conntrack.udpStreamTimeout; default is the kernel's, 120 s. */
  readonly udpStreamTimeout: number;
}

export interface PortRange {
  readonly min: number;
  readonly max: number;
}

export interface NodeInfo {
  /** Node name as in EndpointSlice endpoints[].nodeName: decides which endpoints are local. */
  readonly name: string;
  /** The node's IPv4 addresses: candidates for NodePort frontends. */
  readonly addresses: readonly string[];
  /** topology.kubernetes.io/zone of the node, for zone hints. */
  readonly zone?: string;
  readonly podCIDRs: readonly string[];
}

const SECOND = 1000;
const HOUR = 3600 * SECOND;

export const DEFAULT_PROXY_CONFIG: ProxyConfig = Object.freeze({
  proxyName: 'bpfproxy',
  clusterCIDR: '',
  nodePortAddresses: Object.freeze([]) as readonly string[],
  masqueradeAll: false,
  syncPeriod: 30 * SECOND,
  minSyncPeriod: 1 * SECOND,
  conntrack: Object.freeze({
    tcpEstablishedTimeout: 24 * HOUR,
    tcpCloseWaitTimeout: 1 * HOUR,
    udpTimeout: 30 * SECOND,
    udpStreamTimeout: 120 * SECOND,
  }),
  maglevTableSize: DEFAULT_TABLE_SIZE,
  snatPortRange: Object.freeze({ min: 61000, max: 65535 }),
  agentPorts: Object.freeze([]) as readonly AgentPort[],
});

export type ProxyConfigInput = Partial<Omit<ProxyConfig, 'conntrack' | 'snatPortRange'>> & {
  readonly conntrack?: Partial<ConntrackConfig>;
  readonly snatPortRange?: PortRange;
};

/** Defaults filled in for every option not given (conntrack merged field by field). */
export function resolveProxyConfig(input: ProxyConfigInput = {}): ProxyConfig {
  return {
    ...DEFAULT_PROXY_CONFIG,
    ...input,
    conntrack: { ...DEFAULT_PROXY_CONFIG.conntrack, ...input.conntrack },
    snatPortRange: input.snatPortRange ?? DEFAULT_PROXY_CONFIG.snatPortRange,
  };
}

/** Config problems the model can see; the offending entries are ignored (fail closed). */
export function checkProxyConfig(config: ProxyConfig): Problem[] {
  const problems: Problem[] = [];
  const report = (name: string, reason: string): void => {
    problems.push({ kind: 'Config', namespace: '', name, reason });
  };
  for (const cidr of splitClusterCIDR(config.clusterCIDR)) {
    if (parseCidr4(cidr) === undefined && !isCidr6(cidr)) report('clusterCIDR', `${JSON.stringify(cidr)} is not a CIDR`);
  }
  for (const entry of config.nodePortAddresses) {
    if (entry !== NODE_PORT_ADDRESSES_PRIMARY && parseCidr4(entry) === undefined && !isCidr6(entry)) {
      report('nodePortAddresses', `${JSON.stringify(entry)} is not a CIDR`);
    }
  }
  try {
    validateTableSize(config.maglevTableSize);
  } catch (error) {
    report('maglevTableSize', (error as Error).message);
  }
  const { min, max } = config.snatPortRange;
  if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 1024 && min <= max && max <= 65535)) {
    report('snatPortRange', `${min}…${max} is not a port range within 1024…65535`);
  }
  return problems;
}

/** kube-proxy's special nodePortAddresses value: the node's primary address. */
export const NODE_PORT_ADDRESSES_PRIMARY = 'primary';

export function splitClusterCIDR(clusterCIDR: string): string[] {
  return clusterCIDR
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/**
 * Node addresses that accept NodePort traffic: all IPv4 node addresses when nodePortAddresses is
 * empty, else those inside one of its CIDRs ("primary" = the first node address). Loopback never:
 * unlike kube-proxy's iptables mode we do not need route_localnet, and it is a known foot-gun.
 * Invalid entries match nothing rather than widening the set.
 */
export function selectNodePortAddresses(node: NodeInfo, config: ProxyConfig): string[] {
  const cidrs = config.nodePortAddresses.flatMap((entry) => {
    const cidr = parseCidr4(entry);
    return cidr === undefined ? [] : [cidr];
  });
  const primary = config.nodePortAddresses.includes(NODE_PORT_ADDRESSES_PRIMARY) ? node.addresses[0] : undefined;
  const all = config.nodePortAddresses.length === 0;
  const selected = new Set<string>();
  for (const address of node.addresses) {
    const ip = parseIPv4(address);
    if (ip === undefined || isLoopback(ip)) continue;
    if (all || address === primary || cidrs.some((cidr) => cidrContains(cidr, ip))) selected.add(address);
  }
  return [...selected].sort(compareIPv4Text);
}
