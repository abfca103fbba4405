// The generated texts are accepted by the real tools and kernel: `iptables-restore --test` (legacy
// and nft backends) and `nft -c -f` in a scratch namespace; then loaded for real, and removed
// again by resetBaselines without leaving anything behind.
import { privileged } from '../helpers/env.js';
import { scope } from '../helpers/scope.js';

import {
  IPTABLES_VARIANTS,
  applyIptables,
  applyNftables,
  checkIptables,
  checkNftables,
  generateScale,
  iptablesRestoreInput,
  nftablesScript,
  resetBaselines,
  systemTool,
} from '../../ts/baselines/index.js';
import { run } from '../../ts/util/exec.js';
import { CASES } from './_cases.js';

const inputs = { ...CASES, 'synthetic-200x3': generateScale(200, 3) };

privileged('every case passes iptables-restore --test (legacy and nft) and nft -c -f', async (t) => {
  const ns = await scope(t).netns('bsyn');
  for (const [name, input] of Object.entries(inputs)) {
    for (const variant of IPTABLES_VARIANTS) {
      await t.notThrowsAsync(checkIptables(ns.name, iptablesRestoreInput(input), variant), `${name} iptables-${variant}`);
    }
    await t.notThrowsAsync(checkNftables(ns.name, nftablesScript(input, { serviceCIDRs: ['198.19.0.0/17'] })), `${name} nft`);
  }
});

privileged('a broken rule is refused by the checks (they can fail)', async (t) => {
  const ns = await scope(t).netns('bbad');
  const text = iptablesRestoreInput(CASES['one-endpoint']!).replace('--probability', '--probabilityy').replace('-j DNAT', '-j DNATT');
  await t.throwsAsync(checkIptables(ns.name, text, 'legacy'), { message: /iptables/ });
  await t.throwsAsync(checkNftables(ns.name, nftablesScript(CASES['one-endpoint']!).replace('numgen random', 'numgen randm')), { message: /nftables/ });
});

async function tool(ns: string, name: string, ...args: string[]): Promise<string> {
  return run(systemTool('ip'), ['netns', 'exec', ns, systemTool(name), ...args]);
}

privileged('apply installs kube-proxy’s rules and jumps; reset removes them all', async (t) => {
  const ns = (await scope(t).netns('bapp')).name;
  const input = CASES['loadbalancer-source-ranges']!;
  for (const variant of IPTABLES_VARIANTS) {
    const { ms } = await applyIptables(ns, iptablesRestoreInput(input), variant);
    t.true(ms > 0);
    // Applying twice (a resync) keeps one jump per built-in chain.
    await applyIptables(ns, iptablesRestoreInput(input), variant);
    const nat = await tool(ns, `iptables-${variant}-save`, '-t', 'nat');
    t.is(nat.split('\n').filter((l) => l === '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES').length, 1, variant);
    t.true(nat.includes('-A KUBE-SERVICES -d 198.19.255.10/32 -p tcp -m comment --comment "default/hostnames loadbalancer IP" -m tcp --dport 80 -j KUBE-FW-'), variant);
    const filter = await tool(ns, `iptables-${variant}-save`, '-t', 'filter');
    t.true(filter.includes('-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'), variant);
    await resetBaselines(ns);
    const after = await tool(ns, `iptables-${variant}-save`);
    t.false(after.includes('KUBE-'), `${variant} after reset:\n${after}`);
  }
  await applyNftables(ns, nftablesScript(input));
  t.regex(await tool(ns, 'nft', 'list', 'map', 'ip', 'kube-proxy', 'firewall-ips'), /198\.19\.255\.10 \. tcp \. 80 : goto firewall-/);
  await resetBaselines(ns);
  // Nothing of ours is left: no kube-proxy table, and iptables-nft's emptied tables are gone too.
  t.is((await tool(ns, 'nft', 'list', 'tables')).trim(), '');
});
