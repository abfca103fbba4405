/**
 * Bounded time per point: a baseline tool that takes longer than the budget (iptables-nft-restore
 * with hundreds of thousands of chains runs for many minutes) is killed — by pid, only the
 * processes inside the bench's own namespace — and the point records a lower bound instead.
 */
import { run } from '../util/exec.js';

export class BudgetExceeded extends Error {
  constructor(readonly what: string, readonly budgetMs: number) {
    super(`${what} did not finish within ${(budgetMs / 1000).toFixed(0)} s (stopped)`);
    this.name = 'BudgetExceeded';
  }
}

/** Processes inside a named namespace (`ip netns pids`). */
async function pidsIn(netns: string): Promise<number[]> {
  const out = await run('ip', ['netns', 'pids', netns]).catch(() => '');
  return out.split(/\s+/).filter(Boolean).map(Number).filter((p) => p !== process.pid);
}

/**
 * Resolves with `work`, or rejects with BudgetExceeded after `budgetMs`, having killed whatever
 * runs in `netns` (the tool `work` is waiting for) and waited for `work` to settle.
 */
export async function withinBudget<T>(what: string, netns: string, budgetMs: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), budgetMs)));
  try {
    const first = await Promise.race([work, expired]);
    if (first !== 'expired') return first as T;
    for (const pid of await pidsIn(netns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await work.catch(() => {});
    throw new BudgetExceeded(what, budgetMs);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `attempt` again while it fails because another process holds the xtables lock
 * (iptables-legacy's machine-wide /run/xtables.lock: a large restore elsewhere on the machine can
 * hold it for minutes), up to `budgetMs` in all. Other errors are thrown at once.
 */
export async function retryOnXtablesLock<T>(budgetMs: number, attempt: () => Promise<T>): Promise<T> {
  const until = Date.now() + budgetMs;
  for (;;) {
    try {
      return await attempt();
    } catch (e) {
      if (!/xtables lock/i.test(String((e as Error).message)) || Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}
