/**
 * The service device: where the node's own packets to service addresses go, so that the egress
 * program on it (tc_host_egress) translates them. kube-proxy needs no such device (netfilter's
 * OUTPUT chain sees every local packet); a tc program only sees packets that leave a device, and a
 * ClusterIP has no route of its own, so the agent gives it one:
 *
 *   - a sink device (dummy, else ifb: no address, NOARP, a dead end for what tc does not forward),
 *     created if absent, named serviceInterface (default bpfproxy0, kube-proxy's kube-ipvs0 idea);
 *   - routes to it, marked with our own route protocol so that only ours are ever changed: the
 *     Service CIDRs (ServiceCIDR objects, or the serviceCIDRs override), and a /32 for every other
 *     frontend address the node could send to (LoadBalancer ingress IPs, externalIPs, ClusterIPs
 *     outside every CIDR) that is not the node's own (those are local: lo's egress, see
 *     bpf/lib/hooks_node.h). Each route carries `src <node address>`: the source the datapath
 *     expects (replies come back to it on the uplink), never an address of some other device;
 *   - lo's accept_local: a node-sourced packet the datapath sends into the node comes in through lo
 *     and is routed again there (bpf/lib/local.h).
 * `bpfproxy cleanup` deletes the device (its routes go with it) and resets accept_local.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';

import type { V1Service } from '@kubernetes/client-node';

import { cidrContains, formatCidr4, parseCidr4, parseIPv4, type Cidr4 } from '../model/index.js';
import { CommandError, run } from '../util/exec.js';

/** Our routes' protocol (rtnetlink rtm_protocol): not one of iproute2's rt_protos names. */
export const ROUTE_PROTOCOL = 0xbf;
/** The sysctl, and where the kernel shows it (for the process's own network namespace). */
export const ACCEPT_LOCAL_SYSCTL = 'net.ipv4.conf.lo.accept_local';
/** lo's accept_local in this network namespace (bpf/lib/local.h needs it; `bpfproxy cleanup` resets it). */
export const LO_ACCEPT_LOCAL = '/proc/sys/net/ipv4/conf/lo/accept_local';

/** Where: the process's own network namespace, or a named one (`ip -n`: the lab's harnesses). */
export interface Where {
  netns?: string;
}
const ip = (where: Where, args: string[], input?: string) =>
  run('ip', [...(where.netns ? ['-n', where.netns] : []), ...args], input === undefined ? {} : { input });

/** Creates the sink device if absent and brings it up; says whether it was created. */
export async function ensureServiceDevice(name: string, where: Where = {}): Promise<{ created: boolean; kind: string }> {
  const existing = await linkKind(name, where);
  let created = false;
  let kind = existing ?? '';
  if (existing === undefined) {
    try {
      await ip(where, ['link', 'add', name, 'type', 'dummy']);
      kind = 'dummy';
    } catch (e) {
      if (!(e instanceof CommandError) || !/Unknown device type|not supported/i.test(e.stderr)) throw e;
      // No dummy module: an ifb drops, as a dummy does, whatever tc did not redirect.
      await ip(where, ['link', 'add', name, 'type', 'ifb']);
      kind = 'ifb';
    }
    created = true;
  }
  await ip(where, ['link', 'set', name, 'up']);
  return { created, kind };
}

async function linkKind(name: string, where: Where): Promise<string | undefined> {
  try {
    const out = JSON.parse(await ip(where, ['-j', '-d', 'link', 'show', 'dev', name])) as { linkinfo?: { info_kind?: string } }[];
    return out[0]?.linkinfo?.info_kind ?? '';
  } catch (e) {
    if (e instanceof CommandError && /does not exist|Cannot find device/i.test(e.stderr)) return undefined;
    throw e;
  }
}

/**
 * Sets lo's accept_local. Resolves with a problem to report when it cannot (a container's read-only
 * /proc/sys: deploy/'s privileged init container sets it instead), undefined when it is set.
 */
