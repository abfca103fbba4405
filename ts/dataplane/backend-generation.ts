/**
 * The backend generation (begen_v1, bpf/include/bpfproxy/service.h): a conntrack entry remembers
 * the generation at which its backend was last known to exist, and an established packet skips
 * the be_v1 lookup while the generation has not moved. So the control plane must bump it AFTER
 * every batch of be_v1 deletions or overwrites (an id given to another endpoint), never before:
 * until the bump, established flows keep using what was deleted. Additions need no bump.
 *
 * One writer: the agent (read, increment, write is not atomic against another writer).
 */
import type { DatapathMaps } from './typed-map.js';

type WithGeneration = { readonly maps: Pick<DatapathMaps, 'begen'> };

/** The current backend generation. */
export function backendGeneration(dp: WithGeneration): number {
  return dp.maps.begen.get(0)?.generation ?? 0;
}

/** Increments the backend generation (wrapping at 2^32: only a change matters); returns the new one. */
export function bumpBackendGeneration(dp: WithGeneration): number {
  const next = (backendGeneration(dp) + 1) >>> 0;
  dp.maps.begen.set(0, { generation: next });
  return next;
}
