/**
 * One agent per node. Two agents on one bpffs directory would both load, adopt and re-attach the
 * live datapath and write the same maps. So the agent takes an exclusive flock on its bpffs
 * directory before it loads anything, and holds it for its life: the kernel drops it when the
 * process ends, however it ends, so a crashed agent never blocks its successor. A second agent
 * fails at once, naming the holder (its pid, from /proc/locks).
 */
import { readFileSync, statSync } from 'node:fs';

import { native } from '../addon/index.js';

export class AgentRunningError extends Error {
  constructor(
    message: string,
    readonly holderPid: number | undefined,
  ) {
    super(message);
    this.name = 'AgentRunningError';
  }
}

export class NodeLock {
  private constructor(
    readonly dir: string,
    private fd: number | undefined,
  ) {}

  /** Takes the lock on `dir`, or throws AgentRunningError naming the agent that holds it. */
  static acquire(dir: string): NodeLock {
    try {
      return new NodeLock(dir, native.flockExclusive(dir));
    } catch (e) {
      if ((e as { code?: string }).code !== 'EWOULDBLOCK' && (e as { code?: string }).code !== 'EAGAIN') throw e;
      const pid = lockHolder(dir);
      throw new AgentRunningError(
        `another bpfproxy agent${pid ? ` (pid ${pid})` : ''} already runs on ${dir}: one agent per node; stop it first${pid ? ` (kill ${pid})` : ''}`,
        pid,
      );
    }
  }

  release(): void {
    if (this.fd === undefined) return;
    native.flockRelease(this.fd);
    this.fd = undefined;
  }
}

/** The pid holding a FLOCK on `path`, from /proc/locks ("1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<ino> 0 EOF"). */
export function lockHolder(path: string): number | undefined {
  const st = statSync(path, { bigint: true });
  const major = Number(((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn));
  const minor = Number((st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn));
  const id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === 'FLOCK' && f[5] === id) return Number(f[4]);
  }
  return undefined;
}
