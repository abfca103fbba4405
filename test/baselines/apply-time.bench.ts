// How long kube-proxy's full sync takes to load, per backend, for N Services × 10 endpoints, in a
// scratch namespace (root needed). Prints figures; the benchmark harness does the real comparison.
// Run: npx tsx test/baselines/apply-time.bench.ts [--budget-s S] [N…]   (default 1000 10000 30000;
// a tool still running after S seconds, default 600, is stopped and reported as "> S s").
import { UndoStack } from '../../ts/util/undo-stack.js';
import { Netns, runId } from '../../ts/lab/net/netns.js';
import {
  applyIptables,
  applyNftables,
  generateScale,
  iptablesRestoreInput,
  nftablesScript,
  resetBaselines,
} from '../../ts/baselines/index.js';

const args = process.argv.slice(2);
const budgetAt = args.indexOf('--budget-s');
const budgetS = budgetAt >= 0 ? Number(args.splice(budgetAt, 2)[1]) : 600;
const sizes = args.map(Number);
const cleanup = new UndoStack();
process.on('SIGINT', () => void cleanup.run().finally(() => process.exit(130)));

async function measure(load: (opts: { timeoutMs: number }) => Promise<{ ms: number }>): Promise<string> {
  try {
    return `${(await load({ timeoutMs: budgetS * 1000 })).ms.toFixed(0)} ms`;
  } catch (error) {
    if (/timed out/.test((error as Error).message)) return `> ${budgetS} s`;
    throw error;
  }
}

try {
  const ns = await Netns.create(`bpb-${runId()}`, cleanup);
  console.log('services  endpoints  restore-lines  nft-lines  iptables-legacy-restore  nft -f     iptables-nft-restore');
  for (const n of sizes.length > 0 ? sizes : [1000, 10000, 30000]) {
    const input = generateScale(n, 10);
    const iptables = iptablesRestoreInput(input);
    const nft = nftablesScript(input);
    const legacy = await measure((o) => applyIptables(ns.name, iptables, 'legacy', o));
    await resetBaselines(ns.name);
    const nftables = await measure((o) => applyNftables(ns.name, nft, o));
    await resetBaselines(ns.name);
    const iptNft = await measure((o) => applyIptables(ns.name, iptables, 'nft', o));
    await resetBaselines(ns.name);
    const lines = (text: string) => String(text.split('\n').length - 1);
    console.log(`${String(n).padEnd(9)} ${String(n * 10).padEnd(10)} ${lines(iptables).padEnd(14)} ${lines(nft).padEnd(10)} ${legacy.padEnd(24)} ${nftables.padEnd(10)} ${iptNft}`);
  }
} finally {
  await cleanup.run();
}
