/**
 * Handing a node from one release to another under traffic, when their conntrack layouts differ.
 *
 * Upgrade: an older release's conntrack (ct4_v1, ct4_v2, ct4_v3) is copied into ours once our
 * programs are attached (loader.ts migrateLegacyMaps). Downgrade: an older release cannot read
 * ours, so a stopping agent also leaves its flows in ct4_v2's layout (the downgrade snapshot),
 * pinned where the releases of ct4_v2 adopt it as their own conntrack (and a ct4_v3 build
 * migrates it as an upgrade from ct4_v2). Flows that begin after the snapshot and
 * are still open when the older programs take the hooks (the older agent's start, seconds) are not
 * in it; a release older than ct4_v2 migrates nothing from it. Only a graceful stop (SIGTERM, as a
 * DaemonSet rollout sends) leaves a snapshot.
 *
 * Which copy is current is decided by what runs, not by which pins exist: the attached programs.
 *   - No attached program uses a legacy map: a legacy pin is our own snapshot, never taken over
 *     (we were restarted, not downgraded): it is unpinned, its flows are in our live map already.
 *   - One does: an older release has run since we stopped, and our map's flows are stale (ended,
 *     or moved on under the older programs); it is unpinned so that the load starts afresh, and
 *     the older map is migrated into the new one after the attach as on any upgrade.
 */
import { existsSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

import { fieldSpan } from '../abi/codec.js';
import { monotonicNs } from '../abi/clock.js';
import { ct4Value, ct4ValueV2Size } from '../abi/layouts.js';
import { CtFlags, ctClosing } from '../abi/constants.js';
import { legacyMapNames, mapSpecs } from '../abi/maps.js';
import { native } from '../addon/index.js';
import type { DatapathMaps } from './typed-map.js';

const LEGACY_CONNTRACK = [legacyMapNames.ct4V3, legacyMapNames.ct4V2, legacyMapNames.ct4V1] as const;
const FLAGS_OFFSET = fieldSpan(ct4Value, 'flags').offset;
const EXPIRES_OFFSET = fieldSpan(ct4Value, 'expires_ns').offset;
const STATE_OFFSET = fieldSpan(ct4Value, 'state').offset;

/** What settleConntrackPins found and did, for the start's log. */
export interface ConntrackPinsSettled {
  /** The conntrack the attached programs use (null: nothing attached uses one we know). */
  live: string | null;
  /** Pins removed: our old snapshot, or our own map gone stale under an older release. */
  unpinned: string[];
}

/** Map ids of the conntrack pins, by name. */
function pinnedConntrackIds(pinDir: string): Map<number, string> {
  const ids = new Map<number, string>();
  for (const name of [mapSpecs.ct4.name, ...LEGACY_CONNTRACK]) {
    const path = join(pinDir, name);
    if (!existsSync(path)) continue;
    const m = native.BpfMap.fromPin(path);
    try {
      ids.set(m.info.id, name);
    } finally {
      m.close();
    }
  }
  return ids;
}

/** The conntrack maps the programs behind our pinned links use, by name. */
export function attachedConntrack(pinDir: string): Set<string> {
  const byId = pinnedConntrackIds(pinDir);
  const used = new Set<string>();
  const linksDir = join(pinDir, 'links');
  if (byId.size === 0 || !existsSync(linksDir)) return used;
  for (const name of readdirSync(linksDir)) {
    let progId: number;
    try {
      const link = native.BpfLink.fromPin(join(linksDir, name));
      progId = link.info.progId;
      link.close();
    } catch {
      continue; // not a link (or gone meanwhile): says nothing about who runs
    }
    const prog = native.BpfProgram.fromId(progId);
    try {
      for (const id of prog.mapIds()) {
        const map = byId.get(id);
        if (map) used.add(map);
      }
    } finally {
      prog.close();
    }
  }
  return used;
}

/** Before the load: keeps exactly the conntrack pins that hold live flows (see the top of the file). */
export function settleConntrackPins(pinDir: string): ConntrackPinsSettled {
  const used = attachedConntrack(pinDir);
  const olderRuns = LEGACY_CONNTRACK.find((n) => used.has(n)) ?? null;
  const unpinned: string[] = [];
  const unpin = (name: string) => {
    const path = join(pinDir, name);
    if (!existsSync(path)) return;
    unlinkSync(path);
    unpinned.push(name);
  };
  if (olderRuns) {
    unpin(mapSpecs.ct4.name);
  } else if (used.has(mapSpecs.ct4.name)) {
    for (const name of LEGACY_CONNTRACK) unpin(name);
  }
  return { live: olderRuns ?? (used.has(mapSpecs.ct4.name) ? mapSpecs.ct4.name : null), unpinned };
}

/**
 * At a graceful stop: our live flows, in ct4_v2's layout (its value is a prefix of ours), pinned
 * as ct4_v2 for an older release to adopt. The map is made as that release declares it (LRU hash,
 * our size: the same config gives the same mapSizes.conntrack), so libbpf reuses the pin.
 * Returns the flows' entries written.
 */
export function writeDowngradeSnapshot(pinDir: string, maps: DatapathMaps): number {
  const path = join(pinDir, legacyMapNames.ct4V2);
  if (existsSync(path)) unlinkSync(path); // a stale one of ours: ct4_v4 is live (we are stopping it)
  const live = maps.ct4.raw;
  const { keys, values, count } = live.dump();
  const keySize = live.info.keySize;
  const now = monotonicNs();
  const outKeys = Buffer.alloc(count * keySize);
  const outValues = Buffer.alloc(count * ct4ValueV2Size);
  let n = 0;
  for (let i = 0; i < count; i++) {
    const v = values.subarray(i * ct4Value.size, (i + 1) * ct4Value.size);
    if (v.readBigUInt64LE(EXPIRES_OFFSET) <= now) continue;
    keys.copy(outKeys, n * keySize, i * keySize, (i + 1) * keySize);
    const at = n * ct4ValueV2Size;
    v.copy(outValues, at, 0, ct4ValueV2Size);
    // ct4_v2 kept "FIN or RST seen" as a flag; it has no REPLY flag.
    const closing = ctClosing(v.readBigUInt64LE(STATE_OFFSET)) ? CtFlags.CLOSING_V2 : 0;
    outValues.writeUInt16LE((v.readUInt16LE(FLAGS_OFFSET) & ~CtFlags.REPLY & ~CtFlags.CLOSING_V2) | closing, at + FLAGS_OFFSET);
    n++;
  }
  const snapshot = native.BpfMap.create({ type: 'lru_hash', name: legacyMapNames.ct4V2, keySize, valueSize: ct4ValueV2Size, maxEntries: live.info.maxEntries, flags: 0 });
  try {
    if (n > 0) snapshot.updateBatch(outKeys.subarray(0, n * keySize), outValues.subarray(0, n * ct4ValueV2Size), n);
    snapshot.pin(path);
  } finally {
    snapshot.close();
  }
  return n;
}
