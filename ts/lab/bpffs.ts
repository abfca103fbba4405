/**
 * bpffs: where maps, programs and links are pinned. The agent pins under a directory of the
 * host's /sys/fs/bpf; tests and the lab mount a private bpffs instance of their own so that
 * their pins never mix with anything else and vanish with the mount.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';

import { run, runSync } from '../util/exec.js';
import type { Cleanup } from './cleanup.js';

const BPF_FS_MAGIC = 'bpf';

/** Is `dir` (or a parent) on a bpffs mount? */
export function isOnBpffs(dir: string): boolean {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '));
  let best = '';
  let type = '';
  for (const [, mountPoint, fsType] of mounts) {
    if (!mountPoint || !fsType) continue;
    if ((dir === mountPoint || dir.startsWith(mountPoint.endsWith('/') ? mountPoint : mountPoint + '/')) && mountPoint.length > best.length) {
      best = mountPoint;
      type = fsType;
    }
  }
  return type === BPF_FS_MAGIC;
}

/** Mounts a fresh bpffs at `dir` (created if needed); `cleanup` unmounts and removes it. */
export async function mountPrivateBpffs(dir: string, cleanup: Cleanup): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await run('mount', ['-t', 'bpf', 'bpf', dir]);
  cleanup.add(`bpffs ${dir}`, () => {
    runSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Makes sure `dir` is on a bpffs, mounting /sys/fs/bpf if the host has not (as Cilium does). */
export async function ensureBpffs(dir: string): Promise<void> {
  if (!isOnBpffs(dir)) {
    if (dir !== '/sys/fs/bpf' && !dir.startsWith('/sys/fs/bpf/')) {
      throw new Error(`${dir} is not on a bpffs mount: mount one there or choose a directory under /sys/fs/bpf`);
    }
    await run('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  }
  mkdirSync(dir, { recursive: true });
}
