/**
 * bpffs: where maps, programs and links are pinned. The agent pins under a directory of the
 * host's /sys/fs/bpf; tests and the lab mount a private bpffs instance of their own so that
 * their pins never mix with anything else and vanish with the mount.
 */
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';

import { run, runSync } from '../util/exec.js';
import type { UndoStack } from '../util/undo-stack.js';

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
export async function mountPrivateBpffs(dir: string, cleanup: UndoStack): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await run('mount', ['-t', 'bpf', 'bpf', dir]);
  cleanup.add(`bpffs ${dir}`, () => {
    runSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/**
 * Makes sure `dir` is on a bpffs, mounting /sys/fs/bpf if the host has not (as Cilium does), and
 * that nobody but us can touch the pins in it: a fresh bpffs root is mode 1777, so the mount asks
 * for 0700, `dir` is made 0700, and a `dir` someone else owns, or anyone else may write to, is
 * refused (whoever can write it can unlink and rename the datapath's pins).
 */
export async function ensureBpffs(dir: string): Promise<void> {
  if (!isOnBpffs(dir)) {
    if (dir !== '/sys/fs/bpf' && !dir.startsWith('/sys/fs/bpf/')) {
      throw new Error(`${dir} is not on a bpffs mount: mount one there or choose a directory under /sys/fs/bpf`);
    }
    await run('mount', ['-t', 'bpf', '-o', 'mode=0700', 'bpf', '/sys/fs/bpf']);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  checkPinDirectory(dir);
}

/** Refuses a pin directory another user owns or that others may write to. */
export function checkPinDirectory(dir: string): void {
  const st = statSync(dir);
  const uid = process.getuid?.() ?? 0;
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (st.uid !== uid) throw new Error(`${dir} is owned by uid ${st.uid}, not by this agent (uid ${uid}): whoever owns it can unlink and rename the datapath's pins; remove it, or chown it to ${uid}`);
  if (st.mode & 0o022) throw new Error(`${dir} is writable by ${st.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)}): anyone who may write it can unlink and rename the datapath's pins; chmod 700 it`);
}

/** Is `dir` itself a bpffs mount point (not merely below one)? */
export function isBpffsMountPoint(dir: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .some(([, mountPoint, fsType]) => mountPoint === dir && fsType === BPF_FS_MAGIC);
}
