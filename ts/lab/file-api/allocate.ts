/**
 * What the API server and a cloud controller make of an applied Service, for the lab's file source:
 * defaults, a ClusterIP from the Service CIDR, node ports from 30000–32767, a health-check node port
 * for `externalTrafficPolicy: Local` LoadBalancers, and a LoadBalancer ingress IP from the external
 * range into status.loadBalancer.ingress. Explicit values are honoured; a conflict is refused with
 * the API server's wording. Allocations survive a re-apply and a type change, as on a real cluster
 * (kubectl apply keeps fields the server set, and the API server keeps them across type changes).
 *
 * Pure: the caller passes the Service as applied, its live predecessor and every other live Service.
 *
 * Dynamic choices are the lowest free value rather than random (the API server picks at random) so
 * that the demo and docs are reproducible. ClusterIPs are handed out from 198.19.1.1 upwards and the
 * first /24 is kept for explicit ones while anything else is free (the "static band" of KEP-3070).
 */
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';

import { cidrContains, formatIPv4, maskOf, parseCidr4, parseIPv4, type Cidr4 } from '../../util/ip.js';
import { EXTERNAL_CIDR, SERVICE_CIDR } from '../net/address-plan.js';

export interface AllocationRanges {
  serviceCidr: string;
  nodePorts: { min: number; max: number };
  loadBalancerCidr: string;
}

export const LAB_RANGES: AllocationRanges = {
  serviceCidr: SERVICE_CIDR,
  nodePorts: { min: 30000, max: 32767 },
  loadBalancerCidr: EXTERNAL_CIDR,
};

