/**
 * Scenario 4: programming time. A full load of S Services × k endpoints into an empty node, then
 * one change at that scale (one endpoint of one Service goes away, as when a Deployment scales
 * down by one):
 *  - iptables-restore, legacy and nft backends: the full sync kube-proxy sends at start; the change
 *    as kube-proxy's partial sync (incremental.ts);
 *  - nft -f: the first full transaction; the change as an incremental transaction;
 *  - bpfproxy: the full load is the agent's first sync (model built, every entry computed and
 *    batch-written into real maps sized for the load); the change is its partial sync (the
 *    incremental model updates the one Service, only its entries are computed and written).
 * Only the tool's own run is timed for the baselines (kube-proxy's Go code generating the text is
 * not), so the comparison favours them. Each tool gets a fresh namespace.
 */
import type { BaselineInput } from '../../baselines/index.js';
import { applyIptables, applyNftables, generateScale, iptablesRestoreInput, nftablesScript } from '../../baselines/index.js';
import { UndoStack } from '../../util/undo-stack.js';
import { Netns, runId } from '../../lab/net/netns.js';
import { CLUSTER_CIDR } from '../../lab/net/address-plan.js';
import { BpfproxyPath } from '../bpfproxy.js';
import { BudgetExceeded, retryOnXtablesLock, withinBudget } from '../deadline.js';
import { whileRunning } from '../interrupt.js';
import { iptablesPartialRestore, nftablesIncremental } from '../incremental.js';
import type { Progress } from '../progress.js';
import type { Profile } from '../profile.js';
import type { ProgrammingPoint } from '../results.js';

type Tool = ProgrammingPoint['tool'];
const TOOLS: Tool[] = ['iptables-legacy', 'iptables-nft', 'nftables', 'bpfproxy'];

/** The same cluster with the last endpoint of the middle Service removed. */
export function withOneChange(input: BaselineInput): BaselineInput {
  const services = input.services.length;
  const name = input.services[services >> 1]!.metadata!.name!;
  let done = false;
  const endpointSlices = input.endpointSlices.map((s) => {
    if (done || s.metadata?.labels?.['kubernetes.io/service-name'] !== name || s.endpoints.length < 2) return s;
    done = true;
    return { ...s, endpoints: s.endpoints.slice(0, -1) };
  });
  if (!done) throw new Error(`no EndpointSlice of ${name} with two endpoints to change`);
  return { ...input, endpointSlices };
}

const lines = (text: string) => text.split('\n').length - 1;

async function measureTool(tool: Tool, input: BaselineInput, changed: BaselineInput, budgetMs: number): Promise<Omit<ProgrammingPoint, 'services' | 'endpointsPerService' | 'tool'>> {
  if (tool === 'bpfproxy') {
    const bp = await BpfproxyPath.load({ input, nodeIp: input.node.addresses[0]!, clusterCidr: CLUSTER_CIDR, hairpinIp: '198.18.129.1' });
    try {
      const full = bp.initial;
      const change = bp.program(changed);
      const failures = [...full.failures, ...change.failures];
      if (failures.length > 0) throw new Error(`bpfproxy could not write ${failures.length} entries (first: ${failures[0]!.map} ${failures[0]!.code})`);
      return {
        fullMs: full.ms,
        changeMs: change.ms,
        changeKind: 'one partial sync: the incremental model updates the changed Service, entries of what changed are written',
        detail: {
          fullModelMs: full.modelMs, fullEntriesMs: full.entriesMs, fullWriteMs: full.writeMs, fullEntriesWritten: full.written,
          changeModelMs: change.modelMs, changeEntriesMs: change.entriesMs, changeWriteMs: change.writeMs, changeEntriesWritten: change.written + change.deleted,
        },
      };
    } finally {
      await bp.close();
    }
  }
  const cleanup = new UndoStack();
  cleanup.add('interrupt registration', whileRunning('scratch namespace', () => cleanup.run()));
  try {
    const ns = await Netns.create(`bpb-${runId()}-prog`, cleanup);
    if (tool === 'nftables') {
      const before = nftablesScript(input);
      const delta = nftablesIncremental(before, nftablesScript(changed));
      const full = await withinBudget('nft -f (full)', ns.name, budgetMs, applyNftables(ns.name, before));
      const change = await withinBudget('nft -f (change)', ns.name, budgetMs, applyNftables(ns.name, delta));
      return { fullMs: full.ms, changeMs: change.ms, changeKind: 'nft -f of an incremental transaction', lines: lines(before), detail: { changeLines: lines(delta) } };
    }
    const variant = tool === 'iptables-legacy' ? 'legacy' : 'nft';
    const before = iptablesRestoreInput(input);
    const delta = iptablesPartialRestore(before, iptablesRestoreInput(changed));
    // A restore that failed on the lock changed nothing (each table commits as a whole): retry it.
    const full = await retryOnXtablesLock(budgetMs, () => withinBudget(`iptables-${variant}-restore (full)`, ns.name, budgetMs, applyIptables(ns.name, before, variant)));
    const change = await retryOnXtablesLock(budgetMs, () => withinBudget(`iptables-${variant}-restore (change)`, ns.name, budgetMs, applyIptables(ns.name, delta, variant)));
    return { fullMs: full.ms, changeMs: change.ms, changeKind: 'iptables-restore of a partial sync', lines: lines(before), detail: { changeLines: lines(delta) } };
  } finally {
    await cleanup.run();
  }
}

export async function programmingScenario(p: Profile, progress: Progress): Promise<ProgrammingPoint[]> {
  const points: ProgrammingPoint[] = [];
  progress.begin('4 programming', p.programmingServices.length * TOOLS.length);
  for (const services of p.programmingServices) {
    const input = generateScale(services, p.programmingEndpoints);
    const changed = withOneChange(input);
    for (const tool of TOOLS) {
      progress.step(`${services} × ${p.programmingEndpoints} ${tool}`);
      const base = { tool, services, endpointsPerService: p.programmingEndpoints };
      try {
        const r = await measureTool(tool, input, changed, p.applyBudgetMs);
        points.push({ ...base, ...r });
        progress.stepDone(`full ${r.fullMs.toFixed(1)} ms, one change ${r.changeMs.toFixed(2)} ms`);
      } catch (e) {
        const error = (e as Error).message;
        const bound = e instanceof BudgetExceeded && e.what.endsWith('(full)') ? { fullAtLeastMs: e.budgetMs } : {};
        points.push({ ...base, fullMs: NaN, changeMs: NaN, changeKind: '', error, ...bound });
        progress.stepDone(`FAILED: ${error.slice(0, 300)}`);
      }
    }
  }
  return points;
}
