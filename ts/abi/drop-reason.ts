/**
 * enum drop_reason of bpf/include/bpfproxy/drop_reason.h: why a packet was not delivered as sent.
 * Numbers are stable (never renumbered); the drift test fails when this and the header differ.
 */
export enum DropReason {
  UNKNOWN = 0,
  MALFORMED = 1,
  NO_ENDPOINTS = 2,
  NO_LOCAL_ENDPOINTS = 3,
  SOURCE_RANGE = 4,
  CT_INVALID = 5,
  SNAT_EXHAUSTED = 6,
  CT_CREATE = 7,
  BACKEND_MISSING = 8,
  /** A later IPv4 fragment of a service flow whose first fragment made no flow (dropped or rejected). Was: every fragment of a service flow (before fragments were supported). */
  FRAGMENT = 9,
  REJECT_FAILED = 10,
  NO_ELIGIBLE_BACKEND = 11,
  /** A translated packet with no TTL left to forward: answered with ICMP time exceeded, about the packet as sent. */
  TTL_EXCEEDED = 12,
  /** A translated packet too big for the next hop: answered with ICMP fragmentation needed (DF set), else dropped. */
  MTU_EXCEEDED = 13,
  /** A new flow while conntrack (ct4_v4) is full: refused, its established flows kept (netfilter's "table full, dropping packet"). */
  CT_FULL = 14,
}

/** drops_v1's size: room for reasons to come without a new map (DROPS_MAP_SIZE). */
export const DROP_REASON_SLOTS = 64;

/** A drops_v1 slot's name: its DropReason, else REASON_<n> (a slot a newer datapath counts). */
export function dropReasonName(reason: number): string {
  return DropReason[reason] ?? `REASON_${reason}`;
}

/** Every DropReason, by number and name, in number order. */
export const DROP_REASONS: readonly { value: number; name: string }[] = Object.entries(DropReason)
  .filter(([, v]) => typeof v === 'number')
  .map(([name, value]) => ({ name, value: value as number }));
