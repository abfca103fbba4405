/**
 * Garbage collection of ct4_v4 (layout: bpf/include/bpfproxy/conntrack.h). The datapath treats an
 * entry whose deadline has passed as absent but never deletes it: that is user space's job. ct4_v4
 * is a plain hash that refuses new flows when full (bpf/lib/conntrack.h), so this is what makes
 * room: without it, dead flows would fill the table for good.
 *
 * A flow is two entries, forward and reply, each with its own deadline (each direction refreshes
 * its own). Every expired entry is deleted; a flow whose two entries have both expired goes
 * entirely, and its reply entry is also its SNAT port reservation (CT_F_SNAT), so deleting it
 * frees the port. A live entry is never deleted, even if its partner has expired.
 *
 * Deadlines are CLOCK_MONOTONIC (the datapath reads the coarse clock once per tick, so they may lag a
 * tick); process.hrtime reads the same clock, so an entry may go a few ms early, which is harmless.
 * An entry read as expired is looked up again just before its deletion and kept if it changed:
 * a new flow with the same tuple may have replaced it meanwhile. (A replacement between that
 * second look and the delete itself is possible, in a window of microseconds; it costs that flow
 * a fresh backend pick on its next packet, which is what an expired flow gets anyway.)
 */
import { ct4Key, ct4Value, type Ct4Key, type Ct4Value } from '../abi/layouts.js';
import { CtDir, CtFlags } from '../abi/constants.js';
import { monotonicNs } from '../abi/clock.js';
import type { BpfMapNative } from '../addon/index.js';

export interface ConntrackGcResult {
  /** Entries looked at. */
  scanned: number;
  /** Of them, live. */
  live: number;
  /** Expired entries deleted. */
  deleted: number;
  /** Expired forward entries deleted: flows that are over. */
  flows: number;
  /** Reply entries with CT_F_SNAT deleted: SNAT ports given back. */
  snatReleased: number;
  /** Expired entries found changed on the second look, and kept. */
  raced: number;
  durationMs: number;
}

/** The key of the other direction of the flow an entry belongs to. */
export function partnerKey(key: Ct4Key, value: Ct4Value): Ct4Key {
  // FWD (client → frontend) holds nat = (snat-or-client → backend), and its reply arrives as
  // backend → snat-or-client; REPLY holds nat = (frontend → client), the forward tuple reversed.
  // Either way the partner is the entry's translation, reversed.
  return {
    saddr: value.nat_daddr,
    daddr: value.nat_saddr,
    sport: value.nat_dport,
    dport: value.nat_sport,
    proto: key.proto,
    dir: key.dir === CtDir.FWD ? CtDir.REPLY : CtDir.FWD,
    pad: 0,
  };
}

export function collectConntrack(map: BpfMapNative, now: bigint = monotonicNs()): ConntrackGcResult {
  const started = performance.now();
  const { keys, values, count } = map.dump();
  const result: ConntrackGcResult = { scanned: count, live: 0, deleted: 0, flows: 0, snatReleased: 0, raced: 0, durationMs: 0 };
  for (let i = 0; i < count; i++) {
    const keyBuf = keys.subarray(i * ct4Key.size, (i + 1) * ct4Key.size);
    const value = ct4Value.decode(values, i * ct4Value.size);
    if (value.expires_ns >= now) {
      result.live++;
      continue;
    }
    const again = map.lookup(keyBuf);
    if (!again) continue; // evicted or deleted by someone else
    if (!again.equals(values.subarray(i * ct4Value.size, (i + 1) * ct4Value.size))) {
      result.raced++;
      continue;
    }
    if (!map.delete(keyBuf)) continue;
    result.deleted++;
    const key = ct4Key.decode(keyBuf);
    if (key.dir === CtDir.FWD) result.flows++;
    else if (value.flags & CtFlags.SNAT) result.snatReleased++;
  }
  result.durationMs = performance.now() - started;
  return result;
}
