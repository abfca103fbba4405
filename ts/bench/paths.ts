/**
 * Configuring one path under test in a bench topology's node namespace: nothing (direct), kube-proxy's
 * iptables layout through either backend of `iptables`, its nftables layout, or bpfproxy (tc only,
 * or with XDP on the uplink). Each returns how long programming took and how to undo it.
 */
import { applyIptables, applyNftables, iptablesRestoreInput, nftablesScript, type BaselineInput } from '../baselines/index.js';
import { CLUSTER_CIDR } from '../lab/net/address-plan.js';
import { BpfproxyPath } from './bpfproxy.js';
import { retryOnXtablesLock, withinBudget } from './deadline.js';
import type { PathName } from './results.js';
import type { BenchTopology } from './topology.js';

export interface AppliedPath {
  programMs: number;
  close(): Promise<void>;
}

export async function applyPath(path: PathName, topo: BenchTopology, input: BaselineInput, budgetMs: number): Promise<AppliedPath> {
  const netns = topo.node.netns;
  switch (path) {
    case 'direct':
      return { programMs: 0, close: async () => {} };
    case 'iptables-legacy':
    case 'iptables-nft': {
      const variant = path === 'iptables-legacy' ? 'legacy' : 'nft';
      const text = iptablesRestoreInput(input);
      const { ms } = await retryOnXtablesLock(budgetMs, () => withinBudget(`iptables-${variant}-restore`, netns, budgetMs, applyIptables(netns, text, variant)));
      // The topology is thrown away after the path: its namespace takes the rules with it.
      return { programMs: ms, close: async () => {} };
    }
    case 'nftables': {
      const { ms } = await withinBudget('nft -f', netns, budgetMs, applyNftables(netns, nftablesScript(input)));
      return { programMs: ms, close: async () => {} };
    }
    case 'bpfproxy':
    case 'bpfproxy-tc':
    case 'bpfproxy-xdp': {
      const bp = await BpfproxyPath.load({
        input,
        nodeIp: topo.node.address,
        clusterCidr: CLUSTER_CIDR,
        // .1 of the node's pod CIDR is never given to a pod (docs/lab.md).
        hairpinIp: topo.node.podCidr.replace(/\.0\/\d+$/, '.1'),
      });
      try {
        const timing = bp.initial;
        if (timing.failures.length > 0) {
          const f = timing.failures[0]!;
          throw new Error(`bpfproxy could not write ${timing.failures.length} entries (first: ${f.map} ${f.code} ${f.message})`);
        }
        const pods = [topo.clientPod, ...topo.backendPods].map((p) => p.hostInterface);
        bp.attach(topo.netnsPath(topo.node.name), pods, path === 'bpfproxy-xdp' ? 'generic' : 'off');
        return { programMs: timing.ms, close: () => bp.close() };
      } catch (e) {
        await bp.close().catch(() => {});
        throw e;
      }
    }
  }
}
