/**
 * A sorted, human-readable dump of the control-plane maps, read from the kernel: what golden tests
 * compare and what `bpfproxy services` starts from. One line per entry.
 */
import { createHash } from 'node:crypto';

import { backend4, srcr4Key, svc4Key, svc4Value } from '../abi/layouts.js';
import { BackendFlags, IPPROTO, SvcFlags, SvcKind } from '../abi/constants.js';
import { native } from '../addon/index.js';
import type { DatapathMaps } from './typed-map.js';

/** What the dumps read: a loaded Datapath, or maps opened from a node's pins (pinned-maps.ts). */
export interface MapsView {
  readonly maps: Pick<DatapathMaps, 'svc4' | 'backends' | 'srcr4' | 'nodeaddr4' | 'maglev'>;
}

const PROTO_NAME = Object.fromEntries(Object.entries(IPPROTO).map(([k, v]) => [v, k])) as Record<number, string>;
const KIND_NAME = Object.fromEntries(Object.entries(SvcKind).map(([k, v]) => [v, k])) as Record<number, string>;

function flagNames(flags: number, table: Record<string, number>): string {
  const names = Object.entries(table).filter(([, bit]) => flags & bit).map(([n]) => n);
  return names.length > 0 ? ` [${names.join(',')}]` : '';
}

export function dumpServiceMaps(dp: MapsView): string[] {
  const lines: string[] = [];
  for (const [k, v] of dp.maps.svc4.entries() as [ReturnType<typeof svc4Key.decode>, ReturnType<typeof svc4Value.decode>][]) {
    const fe = `${k.addr}:${k.port}/${PROTO_NAME[k.proto] ?? k.proto}`;
    if (k.backend_slot === 0 && k.scope === 0) {
      lines.push(`svc ${fe} → id ${v.svc_id} ${KIND_NAME[v.kind]} count ${v.count} local ${v.local_count}${v.affinity_timeout ? ` affinity ${v.affinity_timeout}s` : ''}${flagNames(v.flags, SvcFlags)}`);
    } else {
      lines.push(`svc ${fe} ${k.scope === 0 ? 'all' : 'local'}[${k.backend_slot}] → backend ${v.backend_id}`);
    }
  }
  for (const [id, b] of dp.maps.backends.entries() as [number, ReturnType<typeof backend4.decode>][]) {
    lines.push(`backend ${id} → ${b.addr}:${b.port}/${PROTO_NAME[b.proto] ?? b.proto}${flagNames(b.flags, BackendFlags)}`);
  }
  for (const [k] of dp.maps.srcr4.entries() as [ReturnType<typeof srcr4Key.decode>, number][]) {
    lines.push(`source-range svc ${k.svc_id} ${k.addr}/${k.prefixlen - 32}`);
  }
  for (const [addr] of dp.maps.nodeaddr4.entries() as [string, unknown][]) {
    lines.push(`node-address ${addr}`);
  }
  for (const [svcId, innerId] of dp.maps.maglev.entries() as [number, number][]) {
    const inner = native.BpfMap.fromId(innerId);
    try {
      const { values, count } = inner.dump();
      const share = new Map<number, number>();
      for (let i = 0; i < count; i++) share.set(values.readUInt32LE(4 * i), (share.get(values.readUInt32LE(4 * i)) ?? 0) + 1);
      const parts = [...share].sort(([a], [b]) => a - b).map(([b, n]) => `${b}×${n}`);
      lines.push(`maglev svc ${svcId} M=${count}: ${parts.join(' ')}`);
    } finally {
      inner.close();
    }
  }
  return lines.sort();
}

function readMaglevTable(innerId: number): number[] {
  const inner = native.BpfMap.fromId(innerId);
  try {
    const { values, count } = inner.dump();
    return Array.from({ length: count }, (_, i) => values.readUInt32LE(4 * i));
  } finally {
    inner.close();
  }
}

/**
 * The same maps with every id replaced by what it stands for: backend ids by the backend's
 * address:port/protocol, service ids by the first frontend carrying them. Two nodes (or a
 * restarted agent and a fresh one) that hold the same services under different ids give equal
 * dumps; a Maglev table is named by a digest of its entries' backends, slot by slot.
 */
export function canonicalServiceDump(dp: MapsView): string[] {
  const svc = dp.maps.svc4.entries() as [ReturnType<typeof svc4Key.decode>, ReturnType<typeof svc4Value.decode>][];
  const backends = new Map(
    (dp.maps.backends.entries() as [number, ReturnType<typeof backend4.decode>][]).map(([id, b]) => [
      id,
      `${b.addr}:${b.port}/${PROTO_NAME[b.proto] ?? b.proto}${flagNames(b.flags, BackendFlags)}`,
    ]),
  );
  const be = (id: number) => backends.get(id) ?? `missing backend #${id}`;
  const groupName = new Map<number, string>();
  const feName = (k: ReturnType<typeof svc4Key.decode>) => `${k.addr}:${k.port}/${PROTO_NAME[k.proto] ?? k.proto}`;
  for (const [k, v] of svc) {
    if (k.backend_slot !== 0 || k.scope !== 0) continue;
    const name = feName(k);
    const cur = groupName.get(v.svc_id);
    if (cur === undefined || name < cur) groupName.set(v.svc_id, name);
  }
  const group = (id: number) => `group(${groupName.get(id) ?? `unreferenced #${id}`})`;
  const lines: string[] = [];
  for (const [k, v] of svc) {
    const fe = feName(k);
    if (k.backend_slot === 0 && k.scope === 0) {
      lines.push(`svc ${fe} → ${group(v.svc_id)} ${KIND_NAME[v.kind]} count ${v.count} local ${v.local_count}${v.affinity_timeout ? ` affinity ${v.affinity_timeout}s` : ''}${flagNames(v.flags, SvcFlags)}`);
    } else {
      lines.push(`svc ${fe} ${k.scope === 0 ? 'all' : 'local'}[${k.backend_slot}] → ${be(v.backend_id)} in ${group(v.svc_id)}`);
    }
  }
  for (const name of backends.values()) lines.push(`backend ${name}`);
  for (const [k] of dp.maps.srcr4.entries() as [ReturnType<typeof srcr4Key.decode>, number][]) {
    lines.push(`source-range ${group(k.svc_id)} ${k.addr}/${k.prefixlen - 32}`);
  }
  for (const [addr] of dp.maps.nodeaddr4.entries() as [string, unknown][]) lines.push(`node-address ${addr}`);
  for (const [svcId, innerId] of dp.maps.maglev.entries() as [number, number][]) {
    const table = readMaglevTable(innerId).map(be);
    const digest = createHash('sha256').update(table.join('\n')).digest('hex').slice(0, 16);
    const share = new Map<string, number>();
    for (const b of table) share.set(b, (share.get(b) ?? 0) + 1);
    const parts = [...share].sort(([a], [b]) => (a < b ? -1 : 1)).map(([b, n]) => `${b}×${n}`);
    lines.push(`maglev ${group(svcId)} M=${table.length} ${digest}: ${parts.join(' ')}`);
  }
  return lines.sort();
}