/** An applied object the API server would refuse: which object, which field, why. */
export class InvalidObjectError extends Error {
  constructor(
    readonly object: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${object} is invalid: ${field}: ${reason}`);
    this.name = 'InvalidObjectError';
  }
}

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
const DNS_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Addresses and ports other Services hold. */
interface InUse {
  clusterIPs: Map<number, string>;
  nodePorts: Map<number, string>;
  loadBalancerIPs: Map<number, string>;
  externalIPs: Set<number>;
}

function inUse(others: readonly V1Service[]): InUse {
  const used: InUse = { clusterIPs: new Map(), nodePorts: new Map(), loadBalancerIPs: new Map(), externalIPs: new Set() };
  for (const s of others) {
    const name = `${s.metadata?.namespace ?? 'default'}/${s.metadata?.name}`;
    const ip = parseIPv4(s.spec?.clusterIP ?? '');
    if (ip !== undefined) used.clusterIPs.set(ip, name);
    for (const p of s.spec?.ports ?? []) if (p.nodePort) used.nodePorts.set(p.nodePort, name);
    if (s.spec?.healthCheckNodePort) used.nodePorts.set(s.spec.healthCheckNodePort, name);
    for (const ing of s.status?.loadBalancer?.ingress ?? []) {
      const lb = parseIPv4(ing.ip ?? '');
      if (lb !== undefined) used.loadBalancerIPs.set(lb, name);
    }
    for (const e of s.spec?.externalIPs ?? []) {
      const x = parseIPv4(e);
      if (x !== undefined) used.externalIPs.add(x);
    }
  }
  return used;
}

/** The lowest free address of `cidr` at or above `from` (wrapping), never the network or broadcast address. */
function lowestFree(cidr: Cidr4, taken: (ip: number) => boolean, from = cidr.base + 1): number | undefined {
  const size = 2 ** (32 - cidr.prefix);
  const first = cidr.base + 1;
  const last = cidr.base + size - 2;
  for (let i = 0; i <= last - first; i++) {
    const ip = first + ((from - first + i) % (last - first + 1));
    if (!taken(ip)) return ip;
  }
  return undefined;
}

function keyOf(p: V1ServicePort): string {
  return `${p.port}/${p.protocol ?? 'TCP'}`;
}

/**
 * The Service as the API server stores it after create or update, with the cloud controller's
 * LoadBalancer status. Throws InvalidObjectError for what the API server (or a cloud) would refuse.
 */
export function allocateService(applied: V1Service, previous: V1Service | undefined, others: readonly V1Service[], ranges: AllocationRanges = LAB_RANGES): V1Service {
  const svc = structuredClone(applied);
  const name = svc.metadata?.name ?? '';
  const namespace = svc.metadata?.namespace ?? 'default';
  const what = `Service "${name}"`;
  const invalid = (field: string, reason: string): never => {
    throw new InvalidObjectError(what, field, reason);
  };
  if (!DNS_1035.test(name) || name.length > 63) invalid('metadata.name', `Invalid value: "${name}": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with a letter and end with an alphanumeric character`);
  if (!DNS_1123.test(namespace)) invalid('metadata.namespace', `Invalid value: "${namespace}"`);
  svc.apiVersion = 'v1';
  svc.kind = 'Service';
  svc.metadata = { ...svc.metadata, name, namespace };
  const spec = (svc.spec ??= {});
  const prevSpec = previous?.spec;
  const type = (spec.type ??= 'ClusterIP');
  if (!SERVICE_TYPES.includes(type as (typeof SERVICE_TYPES)[number])) invalid('spec.type', `Unsupported value: "${type}": supported values: ${SERVICE_TYPES.map((t) => `"${t}"`).join(', ')}`);

  // Ports: defaults and validation.
  const ports = (spec.ports ??= []);
  const requestedClusterIP = spec.clusterIP ?? spec.clusterIPs?.[0];
  if (ports.length === 0 && type !== 'ExternalName' && requestedClusterIP !== 'None') invalid('spec.ports', 'Required value');
  const portNames = new Set<string>();
  ports.forEach((p, i) => {
    const at = `spec.ports[${i}]`;
    p.protocol ??= 'TCP';
    if (!PROTOCOLS.includes(p.protocol as (typeof PROTOCOLS)[number])) invalid(`${at}.protocol`, `Unsupported value: "${p.protocol}"`);
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) invalid(`${at}.port`, `Invalid value: ${p.port}: must be between 1 and 65535, inclusive`);
    if (ports.length > 1 && !p.name) invalid(`${at}.name`, 'Required value');
    if (p.name !== undefined) {
      if (portNames.has(p.name)) invalid(`${at}.name`, `Duplicate value: "${p.name}"`);
      portNames.add(p.name);
    }
    p.targetPort ??= p.port as never;
    const tp = p.targetPort as unknown;
    if (typeof tp === 'number' ? !Number.isInteger(tp) || tp < 1 || tp > 65535 : typeof tp !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(tp) || tp.length > 15) {
      invalid(`${at}.targetPort`, `Invalid value: ${JSON.stringify(tp)}: a port number 1–65535 or an IANA_SVC_NAME`);
    }
  });
  const seenPorts = new Set<string>();
  ports.forEach((p, i) => {
    if (seenPorts.has(keyOf(p))) invalid(`spec.ports[${i}]`, `Duplicate value: {"port":${p.port},"protocol":"${p.protocol}"}`);
    seenPorts.add(keyOf(p));
  });

  // Defaults the API server fills in.
  spec.sessionAffinity ??= 'None';
  if (spec.sessionAffinity === 'ClientIP') {
    const timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800;
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > 86400) invalid('spec.sessionAffinityConfig.clientIP.timeoutSeconds', `Invalid value: ${timeout}: must be greater than 0 and less than 86400`);
    spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: timeout } };
  } else if (spec.sessionAffinity === 'None') {
    delete spec.sessionAffinityConfig;
  } else invalid('spec.sessionAffinity', `Unsupported value: "${spec.sessionAffinity}": supported values: "ClientIP", "None"`);
  const external = type === 'NodePort' || type === 'LoadBalancer';
  if (external) spec.externalTrafficPolicy ??= 'Cluster';
  else if (spec.externalTrafficPolicy !== undefined && !(spec.externalIPs?.length)) {
    invalid('spec.externalTrafficPolicy', `Invalid value: "${spec.externalTrafficPolicy}": may only be set for externally-accessible services`);
  }
  if (spec.externalTrafficPolicy !== undefined && spec.externalTrafficPolicy !== 'Cluster' && spec.externalTrafficPolicy !== 'Local') {
    invalid('spec.externalTrafficPolicy', `Unsupported value: "${spec.externalTrafficPolicy}"`);
  }
  if (type !== 'ExternalName') spec.internalTrafficPolicy ??= 'Cluster';
  if (type === 'LoadBalancer') spec.allocateLoadBalancerNodePorts ??= true;

  for (const [i, e] of (spec.externalIPs ?? []).entries()) {
    if (parseIPv4(e) === undefined) invalid(`spec.externalIPs[${i}]`, `Invalid value: "${e}": must be a valid IPv4 address`);
  }
  for (const [i, r] of (spec.loadBalancerSourceRanges ?? []).entries()) {
    if (parseCidr4(r) === undefined) invalid(`spec.loadBalancerSourceRanges[${i}]`, `Invalid value: "${r}": must be a valid IPv4 CIDR`);
  }

  const used = inUse(others.filter((o) => !(o.metadata?.name === name && (o.metadata?.namespace ?? 'default') === namespace)));

  // ClusterIP: immutable once allocated; "None" makes a headless Service.
  const serviceCidr = parseCidr4(ranges.serviceCidr)!;
  const prevClusterIP = prevSpec?.type !== 'ExternalName' ? prevSpec?.clusterIP : undefined;
  if (type === 'ExternalName') {
    if (requestedClusterIP !== undefined && requestedClusterIP !== '') invalid('spec.clusterIP', 'Invalid value: must be empty for ExternalName services');
    if (!spec.externalName) invalid('spec.externalName', 'Required value');
    delete spec.clusterIP;
    delete spec.clusterIPs;
  } else {
    let clusterIP: string;
    if (prevClusterIP !== undefined) {
      if (requestedClusterIP !== undefined && requestedClusterIP !== '' && requestedClusterIP !== prevClusterIP) {
        invalid('spec.clusterIP', `Invalid value: "${requestedClusterIP}": field is immutable (it is ${prevClusterIP})`);
      }
      clusterIP = prevClusterIP;
    } else if (requestedClusterIP === 'None') {
      clusterIP = 'None';
    } else if (requestedClusterIP !== undefined && requestedClusterIP !== '') {
      const ip = parseIPv4(requestedClusterIP);
      if (ip === undefined) invalid('spec.clusterIP', `Invalid value: "${requestedClusterIP}": must be a valid IP address`);
      if (!cidrContains(serviceCidr, ip!) || ip === serviceCidr.base || ip === broadcastOf(serviceCidr)) {
        invalid('spec.clusterIP', `Invalid value: "${requestedClusterIP}": provided IP is not in the valid range. The range of valid IPs is ${ranges.serviceCidr}`);
      }
      const holder = used.clusterIPs.get(ip!);
      if (holder) invalid('spec.clusterIP', `Invalid value: "${requestedClusterIP}": provided IP is already allocated (to ${holder})`);
      clusterIP = requestedClusterIP;
    } else {
      const staticBand = serviceCidr.prefix >= 24 ? 0 : 256;
      const ip = lowestFree(serviceCidr, (x) => used.clusterIPs.has(x), serviceCidr.base + staticBand + 1);
      if (ip === undefined) invalid('spec.clusterIP', `Internal error: failed to allocate a serviceIP: range is full (${ranges.serviceCidr})`);
      clusterIP = formatIPv4(ip!);
    }
    spec.clusterIP = clusterIP;
    spec.clusterIPs = [clusterIP];
    // The API server of a single-stack cluster refuses what it cannot give, and narrows what it may.
    if (spec.ipFamilyPolicy === 'RequireDualStack') invalid('spec.ipFamilyPolicy', 'Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services (the lab is IPv4)');
    if ((spec.ipFamilies ?? []).some((f) => f !== 'IPv4')) invalid('spec.ipFamilies', `Invalid value: ${JSON.stringify(spec.ipFamilies)}: the lab's only IP family is IPv4`);
    if (clusterIP !== 'None') {
      spec.ipFamilies = ['IPv4'];
      spec.ipFamilyPolicy = 'SingleStack';
    }
  }

