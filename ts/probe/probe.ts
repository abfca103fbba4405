/**
 * The traffic probe (bpf/probe.bpf.c): packets and bytes per interface, hook and L4 protocol.
 * The smallest complete use of the addon — load with rodata, pin, attach to XDP and tc, read a
 * per-CPU map — and a way for an operator to see that packets really cross a hook.
 */
import { join } from 'node:path';

import { embeddedObject, native, type BpfLinkNative, type BpfMapNative, type BpfObjectNative } from '../addon/index.js';

export const PROBE_COUNTERS_MAP = 'probe_counters_v1';

export enum ProbeHook {
  Xdp = 1,
  TcIngress = 2,
  TcEgress = 3,
}

/** struct probe_key (bpf/include/bpfproxy/probe.h); test/foundation/abi checks it against BTF. */
export const probeKeyLayout = { size: 8, fields: { ifindex: 0, hook: 4, proto: 5, pad: 6 } } as const;
/** struct probe_value */
export const probeValueLayout = { size: 16, fields: { packets: 0, bytes: 8 } } as const;

export interface ProbeCount {
  ifindex: number;
  hook: ProbeHook;
  proto: number;
  packets: bigint;
  bytes: bigint;
}

export interface ProbeOptions {
  /** Pin the counters map here (a bpffs directory) so other processes can read it. */
  pinDir?: string;
  /** Drop packets of this L4 protocol instead of counting them (0: none). */
  dropProto?: number;
}

export class Probe {
  private constructor(
    readonly object: BpfObjectNative,
    readonly counters: BpfMapNative,
  ) {}

  static async load(opts: ProbeOptions = {}): Promise<Probe> {
    const object = new native.BpfObject(embeddedObject('probe'), 'probe', {
      rodata: { cfg_drop_proto: opts.dropProto ?? 0 },
      maps: opts.pinDir ? { [PROBE_COUNTERS_MAP]: { pinPath: join(opts.pinDir, PROBE_COUNTERS_MAP) } } : {},
    });
    try {
      await object.load();
    } catch (e) {
      object.close();
      throw e;
    }
    return new Probe(object, object.map(PROBE_COUNTERS_MAP));
  }

  /** XDP on an interface of the calling thread's namespace. */
  attachXdp(ifindex: number, mode: 'native' | 'generic' | 'auto' = 'auto'): BpfLinkNative {
    return native.BpfLink.attachXdp(this.object.program('probe_xdp'), ifindex, mode);
  }

  /** tcx (kernel ≥ 6.6) on one direction of an interface. */
  attachTcx(ifindex: number, direction: 'ingress' | 'egress'): BpfLinkNative {
    const prog = direction === 'ingress' ? 'probe_tc_ingress' : 'probe_tc_egress';
    return native.BpfLink.attachTcx(this.object.program(prog), ifindex, direction);
  }

  counts(): ProbeCount[] {
    return readProbeCounts(this.counters);
  }

  close(): void {
    this.counters.close();
    this.object.close();
  }
}

/** Sums the per-CPU slots of every entry of a probe counters map. */
export function readProbeCounts(map: BpfMapNative): ProbeCount[] {
  const { keys, values, count } = map.dump();
  const ncpu = native.numPossibleCpus();
  const slot = probeValueLayout.size; // already 8-aligned
  const out: ProbeCount[] = [];
  for (let i = 0; i < count; i++) {
    const k = keys.subarray(i * probeKeyLayout.size, (i + 1) * probeKeyLayout.size);
    let packets = 0n;
    let bytes = 0n;
    for (let c = 0; c < ncpu; c++) {
      const base = (i * ncpu + c) * slot;
      packets += values.readBigUInt64LE(base + probeValueLayout.fields.packets);
      bytes += values.readBigUInt64LE(base + probeValueLayout.fields.bytes);
    }
    out.push({
      ifindex: k.readUInt32LE(probeKeyLayout.fields.ifindex),
      hook: k.readUInt8(probeKeyLayout.fields.hook) as ProbeHook,
      proto: k.readUInt8(probeKeyLayout.fields.proto),
      packets,
      bytes,
    });
  }
  return out.sort((a, b) => a.ifindex - b.ifindex || a.hook - b.hook || a.proto - b.proto);
}
