/**
 * What `bpfproxy cleanup` finds of an agent's datapath on this node: the maps pinned under its pin
 * directory, its pinned links, the programs that use those maps (bpftool), and this namespace's
 * interfaces. Only bpfproxy's own objects are listed; anything else in the pin directory is kept and
 * reported (`foreign`).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { legacyMapNames, mapSpecs } from '../abi/maps.js';
import { native, type BpfLinkNative } from '../addon/index.js';
import { datapathPrograms } from '../dataplane/loader.js';
import { CommandError, run } from '../util/exec.js';

/** A pin directory entry left in place, and why. */
export interface Kept {
  name: string;
  reason: string;
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
export const INSPECT_PIN_PREFIX = 'cleanup_inspect_';

export interface PinnedLink {
  pin: string;
  ifname: string;
  hook: string;
  link: BpfLinkNative;
  programName: string;
}

export interface Inventory {
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
export interface BpftoolLink {
  id: number;
  prog_id: number;
}

export async function bpftoolJson<T>(args: string[]): Promise<T | undefined> {
  try {
    return JSON.parse(await run('bpftool', ['-j', ...args])) as T;
  } catch (e) {
    if (e instanceof CommandError && /ENOENT|not found/i.test(e.message)) return undefined;
    throw e;
  }
}

/** A program's name, whole when it is one of ours (the kernel keeps 15 characters). */
export function programName(id: number): string {
  try {
    const p = native.BpfProgram.fromId(id);
    const name = p.info.name;
    p.close();
    return ourProgramName(name) ?? name;
  } catch {
    return '';
  }
}

export function takeInventory(pinDir: string): Inventory {
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
export async function findOurPrograms(inv: Inventory): Promise<void> {
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

// ─── this namespace's interfaces ────────────────────────────────────────────────────────────────

export interface IpLinkJson {
  ifname: string;
  ifindex: number;
  linkinfo?: { info_kind?: string };
  xdp?: { mode?: number; prog?: { id: number; name?: string }; attached?: { mode: number; prog?: { id: number; name?: string } }[] };
}

export async function ipLinks(): Promise<IpLinkJson[]> {
  return JSON.parse(await run('ip', ['-j', '-d', 'link', 'show'])) as IpLinkJson[];
}

export const XDP_MODE_FLAG: Record<number, string> = { 1: 'xdpdrv', 2: 'xdpgeneric', 3: 'xdpoffload' };

export interface TcFilterJson {
  kind?: string;
  pref?: number;
  chain?: number;
  options?: { handle?: string; prog?: { id: number; name?: string } };
}
