/**
 * The agent's configuration: kube-proxy's KubeProxyConfiguration names where one exists
 * (clusterCIDR, nodePortAddresses, masqueradeAll, syncPeriod, minSyncPeriod, conntrack.*,
 * healthzBindAddress, metricsBindAddress, hostnameOverride), plus bpfproxy's own. Read from a YAML
 * file, then overridden by flags; durations are kube-proxy style strings ("30s", "1h30m", "500ms").
 */
import { readFileSync } from 'node:fs';

import { parse } from 'yaml';

import { checkProxyConfig, resolveProxyConfig, type ProxyConfig, type ProxyConfigInput } from '../model/config.js';
import { configShapeProblems, MAP_SIZE_FLOORS } from './config-shape.js';
import type { SourceConfig } from '../sources/from-config.js';
import { isCidr6, parseCidr4 } from '../util/ip.js';

export interface AgentConfig {
  readonly proxy: ProxyConfig;
  /** This node's name (kube-proxy hostnameOverride); default: the host name. */
  readonly hostnameOverride: string;
  readonly healthzBindAddress: string;
  readonly metricsBindAddress: string;
  readonly source: SourceConfig;
  /** bpffs directory for this node's pins (maps, links). */
  readonly bpffsDir: string;
  /**
   * The node's uplinks, where XDP and tc ingress attach: the primary first (its address is the one
   * masqueraded traffic leaves with), then any others (a node with two NICs, where NodePorts answer
   * on each). Empty: the interface of the default route. From `uplinkInterfaces`, or the single
   * `uplinkInterface`.
   */
  readonly uplinkInterfaces: readonly string[];
  /**
   * The sink device the agent routes service addresses to (created if absent; ts/agent/service-device.ts):
   * its egress translates the node's own traffic to them. Default bpfproxy0; '' turns the node's
   * own service traffic off (docs/datapath.md, host-originated traffic).
   */
  readonly serviceInterface: string;
  /**
   * The Service CIDRs routed to the service device. Undefined (default): the cluster's
   * ServiceCIDR objects (networking.k8s.io/v1); without any, each ClusterIP gets a /32 route.
   */
  readonly serviceCIDRs: readonly string[] | undefined;
  /** Which host-side interfaces are pods' veths (a regular expression on the name). */
  readonly podInterfacePattern: string;
  readonly xdpMode: 'native' | 'generic' | 'off';
  /** max_entries per map family. */
  readonly mapSizes: MapSizes;
}

export interface MapSizes {
  /** svc4_v1: one entry per frontend plus one per backend slot. */
  readonly services: number;
  /** be_v1. */
  readonly backends: number;
  /** ct4_v4: two entries per flow; SNAT port reservations are its reply entries. */
  readonly conntrack: number;
  /** aff4_v1. */
  readonly affinity: number;
  /**
   * Accepted for older configuration files and ignored: SNAT ports are conntrack reply entries
   * (docs/datapath.md), sized by `conntrack`.
   */
  readonly snat?: number;
}

/** The C defaults of bpf/include/bpfproxy/maps.h, the one place they are chosen. */
export const DEFAULT_MAP_SIZES: MapSizes = { services: 65_536, backends: 65_536, conntrack: 262_144, affinity: 65_536 };
const MAP_SIZE_KEYS = ['services', 'backends', 'conntrack', 'affinity', 'snat'];

export const CONFIG_KIND = 'BpfProxyConfiguration';
/** The service device's name unless configured (ts/agent/service-device.ts; kube-proxy's kube-ipvs0 idea). */
export const DEFAULT_SERVICE_INTERFACE = 'bpfproxy0';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "1h30m", "30s", "500ms" → milliseconds; a bare number is seconds. */
export function parseDuration(value: string | number, what: string): number {
  if (typeof value === 'number') return value * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = '';
  for (let m = re.exec(value); m; m = re.exec(value)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    matched += m[0];
  }
  if (value === '' || matched !== value) throw new ConfigError(`${what}: '${value}' is not a duration (such as 30s, 1h30m, 500ms)`);
  return total;
}

/** The file's shape: kube-proxy's field names, durations as strings. */
export interface ConfigFile {
  apiVersion?: string;
  kind?: string;
  clusterCIDR?: string;
  nodePortAddresses?: string[];
  masqueradeAll?: boolean;
  syncPeriod?: string;
  minSyncPeriod?: string;
  conntrack?: { tcpEstablishedTimeout?: string; tcpCloseWaitTimeout?: string; udpTimeout?: string; udpStreamTimeout?: string };
  hostnameOverride?: string;
  healthzBindAddress?: string;
  metricsBindAddress?: string;
  clientConnection?: { kubeconfig?: string };
  apiServer?: string;
  sourceDir?: string;
  bpffsDir?: string;
  uplinkInterface?: string;
  uplinkInterfaces?: string[];
  serviceInterface?: string;
  serviceCIDRs?: string[];
  podInterfacePattern?: string;
  xdpMode?: 'native' | 'generic' | 'off';
  maglevTableSize?: number;
  snatPortRange?: string;
  mapSizes?: Partial<MapSizes>;
}