export function ensureLoAcceptLocal(path = LO_ACCEPT_LOCAL): string | undefined {
  try {
    if (readFileSync(path, 'utf8').trim() === '1') return undefined;
    writeFileSync(path, '1');
    return undefined;
  } catch (e) {
    return `cannot set net.ipv4.conf.lo.accept_local=1 (${(e as Error).message}): the node's own connections to its own NodePorts and to hostNetwork endpoints on this node will time out`;
  }
}

/** The Service CIDRs of ServiceCIDR objects (networking.k8s.io/v1, spec.cidrs), IPv4 only. */
export function cidrsOfServiceCIDRObjects(objects: Iterable<{ spec?: { cidrs?: string[] } }>): string[] {
  const out = new Set<string>();
  for (const o of objects) for (const c of o.spec?.cidrs ?? []) if (parseCidr4(c)) out.add(formatCidr4(parseCidr4(c)!));
  return [...out].sort();
}

/**
 * The routes the node needs to its service device: the CIDRs, then a /32 for each IPv4 address a
 * Service answers on (ClusterIPs, externalIPs, LoadBalancer ingress IPs) that no CIDR covers and that
 * is not one of the node's own addresses. Sorted, deduplicated.
 */
export function desiredServiceRoutes(services: Iterable<V1Service>, cidrs: readonly string[], nodeAddresses: readonly string[]): string[] {
  const ranges: Cidr4[] = cidrs.map((c) => parseCidr4(c)).filter((c): c is Cidr4 => c !== undefined);
  const own = new Set(nodeAddresses);
  const routes = new Set(ranges.map(formatCidr4));
  const add = (addr: string | undefined) => {
    if (!addr || !isIPv4(addr) || own.has(addr)) return;
    const ip = parseIPv4(addr)!;
    // Not 0/8, loopback, link-local nor multicast and above: never a service address to route.
    const first = ip >>> 24;
    if (first === 0 || first === 127 || first >= 224 || (ip >>> 16) === 0xa9fe) return;
    if (ranges.some((r) => cidrContains(r, ip))) return;
    routes.add(`${addr}/32`);
  };
  for (const s of services) {
    const spec = s.spec;
    if (!spec || spec.type === 'ExternalName') continue;
    for (const ip of spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])) if (ip !== 'None') add(ip);
    for (const ip of spec.externalIPs ?? []) add(ip);
    for (const ing of s.status?.loadBalancer?.ingress ?? []) add(ing.ip);
  }
  return [...routes].sort();
}

interface IpRoute {
  dst: string;
  prefsrc?: string;
}

/** The routes to `device` that carry our protocol, as `a.b.c.d/len`. */
export async function ourRoutes(device: string, where: Where = {}): Promise<IpRoute[]> {
  const out = JSON.parse(await ip(where, ['-j', '-4', 'route', 'show', 'dev', device, 'proto', String(ROUTE_PROTOCOL)])) as IpRoute[];
  return out.map((r) => ({ ...r, dst: r.dst.includes('/') ? r.dst : `${r.dst}/32` }));
}

/**
 * Makes our routes to `device` exactly `wanted` (with `src`), in one `ip -batch`; other routes are
 * never touched. Resolves with what changed.
 */
export async function syncServiceRoutes(device: string, wanted: readonly string[], src: string | undefined, where: Where = {}): Promise<{ added: number; deleted: number }> {
  const have = await ourRoutes(device, where);
  const want = new Set(wanted);
  const lines: string[] = [];
  for (const r of have) if (!want.has(r.dst)) lines.push(`route del ${r.dst} dev ${device} proto ${ROUTE_PROTOCOL}`);
  const ok = new Set(have.filter((r) => (r.prefsrc ?? undefined) === src).map((r) => r.dst));
  let added = 0;
  for (const dst of wanted) {
    if (ok.has(dst)) continue;
    lines.push(`route replace ${dst} dev ${device} proto ${ROUTE_PROTOCOL}${src ? ` src ${src}` : ''}`);
    added++;
  }
  if (lines.length > 0) await ip(where, ['-batch', '-'], lines.join('\n') + '\n');
  return { added, deleted: lines.length - added };
}
