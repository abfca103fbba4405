/**
 * CPU pinning for the traffic scenarios. The load generator runs alone on one core; everything the
 * path under test does in the kernel runs on the other: RPS (rps_cpus on every receive queue of the
 * bench's namespaces) moves each hop's softirq there — veths hand packets over with netif_rx, which
 * honours RPS — and the sink is pinned there too. So the generator's core is busy only with the
 * generator's system calls, and the proxy's per-packet and per-connection work competes for the
 * other core, where its cost shows as a lower rate.
 *
 * On a 2-core VM this is all there is: the sink shares the datapath core (the same for every path
 * measured, so ratios hold, but absolute rates are lower than with a core per side), and anything
 * else running on the machine adds noise to both.
 */
import { availableParallelism } from 'node:os';

import { Netns } from '../lab/net/netns.js';

export interface CpuPlan {
  cpus: number;
  /** Core of the load generator. */
  generator: number;
  /** Core of the datapath's softirq work and of the sink. */
  datapath: number;
  /** Said in the report when pinning cannot separate the two. */
  limits: string[];
}

export function cpuPlan(): CpuPlan {
  const cpus = availableParallelism();
  if (cpus < 2) {
    return { cpus, generator: 0, datapath: 0, limits: ['one CPU: the load generator and the datapath share it; rates are a lower bound'] };
  }
  const limits =
    cpus === 2
      ? ['2 CPUs: the sink shares the datapath core; other processes on the machine share both cores']
      : [];
  return { cpus, generator: 0, datapath: 1, limits };
}

/** `taskset -c CPU CMD ARGS…` as a command and its arguments. */
export function pinned(cpu: number, cmd: string, args: string[]): [string, string[]] {
  return ['taskset', ['-c', String(cpu), cmd, ...args]];
}

/** Steers every receive queue of every interface in the namespace to `cpu` (RPS). */
export async function steerSoftirq(ns: Netns, cpu: number): Promise<void> {
  const mask = (1n << BigInt(cpu)).toString(16);
  // `ip netns exec` mounts the namespace's own /sys, so this sees only its interfaces.
  await ns.exec('sh', ['-c', `for q in /sys/class/net/*/queues/rx-*/rps_cpus; do [ -w "$q" ] && echo ${mask} > "$q"; done; true`]);
}
