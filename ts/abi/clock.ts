/**
 * The datapath's clock: bpf_ktime_get_ns(), CLOCK_MONOTONIC in ns. Every *_ns field of the maps
 * (ct4_value.expires_ns, aff4_value.last_seen_ns) counts in it; process.hrtime reads the same clock.
 */
export function monotonicNs(): bigint {
  return process.hrtime.bigint();
}
