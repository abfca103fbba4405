/**
 * kube-proxy's iptables mode, as the text one full sync passes to `iptables-restore --noflush
 * --counters` (pkg/proxy/iptables/proxier.go syncProxyRules, v1.29–v1.3x; reference
 * kube-proxy-behaviour.md "The iptables layout"). The jump rules from the built-in chains are not
 * part of it: kube-proxy installs them with `iptables -C`/`-I` (EnsureRule) before the restore; see
 * IPTABLES_JUMPS and apply.ts.
 *
 * Configuration reproduced: ClusterCIDR local-traffic detector (config.clusterCIDR), masquerade bit
 * 14, --iptables-localhost-nodeports=false (the model never serves NodePorts on 127/8),
 * nf_conntrack_tcp_be_liberal=0, iptables with --random-fully.
 */
import { iptablesChains as names } from './chain-names.js';
import { baselineView, type BaselineInput, type BaselineView, type Endpoint, type ServicePortView, inCidr } from './service-ports.js';

/** kube-proxy's `fmt.Sprintf("%#08x", 1<<14)`. */
export const MASQUERADE_MARK = '0x00004000';
/** Above this many endpoints kube-proxy drops the per-endpoint comments (largeClusterEndpointsThreshold). */
export const LARGE_CLUSTER_ENDPOINTS = 1000;

export interface IptablesJump {
  readonly table: 'filter' | 'nat';
  readonly chain: string;
  /** The rule after `-A <chain>`. */
  readonly rule: string;
  /** The KUBE-* chain it jumps to, created first. */
  readonly target: string;
}

const jump = (table: IptablesJump['table'], chain: string, target: string, comment: string, extra = ''): IptablesJump => ({
  table,
  chain,
  target,
  rule: `${extra}${extra === '' ? '' : ' '}-m comment --comment "${comment}" -j ${target}`,
});

// iptablesJumpChains, in kube-proxy's order (each is inserted at the top of its chain).
export const IPTABLES_JUMPS: readonly IptablesJump[] = [
  jump('filter', 'INPUT', 'KUBE-EXTERNAL-SERVICES', 'kubernetes externally-visible service portals', '-m conntrack --ctstate NEW'),
  jump('filter', 'FORWARD', 'KUBE-EXTERNAL-SERVICES', 'kubernetes externally-visible service portals', '-m conntrack --ctstate NEW'),
  jump('filter', 'INPUT', 'KUBE-NODEPORTS', 'kubernetes health check service ports'),
  jump('filter', 'FORWARD', 'KUBE-SERVICES', 'kubernetes service portals', '-m conntrack --ctstate NEW'),
  jump('filter', 'OUTPUT', 'KUBE-SERVICES', 'kubernetes service portals', '-m conntrack --ctstate NEW'),
  jump('filter', 'FORWARD', 'KUBE-FORWARD', 'kubernetes forwarding rules'),
  jump('filter', 'INPUT', 'KUBE-PROXY-FIREWALL', 'kubernetes load balancer firewall', '-m conntrack --ctstate NEW'),
  jump('filter', 'OUTPUT', 'KUBE-PROXY-FIREWALL', 'kubernetes load balancer firewall', '-m conntrack --ctstate NEW'),
  jump('filter', 'FORWARD', 'KUBE-PROXY-FIREWALL', 'kubernetes load balancer firewall', '-m conntrack --ctstate NEW'),
  jump('nat', 'OUTPUT', 'KUBE-SERVICES', 'kubernetes service portals'),
  jump('nat', 'PREROUTING', 'KUBE-SERVICES', 'kubernetes service portals'),
  jump('nat', 'POSTROUTING', 'KUBE-POSTROUTING', 'kubernetes postrouting rules'),
];

/** The full `iptables-restore` input of one full sync: *filter then *nat, as kube-proxy writes it. */
export function iptablesRestoreInput(input: BaselineInput): string {
  return writeIptables(baselineView(input));
}

class Lines {
  readonly lines: string[] = [];
  write(...parts: string[]): void {
    this.lines.push(parts.filter((p) => p !== '').join(' '));
  }
}

