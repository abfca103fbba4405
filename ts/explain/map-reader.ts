/**
 * What `explain` reads: the lookups the datapath makes, one method each, so that the walk in
 * explain.ts is pure over this interface (tests fill real maps through the reconciler; the CLI
 * opens a node's pins) and the node's load-time settings the maps do not hold.
 */
import type { DatapathConfig } from '../abi/config.js';
import { monotonicNs } from '../abi/clock.js';
import type { Aff4Value, Backend4, Ct4Key, Ct4Value, Svc4Key, Svc4Value } from '../abi/layouts.js';
import { readClusterCidrs } from '../dataplane/cluster-cidrs.js';
import { readMaglevTable, readSourceRanges, type MapsWith } from '../dataplane/readers.js';

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

/**
 * The load-time configuration of the node's programs that decides translations (the rodata of
 * DatapathConfig: masquerade and hairpin sources, SNAT ports), and which optional hooks are attached.
 */
export type NodeSettings = Pick<DatapathConfig, 'nodeIp' | 'hairpinIp' | 'snatPortMin' | 'snatPortMax'> & {
  /** Which optional hooks are attached (from the node's link pins); absent: taken as attached. */
  hooks?: { xdp?: boolean; hostEgress?: boolean; loEgress?: boolean };
};

type MapsOf = MapsWith<'svc4' | 'backends' | 'ct4' | 'aff4' | 'srcr4' | 'nodeaddr4' | 'clustercidr4' | 'maglev'>;

/** A MapReader over typed maps: a loaded Datapath's, or a node's pins (openPinnedMaps). */
export function mapReader(dp: MapsOf): MapReader {
  const m = dp.maps;
  return {
    service: (key) => m.svc4.get(key),
    backend: (id) => m.backends.get(id),
    conntrack: (key) => m.ct4.get(key),
    affinity: (client, svcId) => m.aff4.get({ client, svc_id: svcId }),
    // The LPM key: svc_id's 32 bits, then the whole address.
    sourceRangeAllows: (svcId, addr) => m.srcr4.get({ prefixlen: 64, svc_id: svcId, addr }) !== null,
    sourceRanges: (svcId) =>
      readSourceRanges(dp)
        .filter((r) => r.svcId === svcId)
        .map((r) => r.cidr)
        .sort(),
    isNodeAddress: (addr) => m.nodeaddr4.get(addr) !== null,
    inClusterCidrs: (addr) => m.clustercidr4.get({ prefixlen: 32, addr }) !== null,
    clusterCidrs: () => readClusterCidrs(m),
    maglevTable: (svcId) => readMaglevTable(dp, svcId),
    nowNs: monotonicNs,
  };
}
