import { buildMaglevTable, resolveSlots } from '../maglev/table.js';
import type { DesiredBackend, DesiredService } from './types.js';

/**
 * The Maglev table (slot → backend id) of a frontend group, or undefined when the group does not
 * use Maglev or has no backend. Kept out of computeDesiredState so the syncer can build tables
 * only for groups whose backend set changed: at M = 16381 a build costs ~1 ms.
 */
export function maglevTableFor(
  service: DesiredService,
  backendsById: Pick<ReadonlyMap<number, DesiredBackend>, 'get'>,
  size: number,
): Uint32Array | undefined {
  if (!service.maglev || service.backends.length === 0) return undefined;
  const idByName = new Map<string, number>();
  for (const id of service.backends) {
    const backend = backendsById.get(id);
    if (backend === undefined) throw new RangeError(`service ${service.key} names unknown backend id ${id}`);
    idByName.set(backend.key, id);
  }
  const table = buildMaglevTable([...idByName.keys()], size);
  return resolveSlots(table, (name) => idByName.get(name)!);
}