export function writeIptables(view: BaselineView): string {
  const filterChains = new Lines();
  const filterRules = new Lines();
  const natChains = new Lines();
  const natRules = new Lines();
  const mark = `${MASQUERADE_MARK}/${MASQUERADE_MARK}`;
  const largeClusterMode = view.totalEndpoints > LARGE_CLUSTER_ENDPOINTS;
  // appendServiceCommentLocked: per-endpoint comments vanish in large clusters (40% less text).
  const comment = (text: string) => (largeClusterMode ? '' : `-m comment --comment ${text}`);

  for (const chain of ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL']) {
    filterChains.write(`:${chain} - [0:0]`);
  }
  for (const chain of ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ']) natChains.write(`:${chain} - [0:0]`);

  // KUBE-POSTROUTING: masquerade what was marked, clearing the mark so a re-traversal does not repeat it.
  natRules.write('-A KUBE-POSTROUTING', '-m mark !', `--mark ${mark}`, '-j RETURN');
  natRules.write('-A KUBE-POSTROUTING', `-j MARK --xor-mark ${MASQUERADE_MARK}`);
  natRules.write('-A KUBE-POSTROUTING', '-m comment --comment "kubernetes service traffic requiring SNAT"', '-j MASQUERADE --random-fully');
  natRules.write('-A KUBE-MARK-MASQ', `-j MARK --or-mark ${MASQUERADE_MARK}`);

  const ifNotLocal = view.clusterCIDR === null ? null : `! -s ${view.clusterCIDR}`;
  const ifLocal = view.clusterCIDR === null ? null : `-s ${view.clusterCIDR}`;

  for (const sp of view.servicePorts) {
    const { name, protocol } = sp;
    const proto = `-m ${protocol} -p ${protocol}`;
    const svcChain = names.svc(name, protocol);
    const svlChain = names.svl(name, protocol);
    const extChain = names.ext(name, protocol);
    const fwChain = names.fw(name, protocol);
    const usesClusterChain = sp.clusterEndpoints.length > 0;
    const usesLocalChain = sp.localEndpoints.length > 0;
    const internalChain = sp.internalPolicyLocal ? svlChain : svcChain;
    const hasInternal = sp.hasEndpoints && (!sp.internalPolicyLocal || usesLocalChain);
    const externalPolicyChain = sp.externalPolicyLocal ? svlChain : svcChain;
    const hasExternal = sp.hasEndpoints && (!sp.externalPolicyLocal || usesLocalChain);
    const usesExtChain = sp.hasEndpoints && sp.externallyAccessible;
    const usesFwChain = sp.hasEndpoints && sp.loadBalancerIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;
    const lbChain = usesFwChain ? fwChain : extChain;
    // REJECT when nothing serves anywhere, DROP when a Local policy has nothing on this node.
    const internalFilter = !sp.hasEndpoints ? 'REJECT' : 'DROP';
    const internalFilterComment = !sp.hasEndpoints ? `"${name} has no endpoints"` : `"${name} has no local endpoints"`;
    const externalFilter = internalFilter;
    const externalFilterComment = internalFilterComment;

    for (const ip of sp.clusterIPs) {
      if (hasInternal) {
        natRules.write('-A KUBE-SERVICES', `-m comment --comment "${name} cluster IP"`, proto, `-d ${ip}`, `--dport ${sp.port}`, `-j ${internalChain}`);
      } else {
        filterRules.write('-A KUBE-SERVICES', `-m comment --comment ${internalFilterComment}`, proto, `-d ${ip}`, `--dport ${sp.port}`, `-j ${internalFilter}`);
      }
    }
    for (const ip of sp.externalIPs) {
      if (sp.hasEndpoints) {
        natRules.write('-A KUBE-SERVICES', `-m comment --comment "${name} external IP"`, proto, `-d ${ip}`, `--dport ${sp.port}`, `-j ${extChain}`);
      }
      if (!hasExternal) {
        filterRules.write('-A KUBE-EXTERNAL-SERVICES', `-m comment --comment ${externalFilterComment}`, proto, `-d ${ip}`, `--dport ${sp.port}`, `-j ${externalFilter}`);
      }
    }
    for (const ip of sp.loadBalancerIPs) {
      if (sp.hasEndpoints) {
        natRules.write('-A KUBE-SERVICES', `-m comment --comment "${name} loadbalancer IP"`, proto, `-d ${ip}`, `--dport ${sp.port}`, `-j ${lbChain}`);
      }
      if (usesFwChain) {
        filterRules.write('-A KUBE-PROXY-FIREWALL', `-m comment --comment "${name} traffic not accepted by ${fwChain}"`, proto, `-d ${ip}`, `--dport ${sp.port}`, '-j DROP');
      }
    }
    if (!hasExternal) {
      for (const ip of sp.loadBalancerIPs) {
        filterRules.write('-A KUBE-EXTERNAL-SERVICES', `-m comment --comment ${externalFilterComment}`, proto, `-d ${ip}`, `--dport ${sp.port}`, `-j ${externalFilter}`);
      }
    }
    if (sp.nodePort !== 0) {
      if (sp.hasEndpoints) {
        // NodePorts are not subject to loadBalancerSourceRanges in kube-proxy.
        natRules.write('-A KUBE-NODEPORTS', `-m comment --comment ${name}`, proto, `--dport ${sp.nodePort}`, `-j ${extChain}`);
      }
      if (!hasExternal) {
        filterRules.write('-A KUBE-EXTERNAL-SERVICES', `-m comment --comment ${externalFilterComment}`, '-m addrtype --dst-type LOCAL', proto, `--dport ${sp.nodePort}`, `-j ${externalFilter}`);
      }
    }
    if (sp.healthCheckNodePort !== 0) {
      filterRules.write('-A KUBE-NODEPORTS', `-m comment --comment "${name} health check node port"`, '-m tcp -p tcp', `--dport ${sp.healthCheckNodePort}`, '-j ACCEPT');
    }

    // Internal traffic: masquerade what comes from outside the cluster CIDR (or everything).
    if (hasInternal) {
      for (const ip of sp.clusterIPs) {
        const args = [`-A ${internalChain}`, `-m comment --comment "${name} cluster IP"`, proto, `-d ${ip}`, `--dport ${sp.port}`];
        if (view.masqueradeAll) natRules.write(...args, '-j KUBE-MARK-MASQ');
        else if (ifNotLocal !== null) natRules.write(...args, ifNotLocal, '-j KUBE-MARK-MASQ');
      }
    }

    if (usesExtChain) {
      natChains.write(`:${extChain} - [0:0]`);
      if (!sp.externalPolicyLocal) {
        natRules.write(`-A ${extChain}`, `-m comment --comment "masquerade traffic for ${name} external destinations"`, '-j KUBE-MARK-MASQ');
      } else {
        // ETP Local: pods and the node itself short-circuit to every endpoint, the rest keeps its source.
        if (ifLocal !== null) {
          natRules.write(`-A ${extChain}`, `-m comment --comment "pod traffic for ${name} external destinations"`, ifLocal, `-j ${svcChain}`);
        }
        natRules.write(`-A ${extChain}`, `-m comment --comment "masquerade LOCAL traffic for ${name} external destinations"`, '-m addrtype --src-type LOCAL', '-j KUBE-MARK-MASQ');
        natRules.write(`-A ${extChain}`, `-m comment --comment "route LOCAL traffic for ${name} external destinations"`, '-m addrtype --src-type LOCAL', `-j ${svcChain}`);
      }
      if (hasExternal) natRules.write(`-A ${extChain}`, `-j ${externalPolicyChain}`);
    }

    if (usesFwChain) {
      natChains.write(`:${fwChain} - [0:0]`);
      const head = [`-A ${fwChain}`, `-m comment --comment "${name} loadbalancer IP"`];
      let allowFromNode = false;
      for (const cidr of sp.loadBalancerSourceRanges) {
        natRules.write(...head, `-s ${cidr}`, `-j ${extChain}`);
        if (view.nodeIP !== null && inCidr(cidr, view.nodeIP)) allowFromNode = true;
      }
      // A node reaching its own VIP loops back with the VIP as source.
      if (allowFromNode) for (const ip of sp.loadBalancerIPs) natRules.write(...head, `-s ${ip}`, `-j ${extChain}`);
      // What falls off the end is not DNATed and meets KUBE-PROXY-FIREWALL's DROP.
      natRules.write(`-A ${fwChain}`, `-m comment --comment "other traffic to ${name} will be dropped by KUBE-PROXY-FIREWALL"`);
    }

    if (usesClusterChain) {
      natChains.write(`:${svcChain} - [0:0]`);
      writeServiceToEndpointRules(natRules, sp, svcChain, sp.clusterEndpoints, comment);
    }
    if (usesLocalChain) {
      natChains.write(`:${svlChain} - [0:0]`);
      writeServiceToEndpointRules(natRules, sp, svlChain, sp.localEndpoints, comment);
    }

    for (const ep of sp.reachableEndpoints) {
      const sepChain = names.sep(name, protocol, ep.key);
      natChains.write(`:${sepChain} - [0:0]`);
      const head = [`-A ${sepChain}`, comment(name)];
      // Hairpin: an endpoint reaching itself through the Service is masqueraded.
      natRules.write(...head, `-s ${ep.ip}`, '-j KUBE-MARK-MASQ');
      const affinity = sp.affinitySeconds === null ? '' : `-m recent --name ${sepChain} --set`;
      natRules.write(...head, affinity, proto, `-j DNAT --to-destination ${ep.key}`);
    }
  }

  // Last rule of KUBE-SERVICES: everything addressed to the node goes on to the NodePorts.
  const nodePortsComment = '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"';
  if (view.nodePortsOnAllAddresses) {
    natRules.write('-A KUBE-SERVICES', nodePortsComment, '-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8', '-j KUBE-NODEPORTS');
  } else {
    for (const ip of view.nodePortAddresses) natRules.write('-A KUBE-SERVICES', nodePortsComment, `-d ${ip}`, '-j KUBE-NODEPORTS');
  }

  // INVALID packets would otherwise reset connections (kubernetes#74839).
  filterRules.write('-A KUBE-FORWARD', '-m conntrack --ctstate INVALID', '-j DROP');
  filterRules.write('-A KUBE-FORWARD', '-m comment --comment "kubernetes forwarding rules"', `-m mark --mark ${mark}`, '-j ACCEPT');
  filterRules.write('-A KUBE-FORWARD', '-m comment --comment "kubernetes forwarding conntrack rule"', '-m conntrack --ctstate RELATED,ESTABLISHED', '-j ACCEPT');

  return [
    '*filter',
    ...filterChains.lines,
    ...filterRules.lines,
    'COMMIT',
    '*nat',
    ...natChains.lines,
    ...natRules.lines,
    'COMMIT',
    '',
  ].join('\n');
}

function writeServiceToEndpointRules(
  natRules: Lines,
  sp: ServicePortView,
  chain: string,
  endpoints: readonly Endpoint[],
  comment: (text: string) => string,
): void {
  if (sp.affinitySeconds !== null) {
    for (const ep of endpoints) {
      const sep = names.sep(sp.name, sp.protocol, ep.key);
      natRules.write(`-A ${chain}`, comment(`"${sp.name} -> ${ep.key}"`), `-m recent --name ${sep} --rcheck --seconds ${sp.affinitySeconds} --reap`, `-j ${sep}`);
    }
  }
  const n = endpoints.length;
  endpoints.forEach((ep, i) => {
    const sep = names.sep(sp.name, sp.protocol, ep.key);
    // Endpoint i of n matches with probability 1/(n-i): uniform overall; the last always matches.
    const statistic = i < n - 1 ? `-m statistic --mode random --probability ${probability(n - i)}` : '';
    natRules.write(`-A ${chain}`, comment(`"${sp.name} -> ${ep.key}"`), statistic, `-j ${sep}`);
  });
}

/**
 * kube-proxy's computeProbability: Go's `%0.10f` of the double 1/n. Go rounds the exact binary
 * value half-to-even (1/2048 → 0.0004882812) where toFixed would round half up, so round here.
 */
export function probability(n: number): string {
  let mantissa = 1 / n;
  let shift = 0n;
  while (!Number.isInteger(mantissa)) {
    mantissa *= 2; // exact for doubles
    shift += 1n;
  }
  const scaled = BigInt(mantissa) * 10n ** 10n;
  let q = scaled >> shift;
  const rest = scaled - (q << shift);
  const half = shift === 0n ? 0n : 1n << (shift - 1n);
  if (shift > 0n && (rest > half || (rest === half && q % 2n === 1n))) q += 1n;
  const digits = q.toString().padStart(11, '0');
  return `${digits.slice(0, -10)}.${digits.slice(-10)}`;
}
