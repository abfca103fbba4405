/** A lab per test, with a unique name, taken down after the test whether it passed or not. */
import type { ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';

import { runId } from '../../ts/lab/net/netns.js';
import { Lab, type LabOptions } from '../../ts/lab/topology.js';

export async function labFor(t: ExecutionContext, opts: Omit<LabOptions, 'name'> = {}): Promise<Lab> {
  let lab: Lab | undefined;
  t.teardown(async () => {
    await lab?.down();
  });
  lab = await Lab.up({ ...opts, name: `t-${runId()}` });
  return lab;
}

/** Lines of /proc/mounts that mention the run id (each namespace is a bind mount under /run/netns). */
export function mountsOf(id: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`bpl-${id}-`));
}

/** Running, as opposed to gone or a zombie waiting to be reaped by its parent (which may be us). */
export function isProcessRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}
