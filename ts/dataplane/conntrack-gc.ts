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
 * Under pressure (the table nearly full: the agent passes reclaimClosed) flows that are over go
 * too before their deadline: TIME_WAIT and CLOSE, whose remaining seconds only absorb stray
 * segments. netfilter's early drop does the same when its table is full (closing flows and
 * unreplied ones give way; assured, established ones never), and the datapath already hands such
 * a flow's tuple and SNAT port to a new flow that needs them (lib/conntrack.h ct_reusable).
 *
 * An entry read as expired is looked up again just before its deletion and kept if it changed:
 * a new flow with the same tuple may have replaced it meanwhile. (A replacement between that
 * second look and the delete itself is possible, in a window of microseconds; it costs that flow
 * a fresh backend pick on its next packet, which is what an expired flow gets anyway.)
 */
import { ct4Key, ct4Value, type Ct4Key, type Ct4Value } from '../abi/layouts.js';
import { CtDir, CtFlags, CtState, IPPROTO, ctClosed } from '../abi/constants.js';
import { fieldSpan } from '../abi/codec.js';
import { monotonicNs } from '../abi/clock.js';
import type { BpfMapNative } from '../addon/index.js';

export interface ConntrackGcResult {
  /** Entries looked at. */
  scanned: number;
  /** Of them, live. */
  live: number;
  /** Entries deleted: expired ones, and closed ones under pressure (reclaimClosed). */
  deleted: number;
  /** Expired forward entries deleted: flows that are over. */
  flows: number;
  /** Reply entries with CT_F_SNAT deleted: SNAT ports given back. */
  snatReleased: number;
  /** Of the deleted entries, those of closed flows (TIME_WAIT, CLOSE) not yet expired: reclaimClosed only. */
  closed: number;
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

const CT4_KEY_PROTO = fieldSpan(ct4Key, 'proto').offset;

/** A TCP flow that is over (TIME_WAIT, CLOSE), and no CPU taking it over. */
function closed(proto: number, state: bigint): boolean {
  return proto === IPPROTO.TCP && !(Number(state) & CtState.CLAIMED) && ctClosed(state);
}

export interface ConntrackGcOptions {
  now?: bigint;
  /** Delete closed flows (TIME_WAIT, CLOSE) before their deadline: the table is under pressure. */
  reclaimClosed?: boolean;
}

export function collectConntrack(map: BpfMapNative, opts: ConntrackGcOptions = {}): ConntrackGcResult {
  const now = opts.now ?? monotonicNs();
  const started = performance.now();
  const { keys, values, count } = map.dump();
  const result: ConntrackGcResult = { scanned: count, live: 0, deleted: 0, flows: 0, snatReleased: 0, closed: 0, raced: 0, durationMs: 0 };
  for (let i = 0; i < count; i++) {
    const keyBuf = keys.subarray(i * ct4Key.size, (i + 1) * ct4Key.size);
    const value = ct4Value.decode(values, i * ct4Value.size);
    const early = value.expires_ns >= now && opts.reclaimClosed === true && closed(keyBuf[CT4_KEY_PROTO]!, value.state);
    if (value.expires_ns >= now && !early) {
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
    if (early) result.closed++;
    const key = ct4Key.decode(keyBuf);
    if (key.dir === CtDir.FWD) result.flows++;
    else if (value.flags & CtFlags.SNAT) result.snatReleased++;
  }
  result.durationMs = performance.now() - started;
  return result;
}
