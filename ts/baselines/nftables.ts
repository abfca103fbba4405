/**
 * kube-proxy's nftables mode (GA in v1.33), as the transaction its first full sync hands to
 * `nft -f` through knftables (pkg/proxy/nftables/proxier.go setupNFTables + syncProxyRules,
 * v1.31–v1.3x; reference kube-proxy-behaviour.md "nftables mode"): table `ip kube-proxy`, base
 * chains at dstnat±10 / dstnat / srcnat, dispatch through the `service-ips` and `service-nodeports`
 * verdict maps (one lookup whatever the number of Services), per-service chains choosing an
 * endpoint with `numgen random mod N vmap`, no-endpoint reject/drop through the
 * `no-endpoint-services` / `no-endpoint-nodeports` maps, LoadBalancer source ranges through the
 * `firewall-ips` map. Same configuration as the iptables baseline (ClusterCIDR detector,
 * masquerade bit 14).
 */
import { nftEndpointBase, nftServiceBase } from './chain-names.js';
import { MASQUERADE_MARK } from './iptables.js';
import { baselineView, type BaselineInput, type BaselineView, type Endpoint, type ServicePortView, inCidr } from './service-ports.js';

export const NFT_TABLE = 'kube-proxy';
const T = `ip ${NFT_TABLE}`;

export interface NftablesOptions {
  /**
   * Service CIDRs kube-proxy learnt from ServiceCIDR objects: traffic to an unallocated ClusterIP
   * in them is dropped. Empty (the default) leaves that one rule out.
   */
  serviceCIDRs?: readonly string[];
}

// knftables writes priorities as numbers (older nft rejects some names in some hooks):
// dstnat = -100, srcnat = 100.
const BASE_CHAINS: readonly { name: string; type: 'filter' | 'nat'; hook: string; priority: number }[] = [
  { name: 'filter-prerouting', type: 'filter', hook: 'prerouting', priority: -110 },
  { name: 'filter-input', type: 'filter', hook: 'input', priority: -110 },
  { name: 'filter-forward', type: 'filter', hook: 'forward', priority: -110 },
  { name: 'filter-output', type: 'filter', hook: 'output', priority: -110 },
  { name: 'filter-output-post-dnat', type: 'filter', hook: 'output', priority: -90 },
  { name: 'nat-prerouting', type: 'nat', hook: 'prerouting', priority: -100 },
  { name: 'nat-output', type: 'nat', hook: 'output', priority: -100 },
  { name: 'nat-postrouting', type: 'nat', hook: 'postrouting', priority: 100 },
];

// nftablesJumpChains: [destination, source, match].
const JUMP_CHAINS: readonly [string, string, string][] = [
  ['nodeport-endpoints-check', 'filter-input', 'ct state new'],
  ['service-endpoints-check', 'filter-input', 'ct state new'],
  ['service-endpoints-check', 'filter-forward', 'ct state new'],
  ['service-endpoints-check', 'filter-output', 'ct state new'],
  ['firewall-check', 'filter-prerouting', 'ct state new'],
  ['firewall-check', 'filter-output', 'ct state new'],
  ['services', 'nat-output', ''],
  ['services', 'nat-prerouting', ''],
  ['masquerading', 'nat-postrouting', ''],
  ['cluster-ips-check', 'filter-forward', 'ct state new'],
  ['cluster-ips-check', 'filter-output-post-dnat', 'ct state new'],
];

const ADDR3 = 'ipv4_addr . inet_proto . inet_service';

/** The `nft -f` text of kube-proxy's first full sync for this cluster. */
export function nftablesScript(input: BaselineInput, options: NftablesOptions = {}): string {
  return writeNftables(baselineView(input), options);
}

class Transaction {
  readonly lines: string[] = [];
  private readonly chains = new Set<string>();
  private readonly elements = new Map<string, Set<string>>();

