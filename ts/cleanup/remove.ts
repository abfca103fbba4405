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
import { existsSync, lstatSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { LO_ACCEPT_LOCAL } from '../agent/service-device.js';
import { native, type BpfLinkNative } from '../addon/index.js';
import { run } from '../util/exec.js';
import { AgentRunningError, findLiveAgent, type AgentEvidence, type CleanupTarget } from './holders.js';
import {
  bpftoolJson,
  findOurPrograms,
  INSPECT_PIN_PREFIX,
  ipLinks,
  programName,
  takeInventory,
  XDP_MODE_FLAG,
  type BpftoolLink,
  type IpLinkJson,
  type Kept,
  type TcFilterJson,
} from './inventory.js';

export { AgentRunningError, type AgentEvidence, type CleanupTarget, type Kept };
export type { Holder } from './holders.js';

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

export interface CleanupReport {
  pinDir: string;
  dryRun: boolean;
  forced: boolean;
  agent: AgentEvidence;
  removed: Removed[];
  kept: Kept[];
  warnings: string[];
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
