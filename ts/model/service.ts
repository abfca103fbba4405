import type { V1Service, V1ServicePort } from '@kubernetes/client-node';

import { formatCidr4, isCidr6, isIPv6, parseCidr4, parseIPv4 } from '../util/ip.js';
import type { ProblemList } from './problems.js';
import { PROTOCOLS, type Protocol, type ServicePortRef, type SessionAffinity } from './types.js';

export const LABEL_SERVICE_PROXY_NAME = 'service.kubernetes.io/service-proxy-name';
export const LABEL_HEADLESS = 'service.kubernetes.io/headless';
/** core/v1 default for sessionAffinityConfig.clientIP.timeoutSeconds. */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;
/** API validation upper bound for the affinity timeout (one day). */
export const MAX_AFFINITY_TIMEOUT_SECONDS = 86400;

export interface ServicePortInfo {
  readonly ref: ServicePortRef;
  readonly port: number;
  /** 0 when the port has no node port. */
  readonly nodePort: number;
  /** How problems name this port: its name, or its number when unnamed. */
  readonly label: string;
}

/** A Service reduced to what proxying needs, validated, IPv4 only. */
export interface ServiceInfo {
  readonly namespace: string;
  readonly name: string;
  readonly type: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  readonly clusterIPs: readonly string[];
  readonly externalIPs: readonly string[];
  /** status.loadBalancer.ingress IPs in VIP mode (ipMode VIP or unset). */
  readonly loadBalancerIPs: readonly string[];
  /** Normalized IPv4 CIDRs. */
  readonly loadBalancerSourceRanges: readonly string[];
  /** ETP Local; only meaningful for NodePort and LoadBalancer (kube-proxy ExternalPolicyLocal). */
  readonly externalPolicyLocal: boolean;
  readonly internalPolicyLocal: boolean;
  readonly sessionAffinity: SessionAffinity | null;
  /** Set for LoadBalancer + ETP Local with a valid port (kube-proxy NeedsHealthCheck). */
  readonly healthCheckNodePort: number | null;
  readonly ports: readonly ServicePortInfo[];
  /**
   * metadata.creationTimestamp (ms since the epoch; Infinity when unknown) and metadata.uid ('' when
   * unknown): who was there first, which decides frontend conflicts as the API server's allocation
   * would (orderFrontendClaims), never the name.
   */
  readonly createdAt: number;
  readonly uid: string;
}

export type ProxiedDecision = { readonly proxied: true } | { readonly proxied: false; readonly why: string };

/**
 * Whether kube-proxy would proxy this Service at all (its informer label selector plus
 * ShouldSkipService). Skipped Services are not problems: they are someone else's business.
 */
export function isProxied(service: V1Service, proxyName: string): ProxiedDecision {
  const labels = service.metadata?.labels ?? {};
  const proxy = labels[LABEL_SERVICE_PROXY_NAME];
  if (proxy !== undefined && proxy !== proxyName) {
    return { proxied: false, why: `service-proxy-name is ${proxy}` };
  }
  if (labels[LABEL_HEADLESS] !== undefined) return { proxied: false, why: 'headless label' };
  if (service.spec?.type === 'ExternalName') return { proxied: false, why: 'ExternalName' };
  const clusterIP = service.spec?.clusterIP;
  if (clusterIP === undefined || clusterIP === '' || clusterIP === 'None') {
    return { proxied: false, why: 'headless (no cluster IP)' };
  }
  return { proxied: true };
}

export function serviceNamespace(service: V1Service): string {
  // kubectl's default when a manifest names no namespace.
  return service.metadata?.namespace || 'default';
}

const TYPES = new Set(['ClusterIP', 'NodePort', 'LoadBalancer']);

/**
 * Validates and reduces a proxied Service. Returns undefined (with problems recorded) when the
 * Service as a whole is unusable; a bad port only drops that port. IPv6 addresses are set aside
 * with a note until the IPv6 dataplane exists.
 */
