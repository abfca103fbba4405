/**
 * Frontends no Service may have, whoever claims first: what the API server does not check and a
 * Service author could use to take someone else's traffic (the CVE-2020-8554 class).
 *
 *   - an externalIP or LoadBalancer IP equal to another Service's ClusterIP, on any port: that
 *     address belongs to the other Service;
 *   - an externalIP or LoadBalancer IP on a node address, on a TCP port the agent itself serves
 *     there (healthz, metrics, a health-check node port): the exact frontend would shadow the
 *     agent's socket and the node would look dead to every load balancer;
 *   - an externalIP or LoadBalancer IP on a node port address, on another Service's NodePort: the
 *     exact frontend wins over the NodePort's wildcard (bpf/lib/lb.h svc_lookup);
 *   - a NodePort on a port the agent serves on the node's addresses (a hand-written nodePort).
 *
 * Node addresses as externalIPs on any other port stay valid, as with kube-proxy. A refused
 * frontend is reported and left out; the rest of its Service is served.
 */
import type { AgentPort, NodeInfo, ProxyConfig } from './config.js';
import { serviceKey } from './endpoints.js';
import { parseIPv4 } from '../util/ip.js';
import type { Problem } from './problems.js';
import type { FrontendKind, Protocol, ServicePortRef } from './types.js';

/** What a refusal needs to know of a frontend (a FrontendDraft is one). */
export interface FrontendClaim {
  readonly kind: FrontendKind;
  readonly address: string;
  readonly port: number;
  readonly group: { readonly service: ServicePortRef };
}

/** Counted owners: the same Service claims an address once per port. */
type Owners = Map<string, Map<string, number>>;

function addOwner(owners: Owners, key: string, owner: string, by: number): void {
  let counts = owners.get(key);
  if (counts === undefined) owners.set(key, (counts = new Map()));
  const n = (counts.get(owner) ?? 0) + by;
  if (n > 0) counts.set(owner, n);
  else counts.delete(owner);
  if (counts.size === 0) owners.delete(key);
}

/** The first owner (by key) that is not `self`. */
function otherOwner(owners: Owners, key: string, self?: string): string | undefined {
  const counts = owners.get(key);
  if (counts === undefined) return undefined;
  return [...counts.keys()].filter((owner) => owner !== self).sort()[0];
}

function ownerOf(ref: { namespace: string; name: string }): string {
  return serviceKey(ref.namespace, ref.name);
}

/**
 * The cluster-wide facts refusals depend on (ClusterIP addresses, NodePorts, health-check node
 * ports), kept as counted indexes so that the incremental model can add and remove one Service's
 * claims; computeDesiredState fills it once.
 */
export class FrontendRefusals {
  private readonly clusterIPs: Owners = new Map();
  private readonly nodePorts: Owners = new Map();
  private readonly healthCheckPorts: Owners = new Map();
  private readonly nodeAddresses: ReadonlySet<string>;
  private readonly nodePortAddresses: ReadonlySet<string>;
  private readonly agentPorts: readonly AgentPort[];

  constructor(node: NodeInfo, config: ProxyConfig, nodePortAddresses: readonly string[]) {
    this.nodeAddresses = new Set(node.addresses.filter((a) => parseIPv4(a) !== undefined));
    this.nodePortAddresses = new Set(nodePortAddresses);
    this.agentPorts = config.agentPorts;
  }

  /** Counts (+1) or uncounts (-1) a frontend claim in the indexes. */
  frontend(f: FrontendClaim, by: 1 | -1): void {
    if (f.kind === 'ClusterIP') addOwner(this.clusterIPs, f.address, ownerOf(f.group.service), by);
    else if (f.kind === 'NodePort') addOwner(this.nodePorts, `${f.port}/${f.group.service.protocol}`, ownerOf(f.group.service), by);
  }

  healthCheck(check: { port: number; namespace: string; name: string }, by: 1 | -1): void {
    addOwner(this.healthCheckPorts, String(check.port), ownerOf(check), by);
  }

  /**
   * Claim keys (address:port/protocol) whose refusal may change when this frontend claim or health
   * check comes or goes: the incremental model re-decides them. A ClusterIP touches its address
   * on every port, which the caller expands (`address` is returned instead of a claim key).
   */
  affected(f: FrontendClaim): { address?: string; claimKeys: string[] } {
    const protocol = f.group.service.protocol;
    if (f.kind === 'ClusterIP') return { address: f.address, claimKeys: [] };
    if (f.kind === 'NodePort') return { claimKeys: [...this.nodePortAddresses].map((a) => `${a}:${f.port}/${protocol}`) };
    return { claimKeys: [] };
  }

  affectedByHealthCheck(port: number): string[] {
    return [...this.nodeAddresses, '0.0.0.0'].map((a) => `${a}:${port}/TCP`);
  }

  /** Why this frontend is refused, or undefined when it may be served. */
  refusal(f: FrontendClaim): string | undefined {
    const self = ownerOf(f.group.service);
    const protocol: Protocol = f.group.service.protocol;
    if (f.kind === 'NodePort') {
      if (protocol !== 'TCP') return undefined;
      const agent = this.agentPorts.find((p) => p.port === f.port && (p.address === '0.0.0.0' || this.nodePortAddresses.has(p.address)));
      if (agent !== undefined) return `port ${f.port} is where the agent serves ${agent.what} on the node`;
      const check = otherOwner(this.healthCheckPorts, String(f.port));
      if (check !== undefined) return `port ${f.port} is the health-check node port of ${check}`;
      return undefined;
    }
    if (f.kind !== 'ExternalIP' && f.kind !== 'LoadBalancer') return undefined;
    const owner = otherOwner(this.clusterIPs, f.address, self);
    if (owner !== undefined) return `${f.address} is the ClusterIP of ${owner}`;
    const onNode = this.nodeAddresses.has(f.address);
    if (protocol === 'TCP') {
      const agent = this.agentPorts.find((p) => p.port === f.port && (p.address === f.address || (p.address === '0.0.0.0' && onNode)));
      if (agent !== undefined) return `${f.address}:${f.port} is where the agent serves ${agent.what} on the node`;
      const check = onNode ? otherOwner(this.healthCheckPorts, String(f.port)) : undefined;
      if (check !== undefined) return `${f.address} is a node address and ${f.port} the health-check node port of ${check}`;
    }
    if (this.nodePortAddresses.has(f.address)) {
      const nodePort = otherOwner(this.nodePorts, `${f.port}/${protocol}`, self);
      if (nodePort !== undefined) return `${f.address} is a node address and ${f.port}/${protocol} the NodePort of ${nodePort}`;
    }
    return undefined;
  }
}

export function refusedFrontendProblem(key: string, f: FrontendClaim, reason: string): Problem {
  const ref = f.group.service;
  return {
    kind: 'Service',
    namespace: ref.namespace,
    name: ref.name,
    port: ref.portName === '' ? String(f.port) : ref.portName,
    reason: `${f.kind} frontend ${key} refused: ${reason}`,
  };
}
