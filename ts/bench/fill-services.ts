/**
 * Synthetic ClusterIP Services written straight into a datapath's maps, for per-packet cost
 * measurements (bench scenario 3 and test/datapath/_perf.ts): no model, no reconciler, so that the
 * map contents are exactly what the measured packets need and nothing else.
 */
import { IPPROTO, SvcKind, SvcScope, backend4, svc4Key, svc4Value, u32 } from '../abi/index.js';
import type { Datapath } from '../dataplane/loader.js';

/**
 * n ClusterIP Services 198.19.x.y:80 with 2 backends each (198.18.130–131.z:8080); Service 0 is
 * `firstAddr`. With `identity`, Service 0's backends are `firstAddr:80` itself, so that a packet to
 * it leaves unchanged and can be replayed by BPF_PROG_TEST_RUN's repeat.
 */
export function fillClusterIpServices(dp: Datapath, n: number, firstAddr: string, identity: boolean): void {
  const bKeys = Buffer.alloc(2 * n * 4), bVals = Buffer.alloc(2 * n * backend4.size);
  const sKeys = Buffer.alloc(3 * n * svc4Key.size), sVals = Buffer.alloc(3 * n * svc4Value.size);
  for (let i = 0; i < n; i++) {
    const addr = i === 0 ? firstAddr : `198.19.${1 + (i >> 8)}.${i & 0xff}`;
    for (let b = 0; b < 2; b++) {
      const id = 2 * i + b + 1;
      bKeys.set(u32.encode(id), 4 * (2 * i + b));
      const be = identity && i === 0 ? { addr, port: 80 } : { addr: `198.18.${130 + b}.${(i % 250) + 1}`, port: 8080 };
      backend4.encodeInto({ ...be, proto: IPPROTO.TCP }, bVals, backend4.size * (2 * i + b));
      svc4Key.encodeInto({ addr, port: 80, proto: IPPROTO.TCP, scope: SvcScope.ALL, backend_slot: b + 1 }, sKeys, svc4Key.size * (3 * i + b));
      svc4Value.encodeInto({ backend_id: id, svc_id: i + 1 }, sVals, svc4Value.size * (3 * i + b));
    }
    svc4Key.encodeInto({ addr, port: 80, proto: IPPROTO.TCP, scope: SvcScope.ALL, backend_slot: 0 }, sKeys, svc4Key.size * (3 * i + 2));
    svc4Value.encodeInto({ svc_id: i + 1, count: 2, kind: SvcKind.CLUSTER_IP }, sVals, svc4Value.size * (3 * i + 2));
  }
  dp.maps.backends.raw.updateBatch(bKeys, bVals, 2 * n);
  dp.maps.svc4.raw.updateBatch(sKeys, sVals, 3 * n);
}
