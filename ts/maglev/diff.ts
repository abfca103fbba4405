export interface TableDelta {
  /** Slot indices whose value changed, ascending. */
  readonly indices: Uint32Array;
  /** New value of each changed slot, aligned with `indices`. */
  readonly values: Uint32Array;
}

/**
 * The slots to rewrite to turn `previous` into `next` (Katran-style delta writes): only changed
 * slots, so a backend change touches ~M/N slots instead of M. Without a previous table, or when
 * the size changed, every slot is written. Tables must hold stable values (backend ids), not
 * indices into per-build backend lists.
 */
export function diffTables(
  previous: ArrayLike<number> | undefined,
  next: ArrayLike<number>,
): TableDelta {
  const length = next.length;
  if (previous === undefined || previous.length !== length) {
    const indices = new Uint32Array(length);
    const values = new Uint32Array(length);
    for (let i = 0; i < length; i++) {
      indices[i] = i;
      values[i] = next[i]!;
    }
    return { indices, values };
  }
  let changed = 0;
  for (let i = 0; i < length; i++) if (previous[i] !== next[i]) changed++;
  const indices = new Uint32Array(changed);
  const values = new Uint32Array(changed);
  for (let i = 0, j = 0; i < length; i++) {
    if (previous[i] !== next[i]) {
      indices[j] = i;
      values[j] = next[i]!;
      j++;
    }
  }
  return { indices, values };
}
