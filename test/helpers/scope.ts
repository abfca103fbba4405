/** Per-test resources (namespaces, bpffs mounts, pins) removed after the test, pass or fail. */
import type { ExecutionContext } from 'ava';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { mountPrivateBpffs } from '../../ts/dataplane/bpffs.js';
import { UndoStack } from '../../ts/util/undo-stack.js';
import { Netns, runId } from '../../ts/lab/net/netns.js';

export interface Scope {
  id: string;
  cleanup: UndoStack;
  /** A namespace named bpt-<id>-<suffix>, deleted after the test. */
  netns(suffix: string): Promise<Netns>;
  /** A private bpffs mount, unmounted after the test. */
  bpffs(): Promise<string>;
}

export function scope(t: ExecutionContext): Scope {
  const id = runId();
  const cleanup = new UndoStack();
  t.teardown(() => cleanup.run());
  return {
    id,
    cleanup,
    netns: (suffix) => Netns.create(`bpt-${id}-${suffix}`, cleanup),
    bpffs: () => mountPrivateBpffs(join(tmpdir(), `bpfproxy-test-${id}`), cleanup),
  };
}
