/**
 * The source boundary: every Service, EndpointSlice and Node is checked here, once, against the
 * shapes the Kubernetes API server accepts (its ValidateService / ValidateEndpointSlice: field
 * types, ranges, enums, address families), before anything downstream reads it. The API server
 * never serves an object that fails these checks, but a file source, an aggregated or buggy API, or
 * a hand-edited object can; the model and the node view were written for the API's shapes, and one
 * object they cannot read must not cost the others their sync.
 *
 * An object that fails is set aside whole (as the API server refuses it whole) with a Problem that
 * names it and every field found wrong; it never reaches the model. The model keeps the checks that
 * are about meaning rather than shape (IPv6 set aside, duplicate names, conflicts).
 *
 * The check runs on the slim copy (slim.ts), so only fields something reads are checked; the first
 * endpoint address is the only one kept, as the only one read.
 */
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

import { isCidr6, isIPv6, parseCidr4, parseIPv4, type Problem } from '../model/index.js';
import type { SlimKind } from './slim.js';

/** The kinds checked here (a ServiceCIDR's CIDRs are read through parseCidr4, which skips what it cannot read). */
export type AdmittedKind = Exclude<SlimKind, 'ServiceCIDR'>;

export type Admission<T> = { readonly ok: true; readonly object: T } | { readonly ok: false; readonly problem: Problem };

