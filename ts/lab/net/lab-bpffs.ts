/**
 * The lab's own bpffs instance: mounted once per lab, emptied and unmounted by `lab down`.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { isBpffsMountPoint } from '../../dataplane/bpffs.js';
import { run, runSync } from '../../util/exec.js';

/**
 * A lab's own bpffs instance (a fresh mount is a fresh, empty bpffs), with a directory per node under
 * it. The lab lives in the root mount namespace, so this is where its agents — which `ip netns exec`
 * starts in mount namespaces copied from it — all find their pins.
 */
export async function mountLabBpffs(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (!isBpffsMountPoint(dir)) await run('mount', ['-t', 'bpf', 'bpf', dir]);
}

/**
 * Unpins everything under a lab's bpffs — which releases links (detaching their programs) and maps
 * no process holds any more — then unmounts and removes it. Unpinning comes first because copies of
 * the mount live on in the mount namespaces of processes `ip netns exec` started, which an unmount
 * here does not reach (the root mount is private in containers).
 */
export function removeLabBpffs(dir: string): void {
  if (!existsSync(dir)) return;
  if (isBpffsMountPoint(dir)) {
    for (const entry of readdirSync(dir)) {
      // maps.debug and progs.debug are the kernel's own (bpf_preload), not pins.
      if (entry.endsWith('.debug')) continue;
      rmSync(join(dir, entry), { recursive: true, force: true });
    }
    runSync('umount', [dir]);
  }
  rmSync(dir, { recursive: true, force: true });
}
