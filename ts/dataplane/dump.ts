/**
 * A sorted, human-readable dump of the control-plane maps, read from the kernel: what golden tests
 * compare and what `bpfproxy services` starts from. One line per entry.
 */
import { backend4, srcr4Key, svc4Key, svc4Value } from '../abi/layouts.js';
import { BackendFlags, IPPROTO, SvcFlags, SvcKind } from '../abi/constants.js';
import { native } from '../addon/index.js';
import type { Datapath } from './loader.js';

const PROTO_NAME = Object.fromEntries(Object.entries(IPPROTO).map(([k, v]) => [v, k])) as Record<number, string>;
const KIND_NAME = Object.fromEntries(Object.entries(SvcKind).map(([k, v]) => [v, k])) as Record<number, string>;

function flagNames(flags: number, table: Record<string, number>): string {
  const names = Object.entries(table).filter(([, bit]) => flags & bit).map(([n]) => n);
  return names.length > 0 ? ` [${names.join(',')}]` : '';
}

export function dumpServiceMaps(dp: Datapath): string[] {
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