  // Node ports: one per service port (the same for TCP and UDP of one port number, as the API
  // server does for multi-protocol Services), unique across Services.
  const wantNodePorts = type === 'NodePort' || (type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false);
  const prevHadNodePorts = prevSpec !== undefined && (prevSpec.type === 'NodePort' || prevSpec.type === 'LoadBalancer');
  const range = ranges.nodePorts;
  const mine = new Map<number, string>();
  const checkRequestedNodePort = (field: string, port: number) => {
    if (!Number.isInteger(port) || port < range.min || port > range.max) {
      invalid(field, `Invalid value: ${port}: provided port is not in the valid range. The range of valid ports is ${range.min}-${range.max}`);
    }
    const holder = used.nodePorts.get(port);
    if (holder) invalid(field, `Invalid value: ${port}: provided port is already allocated (to ${holder})`);
  };
  const nextFreeNodePort = (field: string): number => {
    for (let p = range.min; p <= range.max; p++) if (!used.nodePorts.has(p) && !mine.has(p)) return p;
    return invalid(field, `Internal error: failed to allocate a nodePort: range is full (${range.min}-${range.max})`);
  };
  if (wantNodePorts) {
    const byPortNumber = new Map<number, number>();
    const seen = new Set<string>();
    // Explicit node ports first, so that an automatic one never takes a port asked for further down.
    ports.forEach((p, i) => {
      if (p.nodePort === undefined || p.nodePort === 0) return;
      checkRequestedNodePort(`spec.ports[${i}].nodePort`, p.nodePort);
      const owner = mine.get(p.nodePort);
      if (owner !== undefined && owner !== String(p.port)) invalid(`spec.ports[${i}].nodePort`, `Duplicate value: ${p.nodePort}`);
      if (seen.has(`${p.nodePort}/${p.protocol}`)) invalid(`spec.ports[${i}].nodePort`, `Duplicate value: ${p.nodePort}`);
      seen.add(`${p.nodePort}/${p.protocol}`);
      mine.set(p.nodePort, String(p.port));
      byPortNumber.set(p.port, p.nodePort);
    });
    ports.forEach((p, i) => {
      if (p.nodePort) return;
      const kept = prevHadNodePorts ? prevSpec!.ports?.find((q) => keyOf(q) === keyOf(p))?.nodePort : undefined;
      const chosen = kept && !used.nodePorts.has(kept) && (mine.get(kept) ?? String(p.port)) === String(p.port) ? kept : byPortNumber.get(p.port) ?? nextFreeNodePort(`spec.ports[${i}].nodePort`);
      p.nodePort = chosen;
      mine.set(chosen, String(p.port));
      byPortNumber.set(p.port, chosen);
    });
  } else {
    ports.forEach((p, i) => {
      if (p.nodePort !== undefined && p.nodePort !== 0) {
        invalid(`spec.ports[${i}].nodePort`, `Forbidden: may not be used when \`type\` is '${type}'${type === 'LoadBalancer' ? ' and allocateLoadBalancerNodePorts is false' : ''}`);
      }
      delete p.nodePort;
    });
  }