  add(line: string): void {
    this.lines.push(line);
  }
  /** knftables ensureChain: add and flush once per transaction. */
  ensureChain(name: string): void {
    if (this.chains.has(name)) return;
    this.chains.add(name);
    this.add(`add chain ${T} ${name}`);
    this.add(`flush chain ${T} ${name}`);
  }
  rule(chain: string, rule: string, comment?: string): void {
    this.add(`add rule ${T} ${chain} ${rule}${comment === undefined ? '' : ` comment "${comment}"`}`);
  }
  /** nftElementStorage.ensureElem: one element per key and container. */
  element(container: string, key: string, value?: string, comment?: string): void {
    const seen = this.elements.get(container) ?? new Set<string>();
    this.elements.set(container, seen);
    if (seen.has(key)) return;
    seen.add(key);
    const note = comment === undefined ? '' : ` comment "${comment}"`;
    this.add(`add element ${T} ${container} { ${key}${note}${value === undefined ? '' : ` : ${value}`} }`);
  }
}

export function writeNftables(view: BaselineView, options: NftablesOptions = {}): string {
  const tx = new Transaction();
  setup(tx, view, options);
  const ifNotLocal = view.clusterCIDR === null ? null : `ip saddr != ${view.clusterCIDR}`;
  const ifLocal = view.clusterCIDR === null ? null : `ip saddr ${view.clusterCIDR}`;

  for (const sp of view.servicePorts) {
    const base = nftServiceBase(sp.ref.namespace, sp.ref.name, sp.protocol, sp.ref.portName);
    const clusterChain = `service-${base}`;
    const localChain = `local-${base}`;
    const externalChain = `external-${base}`;
    const fwChain = `firewall-${base}`;
    const endpointNames = (ep: Endpoint) => {
      const epBase = nftEndpointBase(sp.ref.namespace, sp.ref.name, sp.protocol, sp.ref.portName, ep.ip, ep.port);
      return { chain: `endpoint-${epBase}`, affinity: `affinity-${epBase}` };
    };

    for (const ep of sp.reachableEndpoints) tx.ensureChain(endpointNames(ep).chain);
    const usesClusterChain = sp.clusterEndpoints.length > 0;
    const usesLocalChain = sp.localEndpoints.length > 0;
    if (usesClusterChain) tx.ensureChain(clusterChain);
    if (usesLocalChain) tx.ensureChain(localChain);
    const internalChain = sp.internalPolicyLocal ? localChain : clusterChain;
    const hasInternal = sp.hasEndpoints && (!sp.internalPolicyLocal || usesLocalChain);
    const externalPolicyChain = sp.externalPolicyLocal ? localChain : clusterChain;
    const hasExternal = sp.hasEndpoints && (!sp.externalPolicyLocal || usesLocalChain);
    const usesExternalChain = sp.hasEndpoints && sp.externallyAccessible;
    if (usesExternalChain) tx.ensureChain(externalChain);
    const filterVerdict = !sp.hasEndpoints ? 'goto reject-chain' : 'drop';
    const key = (ip: string, port: number) => `${ip} . ${sp.protocol} . ${port}`;

    for (const ip of sp.clusterIPs) {
      tx.element('cluster-ips', ip);
      if (hasInternal) tx.element('service-ips', key(ip, sp.port), `goto ${internalChain}`);
      else tx.element('no-endpoint-services', key(ip, sp.port), filterVerdict, sp.name);
    }
    for (const ip of sp.externalIPs) {
      if (sp.hasEndpoints) tx.element('service-ips', key(ip, sp.port), `goto ${externalChain}`);
      if (!hasExternal) tx.element('no-endpoint-services', key(ip, sp.port), filterVerdict, sp.name);
    }
    // Unlike iptables mode, the firewall chain exists even without endpoints.
    const usesFwChain = sp.loadBalancerIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;
    if (usesFwChain) tx.ensureChain(fwChain);
    for (const ip of sp.loadBalancerIPs) {
      if (sp.hasEndpoints) tx.element('service-ips', key(ip, sp.port), `goto ${externalChain}`);
      if (usesFwChain) tx.element('firewall-ips', key(ip, sp.port), `goto ${fwChain}`);
    }
    if (!hasExternal) for (const ip of sp.loadBalancerIPs) tx.element('no-endpoint-services', key(ip, sp.port), filterVerdict, sp.name);
    if (sp.nodePort !== 0) {
      const portKey = `${sp.protocol} . ${sp.nodePort}`;
      if (sp.hasEndpoints) tx.element('service-nodeports', portKey, `goto ${externalChain}`);
      if (!hasExternal) tx.element('no-endpoint-nodeports', portKey, filterVerdict, sp.name);
    }

    if (hasInternal) {
      for (const ip of sp.clusterIPs) {
        const match = `ip daddr ${ip} ${sp.protocol} dport ${sp.port}`;
        if (view.masqueradeAll) tx.rule(internalChain, `${match} jump mark-for-masquerade`);
        else if (ifNotLocal !== null) tx.rule(internalChain, `${match} ${ifNotLocal} jump mark-for-masquerade`);
      }
    }
    if (usesExternalChain) {
      if (!sp.externalPolicyLocal) {
        tx.rule(externalChain, 'jump mark-for-masquerade');
      } else {
        if (ifLocal !== null) tx.rule(externalChain, `${ifLocal} goto ${clusterChain}`, 'short-circuit pod traffic');
        tx.rule(externalChain, 'fib saddr type local jump mark-for-masquerade', 'masquerade local traffic');
        tx.rule(externalChain, `fib saddr type local goto ${clusterChain}`, 'short-circuit local traffic');
      }
      if (hasExternal) tx.rule(externalChain, `goto ${externalPolicyChain}`);
    }
    if (usesFwChain) {
      const sources = [...sp.loadBalancerSourceRanges];
      if (view.nodeIP !== null && sources.some((cidr) => inCidr(cidr, view.nodeIP!))) sources.push(...sp.loadBalancerIPs);
      tx.rule(fwChain, `ip saddr != { ${sources.join(' , ')} } drop`);
    }
    if (sp.affinitySeconds !== null) {
      for (const ep of sp.reachableEndpoints) {
        tx.add(`add set ${T} ${endpointNames(ep).affinity} { type ipv4_addr ; flags dynamic,timeout ; timeout ${sp.affinitySeconds}s ; }`);
      }
    }
    if (usesClusterChain) writeServiceToEndpointRules(tx, sp, clusterChain, sp.clusterEndpoints, endpointNames);
    if (usesLocalChain) writeServiceToEndpointRules(tx, sp, localChain, sp.localEndpoints, endpointNames);
    for (const ep of sp.reachableEndpoints) {
      const names = endpointNames(ep);
      tx.rule(names.chain, `ip saddr ${ep.ip} jump mark-for-masquerade`);
      if (sp.affinitySeconds !== null) tx.rule(names.chain, `update @${names.affinity} { ip saddr }`);
      tx.rule(names.chain, `meta l4proto ${sp.protocol} dnat to ${ep.key}`);
    }
  }
  return tx.lines.join('\n') + '\n';
}

