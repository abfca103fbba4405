/**
 * `bpfproxy cleanup`, kube-proxy --cleanup's counterpart: removes from this node (this network
 * namespace) everything a bpfproxy agent installed, so that kube-proxy can take over or bpfproxy
 * can be uninstalled. What the agent installs (ts/agent/agent.ts, ts/dataplane/attach.ts,
 * loader.ts, ts/agent/pod-interfaces.ts):
 *
 *   - BPF links, each pinned as `<pinDir>/links/<ifname>_<hook>`: tcx ingress+egress on pod veths,
 *     tcx ingress and XDP on the uplink, tcx egress (tc_host_egress) on the service device;
 *   - the maps, pinned by name under `<pinDir>` (mapSpecs); the Maglev inner maps are not pinned
 *     and go with their outer map; programs are never pinned (the links hold them);
 *   - the service device (ts/agent/service-device.ts): a sink (dummy or ifb, no address) named
 *     serviceInterface, which the agent creates, with its routes; deleted (its routes with it)
 *     unless asked to keep it;
 *   - net.ipv4.conf.lo.accept_local=1 (bpf/lib/local.h): reset to the kernel's default, 0. (Nothing
 *     records whether someone else wanted it 1: a node that needs it should set it again.)
 *
 * Only bpfproxy's own objects are touched. A program is ours when it is one of the datapath's
 * programs (by name) and it uses this pin directory's maps (by map id): that ties it to this node's
 * datapath, never to another agent's (another namespace, another pin dir) or a foreign program of
 * the same name. Pinned links are detached explicitly (BPF_LINK_DETACH), so the programs leave the
 * interfaces even while some process still holds the link. Everything is idempotent: what is gone
 * is simply not found.
 *
 * A running agent is refused (unless forced): it would re-attach to new pods and keep serving from
 * maps no longer pinned. See findLiveAgent for how one is recognised.
 */
import { readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, existsSync, lstatSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';

import { legacyMapNames, mapSpecs } from '../abi/maps.js';
import { native, type BpfLinkNative } from '../addon/index.js';
import { CommandError, run } from '../util/exec.js';
import { datapathPrograms } from './loader.js';

/** lo's accept_local in this network namespace (the agent sets it: ts/agent/service-device.ts). */
export const LO_ACCEPT_LOCAL = '/proc/sys/net/ipv4/conf/lo/accept_local';

/** Where the agent's objects are: the agent's own configuration (ts/agent/config.ts) decides. */
export interface CleanupTarget {
  /** The agent's bpffsDir. */
  pinDir: string;
  /** The agent's serviceInterface ('' = none). */
  serviceInterface: string;
  /** The agent's metricsBindAddress ('' = off): asked for /proxyMode to spot a live agent. */
  metricsBindAddress: string;
}

export interface CleanupOptions {
  /** Report what would be removed; change nothing. */
  dryRun?: boolean;
  /** Go on although an agent runs. */
  force?: boolean;
  /** Leave the service device (and its routes) in place; its program is detached all the same. */
  keepServiceDevice?: boolean;
}

export type RemovedKind = 'link' | 'xdp' | 'tc-filter' | 'map' | 'directory' | 'service-device' | 'route' | 'sysctl';

export interface Removed {
  kind: RemovedKind;
  /** The pin path, interface or route. */
  name: string;
  detail: string;
}

export interface Kept {
  name: string;
  reason: string;
}

export interface Holder {
  pid: number;
  command: string;
  maps: number;
  links: number;
  programs: number;
}

export interface AgentEvidence {
  running: boolean;
  /** Why we think an agent runs (empty when none does). */
  reasons: string[];
  /** Processes holding this datapath's maps, links or programs. */
  holders: Holder[];
}

export interface CleanupReport {
  pinDir: string;
  dryRun: boolean;
  forced: boolean;
  agent: AgentEvidence;
  removed: Removed[];
  kept: Kept[];
  warnings: string[];
}

export class AgentRunningError extends Error {
  constructor(
    readonly evidence: AgentEvidence,
    pinDir: string,
  ) {
    super(`a bpfproxy agent is running for ${pinDir}: ${evidence.reasons.join('; ')}. Stop it first (or pass --force)`);
    this.name = 'AgentRunningError';
  }
}

const OUR_PROGRAM_NAMES = new Set<string>(Object.values(datapathPrograms).map((p) => p.name));
/** The kernel keeps 15 characters of a program's name (BPF_OBJ_NAME_LEN); BTF-aware tools show it whole. */
function ourProgramName(name: string): string | undefined {
  for (const n of OUR_PROGRAM_NAMES) if (name === n || name === n.slice(0, 15)) return n;
  return undefined;
}
function isOurProgramName(name: string): boolean {
  return ourProgramName(name) !== undefined;
}
/** Ours too: the pins of older layouts an agent that never ran this version may have left (ct4_v1 to ct4_v3). */
const MAP_PIN_NAMES: readonly string[] = [...Object.values(mapSpecs).map((s) => s.name), ...Object.values(legacyMapNames)];
const LINK_PIN = /^(.+)_(ingress|egress|xdp)$/;
/** bpffs refuses names with a dot; a temporary pin to inspect an unpinned link. */
const INSPECT_PIN_PREFIX = 'cleanup_inspect_';

// ─── what is there ──────────────────────────────────────────────────────────────────────────────

interface PinnedLink {
  pin: string;
  ifname: string;
  hook: string;
  link: BpfLinkNative;
  programName: string;
}

interface Inventory {
  /** Map ids of the pinned maps, by pin name. */
  mapIds: Map<string, number>;
  links: PinnedLink[];
  /** Entries of the pin dir and links dir that are not ours. */
  foreign: Kept[];
  /** Ids of the programs of this datapath. */
  programIds: Set<number>;
  /** bpftool's view, when it is there. */
  bpftool: boolean;
  warnings: string[];
}

interface BpftoolProg {
  id: number;
  name?: string;
  map_ids?: number[];
}
interface BpftoolLink {
  id: number;
  prog_id: number;
}

async function bpftoolJson<T>(args: string[]): Promise<T | undefined> {
  try {
    return JSON.parse(await run('bpftool', ['-j', ...args])) as T;
  } catch (e) {
    if (e instanceof CommandError && /ENOENT|not found/i.test(e.message)) return undefined;
    throw e;
  }
}

/** A program's name, whole when it is one of ours (the kernel keeps 15 characters). */
function programName(id: number): string {
  try {
    const p = native.BpfProgram.fromId(id);
    const name = p.info.name;
    p.close();
    return ourProgramName(name) ?? name;
  } catch {
    return '';
  }
}

function takeInventory(pinDir: string): Inventory {
  const inv: Inventory = { mapIds: new Map(), links: [], foreign: [], programIds: new Set(), bpftool: false, warnings: [] };
  if (!existsSync(pinDir)) return inv;
  for (const entry of readdirSync(pinDir)) {
    const path = join(pinDir, entry);
    if (entry === 'links' || entry.endsWith('.debug')) continue; // *.debug: the kernel's own (bpf_preload)
    if (!MAP_PIN_NAMES.includes(entry)) {
      inv.foreign.push({ name: path, reason: 'not a bpfproxy pin' });
      continue;
    }
    try {
      const m = native.BpfMap.fromPin(path);
      inv.mapIds.set(entry, m.info.id);
      m.close();
    } catch (e) {
      inv.foreign.push({ name: path, reason: `named like a bpfproxy map but not one: ${(e as Error).message}` });
    }
  }
  const linksDir = join(pinDir, 'links');
  if (existsSync(linksDir)) {
    for (const entry of readdirSync(linksDir)) {
      const pin = join(linksDir, entry);
      const m = LINK_PIN.exec(entry);
      if (entry.startsWith(INSPECT_PIN_PREFIX)) {
        // A previous cleanup's temporary pin (it died in between): a link of ours, or gone.
      } else if (!m) {
        inv.foreign.push({ name: pin, reason: 'not a bpfproxy link pin' });
        continue;
      }
      let link: BpfLinkNative;
      try {
        link = native.BpfLink.fromPin(pin);
      } catch (e) {
        inv.foreign.push({ name: pin, reason: `not a BPF link: ${(e as Error).message}` });
        continue;
      }
      const name = programName(link.info.progId);
      if (!isOurProgramName(name)) {
        link.close();
        inv.foreign.push({ name: pin, reason: `a link of program '${name}', not bpfproxy's` });
        continue;
      }
      inv.links.push({ pin, ifname: m?.[1] ?? '', hook: m?.[2] ?? link.info.attachType ?? '', link, programName: name });
      inv.programIds.add(link.info.progId);
    }
  }
  return inv;
}

/**
 * Adds the programs that use this pin dir's maps (bpftool knows which maps a program uses). With
 * no map pinned nothing ties a program to this node any more: a program of our name elsewhere is
 * another bpfproxy's (another node's namespace, another pin dir), so it is left alone.
 */
async function findOurPrograms(inv: Inventory): Promise<void> {
  const progs = await bpftoolJson<BpftoolProg[]>(['prog', 'show']);
  if (!progs) {
    inv.warnings.push('bpftool is not installed: only pinned links were looked at (not unpinned links nor tc filters)');
    return;
  }
  inv.bpftool = true;
  const ourMaps = new Set(inv.mapIds.values());
  for (const p of progs) {
    if (p.name && isOurProgramName(p.name) && (p.map_ids ?? []).some((id) => ourMaps.has(id))) inv.programIds.add(p.id);
  }
}

// ─── is an agent running? ───────────────────────────────────────────────────────────────────────

function fdinfoId(text: string, key: string): number | undefined {
  const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Processes (of this PID namespace, but ourselves) holding fds of these maps, links or programs. */
function findHolders(mapIds: Set<number>, linkIds: Set<number>, progIds: Set<number>): Holder[] {
  const holders: Holder[] = [];
  if (mapIds.size + linkIds.size + progIds.size === 0) return holders;
  for (const pidName of readdirSync('/proc')) {
    if (!/^\d+$/.test(pidName) || Number(pidName) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pidName}/fd`);
    } catch {
      continue; // gone, or a kernel thread
    }
    const h: Holder = { pid: Number(pidName), command: '', maps: 0, links: 0, programs: 0 };
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pidName}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!target.startsWith('anon_inode:bpf')) continue;
      let info: string;
      try {
        info = readFileSync(`/proc/${pidName}/fdinfo/${fd}`, 'utf8');
      } catch {
        continue;
      }
      if (target === 'anon_inode:bpf-map' && mapIds.has(fdinfoId(info, 'map_id') ?? -1)) h.maps++;
      // The kernel names link files bpf_link (maps and programs: bpf-map, bpf-prog).
      else if ((target === 'anon_inode:bpf_link' || target === 'anon_inode:bpf-link') && (linkIds.has(fdinfoId(info, 'link_id') ?? -1) || progIds.has(fdinfoId(info, 'prog_id') ?? -1))) h.links++;
      else if (target === 'anon_inode:bpf-prog' && progIds.has(fdinfoId(info, 'prog_id') ?? -1)) h.programs++;
    }
    if (h.maps + h.links + h.programs === 0) continue;
    try {
      h.command = readFileSync(`/proc/${pidName}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    } catch {
      h.command = '?';
    }
    holders.push(h);
  }
  return holders;
}

/** GET /proxyMode on the agent's metrics address: bpfproxy answers 'bpfproxy', kube-proxy its mode. */
function askProxyMode(bindAddress: string): Promise<string | undefined> {
  const i = bindAddress.lastIndexOf(':');
  const port = Number(bindAddress.slice(i + 1));
  if (!bindAddress || i < 0 || !Number.isInteger(port) || port <= 0) return Promise.resolve(undefined);
  let host = bindAddress.slice(0, i).replace(/^\[|\]$/g, '');
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/proxyMode', timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/**
 * Is an agent using this datapath? Two signs, either is enough:
 *
 *   1. A process holds one of its links or programs (found through /proc/PID/fdinfo, matched by
 *      kernel object id). Only a process that attaches holds those — the agent — while `bpfproxy
 *      services`/`explain` or bpftool hold maps only (reported, not refused). This is the reliable
 *      sign: it names this very datapath whatever ports, namespaces or config the agent runs with,
 *      and it cannot be stale the way a pid or lock file can. Its limit: processes of other PID
 *      namespaces are not in our /proc (run cleanup with the host's PID namespace).
 *   2. The metrics address of the configuration answers /proxyMode with 'bpfproxy': an agent in
 *      another PID namespace (a container), in this network namespace. The healthz port would not
 *      do: kube-proxy answers it the same way, and it may already be back on the node.
 */
export async function findLiveAgent(target: CleanupTarget, inv: { mapIds: Map<string, number>; linkIds: Set<number>; programIds: Set<number> }): Promise<AgentEvidence> {
  const holders = findHolders(new Set(inv.mapIds.values()), inv.linkIds, inv.programIds);
  const reasons: string[] = [];
  for (const h of holders.filter((x) => x.links + x.programs > 0)) {
    reasons.push(`pid ${h.pid} (${h.command.slice(0, 120)}) holds ${h.links} of its links and ${h.programs} of its programs`);
  }
  const mode = await askProxyMode(target.metricsBindAddress);
  if (mode === 'bpfproxy') reasons.push(`${target.metricsBindAddress} answers /proxyMode with '${mode}'`);
  return { running: reasons.length > 0, reasons, holders };
}

// ─── this namespace's interfaces ────────────────────────────────────────────────────────────────

interface IpLinkJson {
  ifname: string;
  ifindex: number;
  linkinfo?: { info_kind?: string };
  xdp?: { mode?: number; prog?: { id: number; name?: string }; attached?: { mode: number; prog?: { id: number; name?: string } }[] };
}

async function ipLinks(): Promise<IpLinkJson[]> {
  return JSON.parse(await run('ip', ['-j', '-d', 'link', 'show'])) as IpLinkJson[];
}

const XDP_MODE_FLAG: Record<number, string> = { 1: 'xdpdrv', 2: 'xdpgeneric', 3: 'xdpoffload' };

interface TcFilterJson {
  kind?: string;
  pref?: number;
  chain?: number;
  options?: { handle?: string; prog?: { id: number; name?: string } };
}

// ─── cleanup ────────────────────────────────────────────────────────────────────────────────────

/**
 * Removes this node's bpfproxy objects (or, dry, says which it would) and reports them. Throws
 * AgentRunningError while an agent runs, unless forced; other failures are thrown as they come
 * (what was removed before stays removed; a rerun goes on from there).
 */
export async function cleanupNode(target: CleanupTarget, opts: CleanupOptions = {}): Promise<CleanupReport> {
  const dryRun = opts.dryRun ?? false;
  const inv = takeInventory(target.pinDir);
  try {
    await findOurPrograms(inv);
    const agent = await findLiveAgent(target, { mapIds: inv.mapIds, linkIds: new Set(inv.links.map((l) => l.link.info.id)), programIds: inv.programIds });
    if (agent.running && !opts.force) throw new AgentRunningError(agent, target.pinDir);
    const report: CleanupReport = { pinDir: target.pinDir, dryRun, forced: agent.running && (opts.force ?? false), agent, removed: [], kept: [...inv.foreign], warnings: [...inv.warnings] };
    for (const h of agent.holders.filter((x) => x.links + x.programs === 0)) {
      report.warnings.push(`pid ${h.pid} (${h.command.slice(0, 120)}) holds ${h.maps} of the maps: they are freed when it closes them`);
    }
    const links = await ipLinks();
    const ifnameOf = (ifindex: number | undefined) => links.find((l) => l.ifindex === ifindex)?.ifname;
    /** `${progId}/${ifindex}` of XDP attachments already handled through their link. */
    const doneXdp = new Set<string>();

    // 1. Pinned links: detached, then unpinned (programs leave the interfaces at once).
    for (const l of inv.links) {
      const info = l.link.info;
      const here = ifnameOf(info.ifindex);
      const where = info.ifindex ? `${info.attachType ?? info.type} on ${here ?? `ifindex ${info.ifindex}`}` : 'already detached (its interface is gone)';
      if (info.ifindex && l.ifname && here !== undefined && here !== l.ifname) {
        report.warnings.push(`${l.pin} is attached to ifindex ${info.ifindex}, which is ${here} here, not ${l.ifname}: is cleanup running in the agent's network namespace?`);
      }
      if (info.attachType === 'xdp' && info.ifindex) doneXdp.add(`${info.progId}/${info.ifindex}`);
      if (!dryRun) {
        if (info.ifindex) detachLink(l.link);
        rmSync(l.pin, { force: true });
      }
      report.removed.push({ kind: 'link', name: l.pin, detail: `${l.programName} (link ${info.id}, ${info.type}), ${where}` });
    }

    // 2. Links of our programs that are not pinned (held by a process: a forced run, or pins removed by hand).
    if (inv.bpftool && inv.programIds.size > 0) {
      const pinned = new Set(inv.links.map((l) => l.link.info.id));
      for (const bl of (await bpftoolJson<BpftoolLink[]>(['link', 'show'])) ?? []) {
        if (pinned.has(bl.id) || !inv.programIds.has(bl.prog_id)) continue;
        const r = await inspectLink(target.pinDir, bl.id, dryRun);
        if (!r) continue; // gone meanwhile, or detached already
        if (r.attachType === 'xdp') doneXdp.add(`${bl.prog_id}/${r.ifindex}`);
        report.removed.push({ kind: 'link', name: `link ${bl.id}`, detail: `${programName(bl.prog_id)}, ${r.attachType} on ${ifnameOf(r.ifindex) ?? `ifindex ${r.ifindex}`} (not pinned)` });
      }
    }

    // 3. XDP attached through netlink rather than a link, in this namespace.
    for (const l of links) {
      const attached = l.xdp?.attached ?? (l.xdp?.prog ? [{ mode: l.xdp.mode ?? 0, prog: l.xdp.prog }] : []);
      for (const a of attached) {
        if (!a.prog || doneXdp.has(`${a.prog.id}/${l.ifindex}`) || !inv.programIds.has(a.prog.id)) continue;
        const flag = XDP_MODE_FLAG[a.mode] ?? 'xdp';
        if (!dryRun) await run('ip', ['link', 'set', 'dev', l.ifname, flag, 'off']);
        report.removed.push({ kind: 'xdp', name: l.ifname, detail: `${a.prog.name ?? programName(a.prog.id)} (program ${a.prog.id}, ${flag}, netlink)` });
      }
    }

    // 4. tc filters (clsact, not tcx) running our programs, in this namespace.
    if (inv.bpftool) {
      const qdiscs = JSON.parse(await run('tc', ['-j', 'qdisc', 'show'])) as { kind?: string; dev?: string }[];
      for (const dev of new Set(qdiscs.filter((q) => q.kind === 'clsact' && q.dev).map((q) => q.dev!))) {
        for (const dir of ['ingress', 'egress']) {
          const filters = JSON.parse(await run('tc', ['-j', 'filter', 'show', 'dev', dev, dir])) as TcFilterJson[];
          for (const f of filters) {
            const prog = f.options?.prog;
            if (f.kind !== 'bpf' || !prog || f.pref === undefined || !f.options?.handle || !inv.programIds.has(prog.id)) continue;
            const args = ['filter', 'del', 'dev', dev, dir, 'pref', String(f.pref), ...(f.chain ? ['chain', String(f.chain)] : []), 'handle', f.options.handle, 'bpf'];
            if (!dryRun) await run('tc', args);
            report.removed.push({ kind: 'tc-filter', name: `${dev} ${dir}`, detail: `${prog.name ?? programName(prog.id)} (program ${prog.id}, pref ${f.pref}, handle ${f.options.handle})` });
          }
        }
      }
    }

    // 5. The pinned maps, then the directories if nothing else is in them.
    for (const [name, id] of inv.mapIds) {
      const path = join(target.pinDir, name);
      if (!dryRun) rmSync(path, { force: true });
      report.removed.push({ kind: 'map', name: path, detail: `map ${id}` });
    }
    for (const dir of [join(target.pinDir, 'links'), target.pinDir]) {
      if (!existsSync(dir) || !lstatSync(dir).isDirectory()) continue;
      const left = readdirSync(dir).filter((e) => !e.endsWith('.debug'));
      const willBeEmpty = dryRun ? left.every((e) => report.removed.some((r) => r.name === join(dir, e))) : left.length === 0;
      if (!willBeEmpty) continue; // what is left is reported in kept
      if (dir === target.pinDir && readdirSync(dir).some((e) => e.endsWith('.debug'))) continue; // a bpffs mount point itself
      if (!dryRun) rmdirSync(dir);
      report.removed.push({ kind: 'directory', name: dir, detail: 'empty pin directory' });
    }

    // 6. The service device.
    if (target.serviceInterface) await removeServiceDevice(target.serviceInterface, links, opts, report);

    // 7. lo's accept_local.
    if (existsSync(LO_ACCEPT_LOCAL) && readFileSync(LO_ACCEPT_LOCAL, 'utf8').trim() === '1') {
      if (!dryRun) writeFileSync(LO_ACCEPT_LOCAL, '0');
      report.removed.push({ kind: 'sysctl', name: 'net.ipv4.conf.lo.accept_local', detail: '1 → 0 (set by the agent for node-sourced local delivery)' });
    }
    return report;
  } finally {
    for (const l of inv.links) l.link.close();
  }
}

/** BPF_LINK_DETACH; a link whose interface went away meanwhile is detached already. */
function detachLink(link: BpfLinkNative): void {
  try {
    link.detach();
  } catch (e) {
    if (link.info.ifindex) throw e;
  }
}

/**
 * An unpinned link of our programs: pinned for a moment (bpftool can, the addon cannot open by id)
 * to read where it is attached, and detached unless dry. Undefined when it is not attached.
 */
async function inspectLink(pinDir: string, id: number, dryRun: boolean): Promise<{ ifindex: number; attachType: string } | undefined> {
  const dir = join(pinDir, 'links');
  const pin = join(existsSync(dir) ? dir : pinDir, `${INSPECT_PIN_PREFIX}${id}`);
  try {
    await run('bpftool', ['link', 'pin', 'id', String(id), pin]);
  } catch {
    return undefined;
  }
  let link: BpfLinkNative | undefined;
  try {
    link = native.BpfLink.fromPin(pin);
    const { ifindex, attachType, type } = link.info;
    if (!ifindex) return undefined;
    if (!dryRun) detachLink(link);
    return { ifindex, attachType: attachType ?? type };
  } finally {
    link?.close();
    rmSync(pin, { force: true });
  }
}

interface IpAddrJson {
  addr_info?: { family: string; local: string; scope?: string }[];
}
interface IpRouteJson {
  dst: string;
  type?: string;
  table?: string;
}

async function removeServiceDevice(name: string, links: IpLinkJson[], opts: CleanupOptions, report: CleanupReport): Promise<void> {
  const dev = links.find((l) => l.ifname === name);
  if (!dev) return; // gone already
  if (opts.keepServiceDevice) {
    report.kept.push({ name, reason: 'service device kept (--keep-service-device)' });
    return;
  }
  const kind = dev.linkinfo?.info_kind ?? '';
  if (kind !== 'dummy' && kind !== 'ifb') {
    report.kept.push({ name, reason: `service device is a '${kind || 'physical'}' device, not a dummy or ifb sink: not deleted` });
    return;
  }
  const addrs = (JSON.parse(await run('ip', ['-j', 'addr', 'show', 'dev', name])) as IpAddrJson[])[0]?.addr_info ?? [];
  const own = addrs.filter((a) => a.scope !== 'link');
  if (own.length > 0) {
    report.kept.push({ name, reason: `service device has address(es) ${own.map((a) => a.local).join(', ')}: not a bare sink, not deleted` });
    return;
  }
  // Its routes (the Service and external ranges) go with it; listed so the report says so.
  const routes: IpRouteJson[] = [];
  for (const family of ['-4', '-6']) {
    routes.push(...(JSON.parse(await run('ip', ['-j', family, 'route', 'show', 'table', 'all', 'dev', name])) as IpRouteJson[]));
  }
  if (!opts.dryRun) await run('ip', ['link', 'del', 'dev', name]);
  report.removed.push({ kind: 'service-device', name, detail: `${kind} device` });
  // The kernel's own (IPv6 link-local and multicast) are not worth reporting.
  for (const r of routes.filter((x) => (x.type === undefined || x.type === 'unicast') && !x.dst.startsWith('fe80:'))) {
    report.removed.push({ kind: 'route', name: `${r.dst} dev ${name}`, detail: `with the service device${r.table ? ` (table ${r.table})` : ''}` });
  }
}