/** The object if the API would have accepted it, else a Problem naming it and the fields. */
export function admit<T>(kind: AdmittedKind, object: T): Admission<T> {
  const errors: string[] = [];
  const check = new Checker(errors);
  const o = object as unknown;
  try {
    if (kind === 'Service') checkService(check, o);
    else if (kind === 'EndpointSlice') checkEndpointSlice(check, o);
    else checkNode(check, o);
  } catch (e) {
    // A check that itself fails is a bug here, but still only this object's problem.
    errors.push(`cannot be checked: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (errors.length === 0) return { ok: true, object };
  const shown = errors.slice(0, MAX_ERRORS_SHOWN);
  if (errors.length > shown.length) shown.push(`and ${errors.length - shown.length} more`);
  const { namespace, name } = identity(kind, o);
  return { ok: false, problem: { kind, namespace, name, reason: `rejected: ${shown.join('; ')}` } };
}

const MAX_ERRORS_SHOWN = 5;

/** namespace and name as the problem names them (what there is of them, printable). */
function identity(kind: AdmittedKind, o: unknown): { namespace: string; name: string } {
  const meta = isObject(o) && isObject(o.metadata) ? o.metadata : {};
  const text = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : shortJson(v));
  const namespace = kind === 'Node' ? '' : text(meta.namespace) || 'default';
  return { namespace, name: text(meta.name) };
}

// ---- the checks, field by field, with the API server's rules ----

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
const POLICIES = ['Cluster', 'Local'] as const;
const AFFINITIES = ['None', 'ClientIP'] as const;
const IP_MODES = ['VIP', 'Proxy'] as const;
const ADDRESS_TYPES = ['IPv4', 'IPv6', 'FQDN'] as const;
/** validation.go: maxEndpoints, maxPorts, maxAddresses, maxZoneHints (core API limits). */
const MAX_SLICE_ENDPOINTS = 1000;
const MAX_SLICE_PORTS = 100;
const MAX_ZONE_HINTS = 8;
const MAX_AFFINITY_TIMEOUT_SECONDS = 86400;

function checkService(c: Checker, o: unknown): void {
  if (!c.object('', o)) return;
  checkMetadata(c, o.metadata, 'label');
  const spec: unknown = o.spec === undefined ? {} : o.spec;
  if (!c.object('spec', spec)) return;
  const type = c.optionalEnum('spec.type', spec.type, SERVICE_TYPES) ?? 'ClusterIP';
  const external = type === 'NodePort' || type === 'LoadBalancer';

  const clusterIP = c.optionalString('spec.clusterIP', spec.clusterIP);
  if (clusterIP !== undefined && clusterIP !== '' && clusterIP !== 'None') c.ip('spec.clusterIP', clusterIP, 'a cluster IP');
  const clusterIPs = c.optionalList('spec.clusterIPs', spec.clusterIPs);
  if (clusterIPs !== undefined) {
    if (clusterIPs.length > 2) c.fail('spec.clusterIPs', `at most 2 addresses (one per family), got ${clusterIPs.length}`);
    clusterIPs.forEach((ip, i) => {
      const path = `spec.clusterIPs[${i}]`;
      const s = c.string(path, ip);
      if (s === undefined) return;
      if (s === 'None') {
        if (clusterIPs.length > 1) c.fail(path, '"None" must be the only cluster IP');
      } else c.ip(path, s, 'a cluster IP');
    });
    if (clusterIP !== undefined && clusterIP !== '' && clusterIPs.length > 0 && clusterIPs[0] !== clusterIP) {
      c.fail('spec.clusterIPs[0]', `must equal spec.clusterIP ${JSON.stringify(clusterIP)}, got ${show(clusterIPs[0])}`);
    }
    if (clusterIPs.length === 2 && typeof clusterIPs[0] === 'string' && typeof clusterIPs[1] === 'string' && familyOf(clusterIPs[0]) === familyOf(clusterIPs[1])) {
      c.fail('spec.clusterIPs', 'two addresses of the same family');
    }
  }
  const headless = clusterIP === 'None' || clusterIPs?.[0] === 'None';

  c.optionalList('spec.externalIPs', spec.externalIPs)?.forEach((ip, i) => {
    const s = c.string(`spec.externalIPs[${i}]`, ip);
    if (s !== undefined) c.ip(`spec.externalIPs[${i}]`, s, 'an external IP');
  });

  const ranges = c.optionalList('spec.loadBalancerSourceRanges', spec.loadBalancerSourceRanges);
  if (ranges !== undefined) {
    if (ranges.length > 0 && type !== 'LoadBalancer') c.fail('spec.loadBalancerSourceRanges', `may only be used when type is LoadBalancer, not ${type}`);
    ranges.forEach((range, i) => {
      const s = c.string(`spec.loadBalancerSourceRanges[${i}]`, range);
      if (s !== undefined && parseCidr4(s) === undefined && !isCidr6(s)) c.fail(`spec.loadBalancerSourceRanges[${i}]`, `expected a CIDR, got ${show(s)}`);
    });
  }

  c.optionalEnum('spec.externalTrafficPolicy', emptyAsUndefined(spec.externalTrafficPolicy), POLICIES);
  c.optionalEnum('spec.internalTrafficPolicy', emptyAsUndefined(spec.internalTrafficPolicy), POLICIES);
  c.optionalEnum('spec.sessionAffinity', emptyAsUndefined(spec.sessionAffinity), AFFINITIES);
  if (c.optionalObject('spec.sessionAffinityConfig', spec.sessionAffinityConfig) && spec.sessionAffinityConfig !== undefined) {
    const clientIP = spec.sessionAffinityConfig.clientIP;
    if (c.optionalObject('spec.sessionAffinityConfig.clientIP', clientIP) && clientIP !== undefined) {
      c.optionalInteger('spec.sessionAffinityConfig.clientIP.timeoutSeconds', clientIP.timeoutSeconds, 1, MAX_AFFINITY_TIMEOUT_SECONDS);
    }
  }
  c.optionalInteger('spec.healthCheckNodePort', spec.healthCheckNodePort, 0, 65535);

  const ports = c.optionalList('spec.ports', spec.ports);
  const noPorts = ports === undefined ? spec.ports === undefined || spec.ports === null : ports.length === 0;
  if (noPorts && !headless && type !== 'ExternalName') c.fail('spec.ports', 'required: a Service with a cluster IP needs at least one port');
  const names = new Set<string>();
  const numbers = new Set<string>();
  ports?.forEach((port, i) => {
    const path = `spec.ports[${i}]`;
    if (!c.object(path, port)) return;
    const name = c.optionalString(`${path}.name`, port.name) ?? '';
    if (name !== '') c.dnsLabel(`${path}.name`, name);
    else if (ports.length > 1) c.fail(`${path}.name`, 'required when a Service has more than one port');
    if (name !== '' && names.has(name)) c.fail(`${path}.name`, `duplicate port name ${JSON.stringify(name)}`);
    names.add(name);
    const protocol = c.optionalEnum(`${path}.protocol`, port.protocol, PROTOCOLS) ?? 'TCP';
    const number = c.integer(`${path}.port`, port.port, 1, 65535);
    if (number !== undefined) {
      if (numbers.has(`${number}/${protocol}`)) c.fail(`${path}.port`, `duplicate port ${number}/${protocol}`);
      numbers.add(`${number}/${protocol}`);
    }
    const nodePort = c.optionalInteger(`${path}.nodePort`, port.nodePort, 0, 65535);
    if (nodePort !== undefined && nodePort !== 0 && !external) c.fail(`${path}.nodePort`, `may only be used when type is NodePort or LoadBalancer, not ${type}`);
  });

  if (!c.optionalObject('status', o.status) || o.status === undefined) return;
  const lb = o.status.loadBalancer;
  if (!c.optionalObject('status.loadBalancer', lb) || lb === undefined) return;
  c.optionalList('status.loadBalancer.ingress', lb.ingress)?.forEach((ingress, i) => {
    const path = `status.loadBalancer.ingress[${i}]`;
    if (!c.object(path, ingress)) return;
    const ip = c.optionalString(`${path}.ip`, ingress.ip);
    if (ip !== undefined && ip !== '') c.ip(`${path}.ip`, ip, 'a load balancer IP');
    const mode = c.optionalEnum(`${path}.ipMode`, ingress.ipMode, IP_MODES);
    if (mode !== undefined && (ip === undefined || ip === '')) c.fail(`${path}.ipMode`, 'may only be set when ip is');
  });
}

function checkEndpointSlice(c: Checker, o: unknown): void {
  if (!c.object('', o)) return;
  checkMetadata(c, o.metadata, 'subdomain');
  const addressType = c.enumValue('addressType', o.addressType, ADDRESS_TYPES);

  const ports = c.optionalList('ports', o.ports);
  if (ports !== undefined && ports.length > MAX_SLICE_PORTS) c.fail('ports', `at most ${MAX_SLICE_PORTS}, got ${ports.length}`);
  const names = new Set<string>();
  ports?.forEach((port, i) => {
    const path = `ports[${i}]`;
    if (!c.object(path, port)) return;
    // A missing name is allowed by the API (the model ignores such a port, as kube-proxy does).
    const name = port.name === null ? undefined : c.optionalString(`${path}.name`, port.name);
    if (name !== undefined) {
      if (name !== '') c.dnsLabel(`${path}.name`, name);
      if (names.has(name)) c.fail(`${path}.name`, `duplicate port name ${JSON.stringify(name)}`);
      names.add(name);
    }
    c.optionalEnum(`${path}.protocol`, port.protocol ?? undefined, PROTOCOLS);
    // null: "all ports", which the API allows and the model reports and ignores.
    if (port.port !== null) c.optionalInteger(`${path}.port`, port.port, 1, 65535);
  });

  const endpoints = c.optionalList('endpoints', o.endpoints);
  if (endpoints !== undefined && endpoints.length > MAX_SLICE_ENDPOINTS) c.fail('endpoints', `at most ${MAX_SLICE_ENDPOINTS}, got ${endpoints.length}`);
  endpoints?.forEach((endpoint, i) => {
    const path = `endpoints[${i}]`;
    if (!c.object(path, endpoint)) return;
    const addresses = c.list(`${path}.addresses`, endpoint.addresses);
    if (addresses !== undefined) {
      if (addresses.length === 0) c.fail(`${path}.addresses`, 'required: at least one address');
      addresses.forEach((address, j) => {
        const apath = `${path}.addresses[${j}]`;
        const s = c.string(apath, address);
        if (s === undefined || addressType === undefined) return;
        if (addressType === 'IPv4' && parseIPv4(s) === undefined) c.fail(apath, `expected an IPv4 address (addressType IPv4), got ${show(s)}`);
        else if (addressType === 'IPv6' && !isIPv6(s)) c.fail(apath, `expected an IPv6 address (addressType IPv6), got ${show(s)}`);
        else if (addressType === 'FQDN' && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(s)) c.fail(apath, `expected a DNS name (addressType FQDN), got ${show(s)}`);
      });
    }
    const conditions = endpoint.conditions;
    if (c.optionalObject(`${path}.conditions`, conditions) && conditions !== undefined) {
      for (const k of ['ready', 'serving', 'terminating'] as const) c.optionalBoolean(`${path}.conditions.${k}`, conditions[k]);
    }
    c.optionalString(`${path}.nodeName`, endpoint.nodeName);
    c.optionalString(`${path}.zone`, endpoint.zone);
    const hints = endpoint.hints;
    if (c.optionalObject(`${path}.hints`, hints) && hints !== undefined) {
      for (const k of ['forZones', 'forNodes'] as const) {
        const list = c.optionalList(`${path}.hints.${k}`, hints[k]);
        if (list !== undefined && k === 'forZones' && list.length > MAX_ZONE_HINTS) c.fail(`${path}.hints.${k}`, `at most ${MAX_ZONE_HINTS}, got ${list.length}`);
        list?.forEach((hint, j) => {
          if (c.object(`${path}.hints.${k}[${j}]`, hint)) c.string(`${path}.hints.${k}[${j}].name`, hint.name);
        });
      }
    }
  });
}

function checkNode(c: Checker, o: unknown): void {
  if (!c.object('', o)) return;
  const meta = o.metadata;
  if (!c.object('metadata', meta)) return;
  c.string('metadata.name', meta.name);
  checkStringMap(c, 'metadata.labels', meta.labels);
  c.optionalString('metadata.deletionTimestamp', meta.deletionTimestamp);
  if (c.optionalObject('spec', o.spec) && o.spec !== undefined) {
    c.optionalString('spec.podCIDR', o.spec.podCIDR);
    c.optionalList('spec.podCIDRs', o.spec.podCIDRs)?.forEach((cidr, i) => c.string(`spec.podCIDRs[${i}]`, cidr));
    c.optionalList('spec.taints', o.spec.taints)?.forEach((taint, i) => {
      if (c.object(`spec.taints[${i}]`, taint)) c.string(`spec.taints[${i}].key`, taint.key);
    });
  }
  if (c.optionalObject('status', o.status) && o.status !== undefined) {
    c.optionalList('status.addresses', o.status.addresses)?.forEach((a, i) => {
      if (!c.object(`status.addresses[${i}]`, a)) return;
      c.string(`status.addresses[${i}].type`, a.type);
      c.string(`status.addresses[${i}].address`, a.address);
    });
  }
}

function checkMetadata(c: Checker, meta: unknown, nameRule: 'label' | 'subdomain'): void {
  if (!c.object('metadata', meta)) return;
  const name = c.string('metadata.name', meta.name);
  if (name !== undefined) {
    if (nameRule === 'label') c.dns1035Label('metadata.name', name);
    else c.dnsSubdomain('metadata.name', name);
  }
  const namespace = c.optionalString('metadata.namespace', meta.namespace);
  if (namespace !== undefined && namespace !== '') c.dnsLabel('metadata.namespace', namespace);
  c.optionalString('metadata.resourceVersion', meta.resourceVersion);
  checkStringMap(c, 'metadata.labels', meta.labels);
  checkStringMap(c, 'metadata.annotations', meta.annotations);
}

function checkStringMap(c: Checker, path: string, map: unknown): void {
  if (!c.optionalObject(path, map) || map === undefined) return;
  for (const [k, v] of Object.entries(map)) c.string(`${path}[${JSON.stringify(k)}]`, v);
}

// ---- the checker: each method records what is wrong at a path and says whether to go on ----

type Obj = Record<string, unknown> & { [key: string]: any };

class Checker {
  constructor(private readonly errors: string[]) {}

  fail(path: string, what: string): void {
    this.errors.push(path === '' ? what : `${path}: ${what}`);
  }

  private expected(path: string, what: string, value: unknown): void {
    this.fail(path, `expected ${what}, got ${show(value)}`);
  }

  object(path: string, v: unknown): v is Obj {
    if (isObject(v)) return true;
    this.expected(path === '' ? 'the object' : path, 'an object', v);
    return false;
  }

  /** True when there is an object to look into (absent counts as none: check `!== undefined`). */
  optionalObject(path: string, v: unknown): v is Obj | undefined {
    return v === undefined || this.object(path, v);
  }

  list(path: string, v: unknown): unknown[] | undefined {
    if (Array.isArray(v)) return v;
    this.expected(path, 'a list', v);
    return undefined;
  }

  /** A list, or undefined when absent or wrong (recorded); null is the API's "none". */
  optionalList(path: string, v: unknown): unknown[] | undefined {
    return v === undefined || v === null ? undefined : this.list(path, v);
  }

  string(path: string, v: unknown): string | undefined {
    if (typeof v === 'string') return v;
    this.expected(path, 'a string', v);
    return undefined;
  }

  optionalString(path: string, v: unknown): string | undefined {
    return v === undefined || v === null ? undefined : this.string(path, v);
  }

  optionalBoolean(path: string, v: unknown): void {
    // A string "false" must never count as true (or as anything).
    if (v !== undefined && v !== null && typeof v !== 'boolean') this.expected(path, 'true or false', v);
  }

  integer(path: string, v: unknown, min: number, max: number): number | undefined {
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    this.expected(path, `an integer in ${min}…${max}`, v);
    return undefined;
  }

  optionalInteger(path: string, v: unknown, min: number, max: number): number | undefined {
    return v === undefined || v === null ? undefined : this.integer(path, v, min, max);
  }

  enumValue<E extends string>(path: string, v: unknown, values: readonly E[]): E | undefined {
    if (typeof v === 'string' && (values as readonly string[]).includes(v)) return v as E;
    this.expected(path, `one of ${values.join(', ')}`, v);
    return undefined;
  }

  optionalEnum<E extends string>(path: string, v: unknown, values: readonly E[]): E | undefined {
    return v === undefined || v === null ? undefined : this.enumValue(path, v, values);
  }

  /** An address the API accepts for a Service (not unspecified, loopback, link-local or multicast). */
  ip(path: string, s: string, what: string): void {
    const family = familyOf(s);
    if (family === undefined) return this.expected(path, `${what} (IPv4 or IPv6 address)`, s);
    const special = family === 4 ? specialIPv4(parseIPv4(s)!) : specialIPv6(s);
    if (special !== undefined) this.fail(path, `${JSON.stringify(s)} is ${special}, not usable as ${what}`);
  }

  dnsLabel(path: string, s: string): void {
    if (s.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s)) this.expected(path, 'a DNS label (lower case letters, digits and -, at most 63)', s);
  }

  dns1035Label(path: string, s: string): void {
    if (s.length > 63 || !/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(s)) this.expected(path, 'a DNS-1035 label (a lower case letter, then letters, digits and -, at most 63)', s);
  }

  dnsSubdomain(path: string, s: string): void {
    if (s.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(s)) this.expected(path, 'a DNS subdomain (lower case letters, digits, - and ., at most 253)', s);
  }
}

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function emptyAsUndefined(v: unknown): unknown {
  return v === '' ? undefined : v;
}

function familyOf(s: string): 4 | 6 | undefined {
  return parseIPv4(s) !== undefined ? 4 : isIPv6(s) ? 6 : undefined;
}

function specialIPv4(ip: number): string | undefined {
  if (ip === 0) return 'the unspecified address';
  if (ip >>> 24 === 127) return 'a loopback address';
  if (ip >>> 16 === 0xa9fe) return 'a link-local address';
  if (ip >>> 28 === 0xe) return 'a multicast address';
  if (ip === 0xffffffff) return 'the broadcast address';
  return undefined;
}

function specialIPv6(s: string): string | undefined {
  const t = s.toLowerCase();
  if (/^[0:]+$/.test(t)) return 'the unspecified address';
  if (/^[0:]+1$/.test(t)) return 'a loopback address';
  if (/^fe[89ab]/.test(t)) return 'a link-local address';
  if (t.startsWith('ff')) return 'a multicast address';
  return undefined;
}

/** A value as a message shows it: short JSON and what it is ("80" (a string)). */
function show(v: unknown): string {
  const what = v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : typeof v === 'string' ? 'a string' : typeof v === 'number' ? 'a number' : typeof v === 'boolean' ? 'a boolean' : typeof v;
  if (v === null || v === undefined) return v === null ? 'null' : 'nothing';
  return `${shortJson(v)} (${what})`;
}

function shortJson(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** The three kinds, typed, for callers that know which they hold. */
export const admitService = (s: V1Service): Admission<V1Service> => admit('Service', s);
export const admitEndpointSlice = (s: V1EndpointSlice): Admission<V1EndpointSlice> => admit('EndpointSlice', s);
export const admitNode = (n: V1Node): Admission<V1Node> => admit('Node', n);