  // The health-check node port of an ETP Local LoadBalancer.
  const wantHealthCheck = type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local';
  if (wantHealthCheck) {
    const requested = spec.healthCheckNodePort;
    if (requested) {
      checkRequestedNodePort('spec.healthCheckNodePort', requested);
      if (mine.has(requested)) invalid('spec.healthCheckNodePort', `Invalid value: ${requested}: provided port is already allocated (to a port of this Service)`);
    } else {
      const kept = prevSpec?.healthCheckNodePort;
      spec.healthCheckNodePort = kept && !used.nodePorts.has(kept) && !mine.has(kept) ? kept : nextFreeNodePort('spec.healthCheckNodePort');
    }
  } else {
    if (spec.healthCheckNodePort) invalid('spec.healthCheckNodePort', 'Forbidden: may only be set when `type` is \'LoadBalancer\' and `externalTrafficPolicy` is \'Local\'');
    delete spec.healthCheckNodePort;
  }

  // The cloud controller: an ingress IP for a LoadBalancer, spec.loadBalancerIP when given.
  if (type === 'LoadBalancer') {
    const lbCidr = parseCidr4(ranges.loadBalancerCidr)!;
    const taken = (ip: number) => used.loadBalancerIPs.has(ip) || used.externalIPs.has(ip) || (spec.externalIPs ?? []).includes(formatIPv4(ip));
    let ip: number | undefined;
    if (spec.loadBalancerIP) {
      ip = parseIPv4(spec.loadBalancerIP);
      if (ip === undefined || !cidrContains(lbCidr, ip)) invalid('spec.loadBalancerIP', `Invalid value: "${spec.loadBalancerIP}": the lab's load balancer hands out addresses of ${ranges.loadBalancerCidr} only`);
      const holder = used.loadBalancerIPs.get(ip!);
      if (holder) invalid('spec.loadBalancerIP', `Invalid value: "${spec.loadBalancerIP}": already in use by the load balancer of ${holder}`);
    } else {
      const kept = prevSpec?.type === 'LoadBalancer' ? parseIPv4(previous?.status?.loadBalancer?.ingress?.[0]?.ip ?? '') : undefined;
      ip = kept !== undefined && !used.loadBalancerIPs.has(kept) ? kept : lowestFree(lbCidr, taken);
      if (ip === undefined) invalid('status.loadBalancer', `no free address left in ${ranges.loadBalancerCidr}`);
    }
    svc.status = { loadBalancer: { ingress: [{ ip: formatIPv4(ip!), ipMode: 'VIP' }] } };
  } else {
    if (spec.loadBalancerIP) invalid('spec.loadBalancerIP', "Forbidden: may only be used when `type` is 'LoadBalancer'");
    svc.status = { loadBalancer: {} };
  }
  return svc;
}

function broadcastOf(cidr: Cidr4): number {
  return (cidr.base | (~maskOf(cidr.prefix) >>> 0)) >>> 0;
}