const KNOWN_KEYS = new Set<keyof ConfigFile>([
  'apiVersion', 'kind', 'clusterCIDR', 'nodePortAddresses', 'masqueradeAll', 'syncPeriod', 'minSyncPeriod', 'conntrack',
  'hostnameOverride', 'healthzBindAddress', 'metricsBindAddress', 'clientConnection', 'apiServer', 'sourceDir', 'bpffsDir',
  'uplinkInterface', 'uplinkInterfaces', 'serviceInterface', 'serviceCIDRs', 'podInterfacePattern', 'xdpMode', 'maglevTableSize', 'snatPortRange', 'mapSizes',
]);

export function readConfigFile(path: string): ConfigFile {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`config file ${path}: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${path}: expected a mapping`);
  const file = doc as ConfigFile;
  if (file.kind !== undefined && file.kind !== CONFIG_KIND) throw new ConfigError(`config file ${path}: kind is '${file.kind}', expected ${CONFIG_KIND}`);
  const unknown = Object.keys(file).filter((k) => !KNOWN_KEYS.has(k as keyof ConfigFile));
  if (unknown.length > 0) throw new ConfigError(`config file ${path}: unknown field(s) ${unknown.join(', ')}`);
  return file;
}

function parsePortRange(value: string): { min: number; max: number } {
  const m = /^(\d+)-(\d+)$/.exec(value);
  if (!m) throw new ConfigError(`snatPortRange: '${value}' is not a range such as 61000-65535`);
  return { min: Number(m[1]), max: Number(m[2]) };
}

/** File values, then flags (already in the file's shape), then defaults; validated. */
export function resolveAgentConfig(file: ConfigFile, flags: ConfigFile, hostname: string): AgentConfig {
  const f: ConfigFile = { ...file, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) };
  const shape = configShapeProblems(f as Record<string, unknown>);
  if (shape.length > 0) throw new ConfigError(shape.join('; '));
  const ct = f.conntrack ?? {};
  const input: ProxyConfigInput = {
    ...(f.clusterCIDR !== undefined && { clusterCIDR: f.clusterCIDR }),
    ...(f.nodePortAddresses !== undefined && { nodePortAddresses: f.nodePortAddresses }),
    ...(f.masqueradeAll !== undefined && { masqueradeAll: f.masqueradeAll }),
    ...(f.syncPeriod !== undefined && { syncPeriod: parseDuration(f.syncPeriod, 'syncPeriod') }),
    ...(f.minSyncPeriod !== undefined && { minSyncPeriod: parseDuration(f.minSyncPeriod, 'minSyncPeriod') }),
    ...(f.maglevTableSize !== undefined && { maglevTableSize: f.maglevTableSize }),
    ...(f.snatPortRange !== undefined && { snatPortRange: parsePortRange(f.snatPortRange) }),
    conntrack: {
      ...(ct.tcpEstablishedTimeout !== undefined && { tcpEstablishedTimeout: parseDuration(ct.tcpEstablishedTimeout, 'conntrack.tcpEstablishedTimeout') }),
      ...(ct.tcpCloseWaitTimeout !== undefined && { tcpCloseWaitTimeout: parseDuration(ct.tcpCloseWaitTimeout, 'conntrack.tcpCloseWaitTimeout') }),
      ...(ct.udpTimeout !== undefined && { udpTimeout: parseDuration(ct.udpTimeout, 'conntrack.udpTimeout') }),
      ...(ct.udpStreamTimeout !== undefined && { udpStreamTimeout: parseDuration(ct.udpStreamTimeout, 'conntrack.udpStreamTimeout') }),
    },
  };
  const proxy = resolveProxyConfig(input);
  const problems = checkProxyConfig(proxy);
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${p.name}: ${p.reason}`).join('; '));
  if (proxy.syncPeriod <= 0) throw new ConfigError(`syncPeriod: must be more than 0 (kube-proxy's default is 30s), got ${f.syncPeriod}`);
  if (proxy.minSyncPeriod > proxy.syncPeriod) throw new ConfigError('minSyncPeriod must not exceed syncPeriod');
  const xdpMode = f.xdpMode ?? 'native';
  if (!['native', 'generic', 'off'].includes(xdpMode)) throw new ConfigError(`xdpMode: '${xdpMode}' is not native, generic or off`);
  const mapSizes = { ...DEFAULT_MAP_SIZES, ...f.mapSizes };
  const unknownSizes = Object.keys(f.mapSizes ?? {}).filter((k) => !MAP_SIZE_KEYS.includes(k));
  if (unknownSizes.length > 0) throw new ConfigError(`mapSizes: unknown map(s) ${unknownSizes.join(', ')} (known: ${MAP_SIZE_KEYS.join(', ')})`);
  for (const [k, v] of Object.entries(mapSizes)) {
    if (!Number.isInteger(v) || v < 1) throw new ConfigError(`mapSizes.${k}: '${v}' is not a positive integer`);
    const floor = MAP_SIZE_FLOORS[k];
    if (floor !== undefined && v < floor) throw new ConfigError(`mapSizes.${k}: ${v} is below ${floor}, too small for any node (the default is ${DEFAULT_MAP_SIZES[k as keyof MapSizes]})`);
  }
  // A flag's single uplink replaces the file's list; both in one place are ambiguous.
  if (flags.uplinkInterface === undefined && file.uplinkInterface !== undefined && file.uplinkInterfaces !== undefined) {
    throw new ConfigError('uplinkInterface and uplinkInterfaces: set one of them');
  }
  const uplinkInterfaces = flags.uplinkInterface !== undefined || f.uplinkInterfaces === undefined ? [f.uplinkInterface ?? ''].filter((u) => u !== '') : f.uplinkInterfaces;
  if (!Array.isArray(uplinkInterfaces) || uplinkInterfaces.some((u) => typeof u !== 'string' || u === '') || new Set(uplinkInterfaces).size !== uplinkInterfaces.length) {
    throw new ConfigError(`uplinkInterfaces: '${String(uplinkInterfaces)}' is not a list of distinct interface names`);
  }
  try {
    new RegExp(f.podInterfacePattern ?? '');
  } catch {
    throw new ConfigError(`podInterfacePattern: '${f.podInterfacePattern}' is not a regular expression`);
  }
  const serviceInterface = f.serviceInterface ?? DEFAULT_SERVICE_INTERFACE;
  checkServiceInterface(serviceInterface, uplinkInterfaces);
  const serviceCIDRs = f.serviceCIDRs === undefined ? undefined : checkServiceCIDRs(f.serviceCIDRs);
  return {
    proxy,
    hostnameOverride: f.hostnameOverride || hostname,
    healthzBindAddress: f.healthzBindAddress ?? '0.0.0.0:10256',
    metricsBindAddress: f.metricsBindAddress ?? '127.0.0.1:10249',
    source: f.sourceDir
      ? { kind: 'file', dir: f.sourceDir }
      : { kind: 'kubernetes', ...(f.clientConnection?.kubeconfig && { kubeconfig: f.clientConnection.kubeconfig }), ...(f.apiServer && { apiServer: f.apiServer }) },
    bpffsDir: f.bpffsDir ?? '/sys/fs/bpf/bpfproxy',
    uplinkInterfaces,
    serviceInterface,
    serviceCIDRs,
    podInterfacePattern: f.podInterfacePattern ?? '^(lxc|veth|cali|pod-)',
    xdpMode,
    mapSizes,
  };
}