export function parseService(service: V1Service, problems: ProblemList): ServiceInfo | undefined {
  const namespace = serviceNamespace(service);
  const name = service.metadata?.name ?? '';
  const spec = service.spec ?? {};
  const report = (reason: string, port?: string): void =>
    problems.add(port === undefined ? { kind: 'Service', namespace, name, reason } : { kind: 'Service', namespace, name, port, reason });
  let valid = true;
  const fail = (reason: string): void => {
    report(reason);
    valid = false;
  };

  if (name === '') fail('metadata.name is empty');
  const type = spec.type ?? 'ClusterIP';
  if (!TYPES.has(type)) fail(`unknown spec.type ${JSON.stringify(type)}`);

  const addresses = (field: string, values: readonly string[]): string[] => {
    const v4: string[] = [];
    for (const value of values) {
      if (parseIPv4(value) !== undefined) v4.push(value);
      else if (isIPv6(value)) report(`${field} ${value} skipped: IPv6 is not supported yet`);
      else fail(`${field} ${JSON.stringify(value)} is not an IP address`);
    }
    return v4;
  };

  const clusterIPs = addresses(
    'clusterIP',
    spec.clusterIPs && spec.clusterIPs.length > 0 ? spec.clusterIPs : [spec.clusterIP ?? ''],
  );
  if (valid && clusterIPs.length === 0) {
    // An IPv6-only Service: nothing for an IPv4 proxier to do, as with kube-proxy per family.
    return undefined;
  }
  const externalIPs = addresses('externalIP', spec.externalIPs ?? []);
  let loadBalancerIPs = addresses(
    'loadBalancer ingress IP',
    (service.status?.loadBalancer?.ingress ?? [])
      .filter((ingress) => ingress.ip !== undefined && ingress.ip !== '')
      // ipMode Proxy: the load balancer proxies and delivers to node ports itself.
      .filter((ingress) => ingress.ipMode === undefined || ingress.ipMode === 'VIP')
      .map((ingress) => ingress.ip!),
  );

  const loadBalancerSourceRanges: string[] = [];
  for (const range of spec.loadBalancerSourceRanges ?? []) {
    const cidr = parseCidr4(range);
    if (cidr !== undefined) loadBalancerSourceRanges.push(formatCidr4(cidr));
    else if (isCidr6(range)) report(`loadBalancerSourceRange ${range} skipped: IPv6 is not supported yet`);
    // Fail closed: dropping a bad range could open the load balancer to everyone.
    else fail(`loadBalancerSourceRange ${JSON.stringify(range)} is not a CIDR`);
  }
  if (valid && loadBalancerSourceRanges.length === 0 && (spec.loadBalancerSourceRanges ?? []).length > 0 && loadBalancerIPs.length > 0) {
    // Only IPv6 ranges: no IPv4 client is allowed. No ranges means everyone to the datapath, so
    // the IPv4 load balancer frontends are left out instead (fail closed, never open).
    report('loadBalancerSourceRanges allow no IPv4 client (IPv6 ranges only): the IPv4 LoadBalancer frontends are not programmed');
    loadBalancerIPs = [];
  }

  const externalPolicy = policy(spec.externalTrafficPolicy, 'externalTrafficPolicy', fail);
  const internalPolicy = policy(spec.internalTrafficPolicy, 'internalTrafficPolicy', fail);
  const externalPolicyLocal = externalPolicy === 'Local' && (type === 'NodePort' || type === 'LoadBalancer');

  let sessionAffinity: SessionAffinity | null = null;
  if (spec.sessionAffinity === 'ClientIP') {
    const timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS;
    if (Number.isInteger(timeout) && timeout >= 1 && timeout <= MAX_AFFINITY_TIMEOUT_SECONDS) {
      sessionAffinity = { timeoutSeconds: timeout };
    } else {
      fail(`sessionAffinity timeoutSeconds ${String(timeout)} is outside 1…${MAX_AFFINITY_TIMEOUT_SECONDS}`);
    }
  } else if (spec.sessionAffinity !== undefined && spec.sessionAffinity !== 'None') {
    fail(`unknown sessionAffinity ${JSON.stringify(spec.sessionAffinity)}`);
  }

  let healthCheckNodePort: number | null = null;
  if (type === 'LoadBalancer' && externalPolicyLocal) {
    const port = spec.healthCheckNodePort;
    // As kube-proxy: an ETP Local load balancer without a valid port just gets no health check.
    if (isPort(port)) healthCheckNodePort = port;
    else report(`healthCheckNodePort ${String(port)} is not a port; no health check served`);
  }

  if (!valid) return undefined;

  const ports: ServicePortInfo[] = [];
  const seen = new Map<string, string>();
  for (const [index, port] of (spec.ports ?? []).entries()) {
    const parsed = parsePort(namespace, name, port, index, report);
    if (parsed === undefined) continue;
    const identity = `${parsed.ref.portName}/${parsed.ref.protocol}`;
    const numberIdentity = `#${parsed.port}/${parsed.ref.protocol}`;
    if (seen.has(identity) || seen.has(numberIdentity)) {
      report('duplicate port (same name or number and protocol); only the first is used', parsed.label);
      continue;
    }
    seen.set(identity, parsed.label);
    seen.set(numberIdentity, parsed.label);
    ports.push(parsed);
  }

  return {
    namespace,
    name,
    type: type as ServiceInfo['type'],
    clusterIPs,
    externalIPs,
    loadBalancerIPs,
    loadBalancerSourceRanges,
    externalPolicyLocal,
    internalPolicyLocal: internalPolicy === 'Local',
    sessionAffinity,
    healthCheckNodePort,
    ports,
    createdAt: timestampOf(service.metadata?.creationTimestamp),
    uid: typeof service.metadata?.uid === 'string' ? service.metadata.uid : '',
  };
}

/** A creationTimestamp as the API gives it (a Date from the client, an RFC 3339 string from YAML). */
function timestampOf(value: unknown): number {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isFinite(ms) ? ms : Infinity;
}

function policy(value: string | undefined, field: string, fail: (reason: string) => void): 'Cluster' | 'Local' {
  if (value === undefined || value === '' || value === 'Cluster') return 'Cluster';
  if (value === 'Local') return 'Local';
  fail(`unknown ${field} ${JSON.stringify(value)}`);
  return 'Cluster';
}

export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

function parsePort(
  namespace: string,
  name: string,
  port: V1ServicePort,
  index: number,
  report: (reason: string, port?: string) => void,
): ServicePortInfo | undefined {
  const portName = port.name ?? '';
  const label = portName !== '' ? portName : String(port.port ?? `#${index}`);
  const protocol = port.protocol ?? 'TCP';
  if (!PROTOCOLS.includes(protocol as Protocol)) {
    report(`unknown protocol ${JSON.stringify(protocol)}`, label);
    return undefined;
  }
  if (!isPort(port.port)) {
    report(`port ${String(port.port)} is outside 1…65535`, label);
    return undefined;
  }
  // Kept in the model (services, explain show it), but never written to the maps (entries.ts).
  if (protocol === 'SCTP') report('SCTP is not served by bpfproxy yet: traffic to this port passes untouched (docs/datapath.md)', label);
  const nodePort = port.nodePort ?? 0;
  if (nodePort !== 0 && !isPort(nodePort)) {
    report(`nodePort ${String(nodePort)} is outside 1…65535`, label);
    return undefined;
  }
  return {
    ref: { namespace, name, portName, protocol: protocol as Protocol },
    port: port.port,
    nodePort,
    label,
  };
}