function writeServiceToEndpointRules(
  tx: Transaction,
  sp: ServicePortView,
  chain: string,
  endpoints: readonly Endpoint[],
  names: (ep: Endpoint) => { chain: string; affinity: string },
): void {
  if (sp.affinitySeconds !== null) {
    for (const ep of endpoints) tx.rule(chain, `ip saddr @${names(ep).affinity} goto ${names(ep).chain}`);
  }
  const elements = endpoints.map((ep, i) => `${i} : goto ${names(ep).chain}`).join(' , ');
  tx.rule(chain, `numgen random mod ${endpoints.length} vmap { ${elements} }`);
}

/** setupNFTables on a kube-proxy that has not flushed yet (a fresh start). */
function setup(tx: Transaction, view: BaselineView, options: NftablesOptions): void {
  const noLocalhost = 'ip daddr != 127.0.0.0/8';
  tx.add(`add table ${T} { comment "rules for kube-proxy" ; }`);
  // add+delete so that base chains whose properties changed are recreated.
  for (const chain of BASE_CHAINS) {
    tx.add(`add chain ${T} ${chain.name}`);
    tx.add(`delete chain ${T} ${chain.name}`);
  }
  for (const chain of BASE_CHAINS) {
    tx.add(`add chain ${T} ${chain.name} { type ${chain.type} hook ${chain.hook} priority ${chain.priority} ; }`);
    tx.add(`flush chain ${T} ${chain.name}`);
  }
  for (const [destination, source, match] of JUMP_CHAINS) {
    tx.ensureChain(destination);
    tx.rule(source, `${match}${match === '' ? '' : ' '}jump ${destination}`);
  }
  for (const chain of ['services', 'cluster-ips-check', 'masquerading', 'mark-for-masquerade']) tx.ensureChain(chain);

  tx.rule('mark-for-masquerade', `mark set mark or ${MASQUERADE_MARK}`);
  tx.rule('masquerading', `mark and ${MASQUERADE_MARK} == 0 return`);
  tx.rule('masquerading', `mark set mark xor ${MASQUERADE_MARK}`);
  tx.rule('masquerading', 'masquerade fully-random');

  tx.add(`add set ${T} cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }`);
  tx.rule('cluster-ips-check', 'ip daddr @cluster-ips reject', 'Reject traffic to invalid ports of ClusterIPs');
  const serviceCIDRs = options.serviceCIDRs ?? [];
  if (serviceCIDRs.length > 0) {
    tx.rule('cluster-ips-check', `ip daddr { ${serviceCIDRs.join(',')} } drop`, 'Drop traffic to unallocated ClusterIPs');
  }

  tx.add(`add set ${T} nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }`);
  if (view.nodePortsOnAllAddresses) {
    tx.add(`delete set ${T} nodeport-ips`);
  } else {
    tx.add(`flush set ${T} nodeport-ips`);
    for (const ip of view.nodePortAddresses) tx.element('nodeport-ips', ip);
  }

  tx.add(`add map ${T} no-endpoint-services { type ${ADDR3} : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }`);
  tx.add(`add map ${T} no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }`);
  tx.add(`add chain ${T} reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }`);
  tx.add(`flush chain ${T} reject-chain`);
  tx.rule('reject-chain', 'reject');
  tx.rule('service-endpoints-check', 'ip daddr . meta l4proto . th dport vmap @no-endpoint-services');
  tx.rule(
    'nodeport-endpoints-check',
    `${view.nodePortsOnAllAddresses ? noLocalhost : 'ip daddr @nodeport-ips'} meta l4proto . th dport vmap @no-endpoint-nodeports`,
  );

  tx.add(`add map ${T} firewall-ips { type ${ADDR3} : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }`);
  tx.ensureChain('firewall-check');
  tx.rule('firewall-check', 'ip daddr . meta l4proto . th dport vmap @firewall-ips');

  tx.add(`add map ${T} service-ips { type ${ADDR3} : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`);
  tx.add(`add map ${T} service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }`);
  tx.rule('services', 'ip daddr . meta l4proto . th dport vmap @service-ips');
  tx.rule(
    'services',
    `${view.nodePortsOnAllAddresses ? `fib daddr type local ${noLocalhost}` : 'ip daddr @nodeport-ips'} meta l4proto . th dport vmap @service-nodeports`,
  );

  tx.add(`flush set ${T} cluster-ips`);
  for (const map of ['service-ips', 'firewall-ips', 'no-endpoint-services', 'no-endpoint-nodeports', 'service-nodeports']) {
    tx.add(`flush map ${T} ${map}`);
  }
}