function checkServiceInterface(name: string, uplinks: readonly string[]): void {
  if (typeof name !== 'string') throw new ConfigError(`serviceInterface: '${String(name)}' is not an interface name`);
  if (name === '') return;
  // The kernel's rules (dev_valid_name): 1-15 bytes, no '/', ':' or white space, not . or ..
  if (name.length > 15 || /[/:\s]/.test(name) || name === '.' || name === '..') {
    throw new ConfigError(`serviceInterface: '${name}' is not a valid interface name (at most 15 characters, no '/', ':' or spaces)`);
  }
  if (name === 'lo') throw new ConfigError("serviceInterface: 'lo' is the loopback device; name a device of its own (default bpfproxy0), which the agent creates");
  if (uplinks.includes(name)) throw new ConfigError(`serviceInterface: '${name}' is the uplink; name a device of its own (default bpfproxy0), which the agent creates`);
}

function checkServiceCIDRs(value: unknown): string[] {
  if (!Array.isArray(value)) throw new ConfigError(`serviceCIDRs: expected a list of CIDRs (such as [10.96.0.0/12]), got '${String(value)}'`);
  const out: string[] = [];
  for (const c of value) {
    if (typeof c !== 'string') throw new ConfigError(`serviceCIDRs: '${String(c)}' is not a CIDR`);
    const v4 = parseCidr4(c);
    if (v4) {
      if (v4.prefix < 8) throw new ConfigError(`serviceCIDRs: '${c}' is wider than a /8: its route would take the node's own traffic to most of the Internet`);
      out.push(c.trim());
    } else if (!isCidr6(c)) {
      throw new ConfigError(`serviceCIDRs: '${c}' is not a CIDR (such as 10.96.0.0/12)`);
    }
    // IPv6 CIDRs are accepted and set aside: the datapath is IPv4 only.
  }
  return out;
}

/** "host:port" → parts; kube-proxy accepts "0.0.0.0:10256" and ":10256". */
export function splitBindAddress(value: string, what: string): { host: string; port: number } {
  const i = value.lastIndexOf(':');
  const port = Number(value.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`${what}: '${value}' is not host:port`);
  return { host: value.slice(0, i) || '0.0.0.0', port };
}
