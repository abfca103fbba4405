import type { IdAllocatorSnapshot } from './ids.js';
import type { Problem } from './problems.js';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

export type FrontendKind = 'ClusterIP' | 'ExternalIP' | 'LoadBalancer' | 'NodePort';
export type TrafficPolicy = 'Cluster' | 'Local';
/** Topology chosen from endpoint hints, named like kube-proxy's topologyModeFromHints result. */
export type TopologyMode = 'None' | 'PreferSameZone' | 'PreferSameNode';
/**
 * What the dataplane does with a new flow to a frontend (from outside the node for external
 * kinds): forward to a backend, reject (no endpoints anywhere: ICMP unreachable / RST),
 * or drop (Local policy with no local endpoint).
 */
export type FrontendAction = 'forward' | 'reject' | 'drop';
/**
 * Which new flows are SNATed to the node, kube-proxy's rules: a ClusterIP masquerades sources
 * outside the cluster CIDRs when there are any (the local-traffic detector; none without), every
 * source with masqueradeAll (ClusterIP only). External traffic under ETP Cluster is masqueraded
 * when its backend is on another node ('otherNodes': kube-proxy masquerades it all; a backend on
 * this node sees the client here), and never under ETP Local. Two rules hold for every frontend and
 * are not repeated here: hairpin traffic (a backend reaching itself) is masqueraded, and so is
 * traffic that entered through the uplink to another node's backend, whose reply must come back.
 */
export type Masquerade = 'all' | 'outsideClusterCIDR' | 'otherNodes' | 'none';
/** The masquerade rules of a configuration, computed once (masqueradeRulesOf). */
export interface MasqueradeRules {
  /** The ClusterIP frontends' rule. */
  readonly clusterIP: Masquerade;
  /**
   * There is a local-traffic detector (clusterCIDR): ClusterIPs masquerade sources outside it, and
   * external frontends serve sources inside it as cluster traffic (every endpoint, as kube-proxy's
   * KUBE-EXT chains send pod sources to KUBE-SVC).
   */
  readonly detectLocal: boolean;
}
/** Internal: ClusterIP frontends; external: NodePort, LoadBalancer and externalIP frontends. */
export type Scope = 'internal' | 'external';

/** kube-proxy's ServicePortName plus protocol: the unit of load balancing. */
export interface ServicePortRef {
  readonly namespace: string;
  readonly name: string;
  /** Service port name, '' for a single unnamed port. */
  readonly portName: string;
  readonly protocol: Protocol;
}

export interface SessionAffinity {
  /** ClientIP affinity lifetime since the client's last packet. */
  readonly timeoutSeconds: number;
}

export interface DesiredFrontend {
  /** "<kind> <address>:<port>/<protocol>", unique. */
  readonly key: string;
  readonly kind: FrontendKind;
  /** IPv4 address; "0.0.0.0" for NodePort, which applies to every address in nodePortAddresses. */
  readonly address: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly service: ServicePortRef;
  /** Id of the frontend group (DesiredService) this frontend resolves to. */
  readonly serviceId: number;
  /** Policy applying to this frontend: internalTrafficPolicy for ClusterIP, else external. */
  readonly trafficPolicy: TrafficPolicy;
  readonly externalTrafficPolicy: TrafficPolicy;
  readonly internalTrafficPolicy: TrafficPolicy;
  readonly sessionAffinity: SessionAffinity | null;
  /** Allowed client CIDRs (LoadBalancer frontends only); empty means everyone. */
  readonly loadBalancerSourceRanges: readonly string[];
  /** Usable endpoints cluster-wide (ready, topology-filtered; else serving+terminating). */
  readonly clusterEndpoints: readonly string[];
  /** Usable endpoints on this node (ready; else serving+terminating). */
  readonly localEndpoints: readonly string[];
  readonly action: FrontendAction;
  readonly masquerade: Masquerade;
  /** Sources in the cluster CIDRs are told apart (MasqueradeRules.detectLocal): ClusterIPs, and external frontends under ETP Local. */
  readonly detectLocal: boolean;
  /** Consistent hashing for external kinds, so any node picks the same backend for a flow. */
  readonly maglev: boolean;
  readonly healthCheckNodePort: number | null;
}

/** A frontend group: the frontends of one service port and scope share id, backends and table. */
export interface DesiredService {
  readonly id: number;
  /** "<namespace>/<name>[:<portName>]/<protocol>#<scope>": the key ids are allocated by. */
  readonly key: string;
  readonly service: ServicePortRef;
  readonly scope: Scope;
  readonly trafficPolicy: TrafficPolicy;
  /** Backend ids to choose from for new flows, ordered by backend key. */
  readonly backends: readonly number[];
  readonly action: FrontendAction;
  readonly maglev: boolean;
  readonly sessionAffinity: SessionAffinity | null;
  readonly topologyMode: TopologyMode;
  /**
   * For external groups under ETP Local: the internal group that flows originating on this node
   * (its pods and the host) use instead, since kube-proxy lets them reach every endpoint.
   */
  readonly shortCircuitServiceId: number | null;
}

/**
 * Every endpoint of a proxied service port, usable or not: established flows keep their backend
 * while it is still listed (terminating or not ready), so the dataplane must keep its entry.
 */
export interface DesiredBackend {
  readonly id: number;
  /** "<ip>:<port>/<protocol>": the stable name Maglev hashes. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly nodeName: string | null;
  readonly local: boolean;
}

export interface DesiredHealthCheck {
  readonly port: number;
  readonly namespace: string;
  readonly name: string;
  /** Distinct local ready endpoint IPs over all ports; terminating-only counts 0 (→ 503). */
  readonly localEndpoints: number;
}

export interface IdState {
  readonly services: IdAllocatorSnapshot;
  readonly backends: IdAllocatorSnapshot;
}

export interface DesiredState {
  readonly frontends: readonly DesiredFrontend[];
  readonly services: readonly DesiredService[];
  readonly backends: readonly DesiredBackend[];
  readonly healthChecks: readonly DesiredHealthCheck[];
  /** Node addresses the NodePort frontends apply to (nodePortAddresses ∩ node, no loopback). */
  readonly nodePortAddresses: readonly string[];
  readonly problems: readonly Problem[];
  /** Id assignments to pass back in as `previousIds` on the next call. */
  readonly ids: IdState;
}
