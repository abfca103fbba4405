/**
 * What to undo if the run is interrupted (Ctrl-C, SIGTERM) in the middle of a point: the labs,
 * bpffs mounts and scratch namespaces in use right now. Each owner registers its cleanup while it
 * lives and unregisters it when it has cleaned up by itself; the CLI's signal handler runs what is
 * left, newest first.
 */
const pending = new Map<number, { what: string; undo: () => Promise<void> | void }>();
let next = 0;

export function whileRunning(what: string, undo: () => Promise<void> | void): () => void {
  const id = next++;
  pending.set(id, { what, undo });
  return () => pending.delete(id);
}

export async function undoAll(log: (line: string) => void): Promise<void> {
  for (const [id, { what, undo }] of [...pending].reverse()) {
    pending.delete(id);
    try {
      await undo();
      log(`removed ${what}`);
    } catch (e) {
      log(`could not remove ${what}: ${(e as Error).message}`);
    }
  }
}
