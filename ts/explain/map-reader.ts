/**
 * What `explain` reads: the lookups the datapath makes, one method each, so that the walk in
 * explain.ts is pure over this interface (tests fill real maps through the reconciler; the CLI
 * opens a node's pins) and the node's load-time settings the maps do not hold.
 */
import { aff4Key, cidr4Key, ct4Key, srcr4Key, svc4Key, type Aff4Value, type Backend4, type Ct4Key, type Ct4Value, type Svc4Key, type Svc4Value } from '../abi/layouts.js';
import { ipv4, u32 } from '../abi/codec.js';
import { native } from '../addon/index.js';
import { monotonicNs } from '../abi/clock.js';
import { readClusterCidrs } from '../dataplane/cluster-cidrs.js';
import type { DatapathMaps } from '../dataplane/typed-map.js';

export interface MapReader {
  service(key: Svc4Key): Svc4Value | null;
  backend(id: number): Backend4 | null;
  conntrack(key: Ct4Key): Ct4Value | null;
  affinity(client: string, svcId: number): Aff4Value | null;
  /** srcr4_v1's longest-prefix match for (svc_id, addr), as lb_source_allowed asks it. */
  sourceRangeAllows(svcId: number, addr: string): boolean;
  /** The CIDRs listed for a service (to show which one matched, or that none did). */
  sourceRanges(svcId: number): string[];
  isNodeAddress(addr: string): boolean;
  /** clustercidr4_v1's longest-prefix match, as from_cluster asks it. */
  inClusterCidrs(addr: string): boolean;
  /** The cluster CIDRs the datapath holds (to show them). */
  clusterCidrs(): string[];
  /** The Maglev table of a service, or null when it has none. */
  maglevTable(svcId: number): Uint32Array | null;
  /** bpf_ktime_get_ns() now. */
  nowNs(): bigint;
}

/** The load-time configuration (rodata) of the node's programs that decides translations. */
export interface NodeSettings {
  /** cfg_node_ip: masquerade source. */
  nodeIp?: string;
  /** cfg_hairpin_ip: hairpin source. */
  hairpinIp?: string;
  snatPortMin?: number;
  snatPortMax?: number;
  /** Which optional hooks are attached (from the node's link pins); absent: taken as attached. */
  hooks?: { xdp?: boolean; hostEgress?: boolean; loEgress?: boolean };
}

type MapsOf = Pick<DatapathMaps, 'svc4' | 'backends' | 'ct4' | 'aff4' | 'srcr4' | 'nodeaddr4' | 'clustercidr4' | 'maglev'>;

/** A MapReader over typed maps: a loaded Datapath's, or a node's pins (openPinnedMaps). */
export function mapReader(dp: { maps: MapsOf }): MapReader {
  const m = dp.maps;
  return {
    service: (key) => {
      const b = m.svc4.raw.lookup(svc4Key.encode(key));
      return b ? m.svc4.spec.value.decode(b) : null;
    },
    backend: (id) => m.backends.get(id),
    conntrack: (key) => {
      const b = m.ct4.raw.lookup(ct4Key.encode(key));
      return b ? m.ct4.spec.value.decode(b) : null;
    },
    affinity: (client, svcId) => {
      const b = m.aff4.raw.lookup(aff4Key.encode({ client, svc_id: svcId }));
      return b ? m.aff4.spec.value.decode(b) : null;
    },
    sourceRangeAllows: (svcId, addr) => m.srcr4.raw.lookup(srcr4Key.encode({ prefixlen: 64, svc_id: svcId, addr })) !== null,
    sourceRanges: (svcId) =>
      m.srcr4
        .entries()
        .filter(([k]) => k.svc_id === svcId)
        .map(([k]) => `${k.addr}/${k.prefixlen - 32}`)
        .sort(),
    isNodeAddress: (addr) => m.nodeaddr4.raw.lookup(ipv4.encode(addr)) !== null,
    inClusterCidrs: (addr) => m.clustercidr4.raw.lookup(cidr4Key.encode({ prefixlen: 32, addr })) !== null,
    clusterCidrs: () => readClusterCidrs(m),
    maglevTable: (svcId) => {
      const idBuf = m.maglev.raw.lookup(u32.encode(svcId));
      if (!idBuf) return null;
      const inner = native.BpfMap.fromId(idBuf.readUInt32LE(0));
      try {
        const { values, count } = inner.dump();
        const table = new Uint32Array(count);
        for (let i = 0; i < count; i++) table[i] = values.readUInt32LE(4 * i);
        return table;
      } finally {
        inner.close();
      }
    },
    nowNs: monotonicNs,
  };
}
