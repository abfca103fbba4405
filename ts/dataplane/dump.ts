/**
 * A sorted, human-readable dump of the control-plane maps, read from the kernel (readers.ts): what
 * the golden tests compare, and, with ids replaced by what they stand for, what tests compare
 * across nodes and restarts. One line per entry.
 */
import { createHash } from 'node:crypto';

import { BackendFlags, SvcFlags, SvcKind, SvcScope } from '../abi/constants.js';
import type { Backend4, Svc4Key, Svc4Value } from '../abi/layouts.js';
import { enumName, flagNames } from '../abi/names.js';
import {
  backendName,
  frontendName,
  maglevShares,
  readBackends,
  readMaglevTables,
  readNodeAddresses,
  readServiceEntries,
  readSourceRanges,
  type MapsWith,
} from './readers.js';

/** What the dumps read: a loaded Datapath, or maps opened from a node's pins (pinned-maps.ts). */
export type MapsView = MapsWith<'svc4' | 'backends' | 'srcr4' | 'nodeaddr4' | 'maglev'>;

/** ' [A,B]' for the flags set, '' for none. */
function flagSuffix(flags: number, table: Record<string, number>): string {
  const names = flagNames(flags, table);
  return names.length > 0 ? ` [${names.join(',')}]` : '';
}

/** A master's value after its service id: kind (C name), counts, affinity, flags. */
function masterText(v: Svc4Value): string {
  return `${enumName(SvcKind, v.kind)} count ${v.count} local ${v.local_count}${v.affinity_timeout ? ` affinity ${v.affinity_timeout}s` : ''}${flagSuffix(v.flags, SvcFlags)}`;
}

function slotText(k: Svc4Key): string {
  return `${frontendName(k)} ${k.scope === SvcScope.ALL ? 'all' : 'local'}[${k.backend_slot}]`;
}

const backendText = (b: Backend4) => `${backendName(b)}${flagSuffix(b.flags, BackendFlags)}`;

export function dumpServiceMaps(dp: MapsView): string[] {
  const lines: string[] = [];
  const { masters, slots } = readServiceEntries(dp);
  for (const { key, value } of masters) lines.push(`svc ${frontendName(key)} → id ${value.svc_id} ${masterText(value)}`);
  for (const { key, value } of slots) lines.push(`svc ${slotText(key)} → backend ${value.backend_id}`);
  for (const [id, b] of readBackends(dp)) lines.push(`backend ${id} → ${backendText(b)}`);
  for (const r of readSourceRanges(dp)) lines.push(`source-range svc ${r.svcId} ${r.cidr}`);
  for (const addr of readNodeAddresses(dp)) lines.push(`node-address ${addr}`);
  for (const [svcId, table] of readMaglevTables(dp)) {
    lines.push(`maglev svc ${svcId} M=${table.length}: ${maglevShares(table).map(([b, n]) => `${b}×${n}`).join(' ')}`);
  }
  return lines.sort();
}

/**
 * The same maps with every id replaced by what it stands for: backend ids by the backend's
 * address:port/protocol, service ids by the first frontend carrying them. Two nodes (or a
 * restarted agent and a fresh one) that hold the same services under different ids give equal
 * dumps; a Maglev table is named by a digest of its entries' backends, slot by slot.
 */
export function canonicalServiceDump(dp: MapsView): string[] {
  const { masters, slots } = readServiceEntries(dp);
  const backends = new Map([...readBackends(dp)].map(([id, b]) => [id, backendText(b)]));
  const be = (id: number) => backends.get(id) ?? `missing backend #${id}`;
  const groupName = new Map<number, string>();
  for (const { key, value } of masters) {
    const name = frontendName(key);
    const cur = groupName.get(value.svc_id);
    if (cur === undefined || name < cur) groupName.set(value.svc_id, name);
  }
  const group = (id: number) => `group(${groupName.get(id) ?? `unreferenced #${id}`})`;
  const lines: string[] = [];
  for (const { key, value } of masters) lines.push(`svc ${frontendName(key)} → ${group(value.svc_id)} ${masterText(value)}`);
  for (const { key, value } of slots) lines.push(`svc ${slotText(key)} → ${be(value.backend_id)} in ${group(value.svc_id)}`);
  for (const name of backends.values()) lines.push(`backend ${name}`);
  for (const r of readSourceRanges(dp)) lines.push(`source-range ${group(r.svcId)} ${r.cidr}`);
  for (const addr of readNodeAddresses(dp)) lines.push(`node-address ${addr}`);
  for (const [svcId, ids] of readMaglevTables(dp)) {
    const table = Array.from(ids, be);
    const digest = createHash('sha256').update(table.join('\n')).digest('hex').slice(0, 16);
    const share = new Map<string, number>();
    for (const b of table) share.set(b, (share.get(b) ?? 0) + 1);
    const parts = [...share].sort(([a], [b]) => (a < b ? -1 : 1)).map(([b, n]) => `${b}×${n}`);
    lines.push(`maglev ${group(svcId)} M=${table.length} ${digest}: ${parts.join(' ')}`);
  }
  return lines.sort();
}
