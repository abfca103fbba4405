// Golden files for the seed-style examples (_cases.ts), plus the lines each one must contain
// according to kube-proxy's layout (pkg/proxy/{iptables,nftables}/proxier.go; shared reference
// kube-proxy-behaviour.md). The explicit lines are the review: a golden that drifted from
// kube-proxy fails here even if someone regenerates it.
// Regenerate after a deliberate change: UPDATE_GOLDEN=1 npx ava test/baselines/golden.test.ts
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';

import { iptablesChains, iptablesRestoreInput, nftablesScript } from '../../ts/baselines/index.js';
import { CASES, CLUSTER_IP, LB_IP } from './_cases.js';

const golden = (file: string) => new URL(`./golden/${file}`, import.meta.url);

for (const [name, input] of Object.entries(CASES)) {
  for (const [kind, text] of [
    ['iptables', iptablesRestoreInput(input)],
    ['nft', nftablesScript(input)],
  ] as const) {
    test(`golden: ${name}.${kind}`, (t) => {
      const file = golden(`${name}.${kind}`);
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, text);
      t.is(text, readFileSync(file, 'utf8'));
    });
  }
}

const ipt = (name: string) => iptablesRestoreInput(CASES[name]!).split('\n');
const nft = (name: string) => nftablesScript(CASES[name]!).split('\n');
const SVC = 'default/hostnames';
const svc = iptablesChains.svc(SVC, 'tcp');
const svl = iptablesChains.svl(SVC, 'tcp');
const ext = iptablesChains.ext(SVC, 'tcp');
const fw = iptablesChains.fw(SVC, 'tcp');
const sep = (ep: string, name = SVC) => iptablesChains.sep(name, 'tcp', ep);

/** The lines of `lines` that appear in `expected`, in the order given (others may come between). */
function assertInOrder(t: import('ava').ExecutionContext, lines: string[], expected: string[]): void {
  let at = 0;
  for (const line of expected) {
    const found = lines.indexOf(line, at);
    t.true(found >= 0, `missing (or out of order): ${line}`);
    if (found >= 0) at = found + 1;
  }
}

test('kube-proxy frame: tables, base chains, masquerade mark 0x4000, KUBE-FORWARD', (t) => {
  const lines = ipt('one-endpoint');
  assertInOrder(t, lines, [
    '*filter',
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-EXTERNAL-SERVICES - [0:0]',
    ':KUBE-FORWARD - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    ':KUBE-PROXY-FIREWALL - [0:0]',
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    'COMMIT',
    '*nat',
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    ':KUBE-POSTROUTING - [0:0]',
    ':KUBE-MARK-MASQ - [0:0]',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    '-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000',
    // The NodePort jump is the last rule of KUBE-SERVICES; loopback excluded (no localhost NodePorts).
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS',
    'COMMIT',
  ]);
  t.is(lines.filter((l) => l.startsWith('-A KUBE-SERVICES')).at(-1), lines.find((l) => l.includes('-j KUBE-NODEPORTS')));
});

test('one endpoint: ClusterIP → KUBE-SVC (masquerade from outside the cluster CIDR) → KUBE-SEP without statistic', (t) => {
  const ep = '198.18.130.2:9376';
  assertInOrder(t, ipt('one-endpoint'), [
    `:${svc} - [0:0]`,
    `:${sep(ep)} - [0:0]`,
    `-A KUBE-SERVICES -m comment --comment "${SVC} cluster IP" -m tcp -p tcp -d ${CLUSTER_IP} --dport 80 -j ${svc}`,
    `-A ${svc} -m comment --comment "${SVC} cluster IP" -m tcp -p tcp -d ${CLUSTER_IP} --dport 80 ! -s 198.18.128.0/17 -j KUBE-MARK-MASQ`,
    `-A ${svc} -m comment --comment "${SVC} -> ${ep}" -j ${sep(ep)}`,
    `-A ${sep(ep)} -m comment --comment ${SVC} -s 198.18.130.2 -j KUBE-MARK-MASQ`,
    `-A ${sep(ep)} -m comment --comment ${SVC} -m tcp -p tcp -j DNAT --to-destination ${ep}`,
  ]);
  assertInOrder(t, nft('one-endpoint'), [
    'add table ip kube-proxy { comment "rules for kube-proxy" ; }',
    'add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }',
    'add rule ip kube-proxy nat-prerouting jump services',
    'add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips',
    `add element ip kube-proxy service-ips { ${CLUSTER_IP} . tcp . 80 : goto service-EJAJPSCL-default/hostnames/tcp/ }`,
    `add rule ip kube-proxy service-EJAJPSCL-default/hostnames/tcp/ ip daddr ${CLUSTER_IP} tcp dport 80 ip saddr != 198.18.128.0/17 jump mark-for-masquerade`,
    'add rule ip kube-proxy service-EJAJPSCL-default/hostnames/tcp/ numgen random mod 1 vmap { 0 : goto endpoint-VZ6IVXR4-default/hostnames/tcp/__198.18.130.2/9376 }',
    'add rule ip kube-proxy endpoint-VZ6IVXR4-default/hostnames/tcp/__198.18.130.2/9376 ip saddr 198.18.130.2 jump mark-for-masquerade',
    'add rule ip kube-proxy endpoint-VZ6IVXR4-default/hostnames/tcp/__198.18.130.2/9376 meta l4proto tcp dnat to 198.18.130.2:9376',
  ]);
});

test('several endpoints: ordered by "ip:port", probabilities 1/(n-i) printed %0.10f, last one unconditional', (t) => {
  const name = `${SVC}:http`;
  const svcHttp = iptablesChains.svc(name, 'tcp');
  const eps = ['198.18.129.2:9376', '198.18.130.2:9376', '198.18.130.3:9376'];
  assertInOrder(t, ipt('several-endpoints'), [
    `-A ${svcHttp} -m comment --comment "${name} -> ${eps[0]}" -m statistic --mode random --probability 0.3333333333 -j ${sep(eps[0]!, name)}`,
    `-A ${svcHttp} -m comment --comment "${name} -> ${eps[1]}" -m statistic --mode random --probability 0.5000000000 -j ${sep(eps[1]!, name)}`,
    `-A ${svcHttp} -m comment --comment "${name} -> ${eps[2]}" -j ${sep(eps[2]!, name)}`,
  ]);
  t.true(nft('several-endpoints').some((l) => /^add rule ip kube-proxy service-\w{8}-default\/hostnames\/tcp\/http numgen random mod 3 vmap \{ 0 : goto endpoint-\w{8}-default\/hostnames\/tcp\/http__198\.18\.129\.2\/9376 , 1 : goto .*__198\.18\.130\.2\/9376 , 2 : goto .*__198\.18\.130\.3\/9376 \}$/.test(l)));
});

test('NodePort: KUBE-NODEPORTS → KUBE-EXT (masquerade, ETP Cluster) → KUBE-SVC', (t) => {
  assertInOrder(t, ipt('nodeport'), [
    `:${ext} - [0:0]`,
    `:${svc} - [0:0]`,
    `-A KUBE-SERVICES -m comment --comment "${SVC} cluster IP" -m tcp -p tcp -d ${CLUSTER_IP} --dport 80 -j ${svc}`,
    `-A KUBE-NODEPORTS -m comment --comment ${SVC} -m tcp -p tcp --dport 30080 -j ${ext}`,
    `-A ${ext} -m comment --comment "masquerade traffic for ${SVC} external destinations" -j KUBE-MARK-MASQ`,
    `-A ${ext} -j ${svc}`,
    `-A ${svc} -m comment --comment "${SVC} -> 198.18.130.2:9376" -m statistic --mode random --probability 0.5000000000 -j ${sep('198.18.130.2:9376')}`,
  ]);
  assertInOrder(t, nft('nodeport'), [
    'add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
    'add element ip kube-proxy service-nodeports { tcp . 30080 : goto external-EJAJPSCL-default/hostnames/tcp/ }',
    'add rule ip kube-proxy external-EJAJPSCL-default/hostnames/tcp/ jump mark-for-masquerade',
    'add rule ip kube-proxy external-EJAJPSCL-default/hostnames/tcp/ goto service-EJAJPSCL-default/hostnames/tcp/',
  ]);
});

test('LoadBalancer with source ranges: KUBE-FW per range (+ the VIP, as a range holds the node), filter DROP for the rest', (t) => {
  assertInOrder(t, ipt('loadbalancer-source-ranges'), [
    `-A KUBE-PROXY-FIREWALL -m comment --comment "${SVC} traffic not accepted by ${fw}" -m tcp -p tcp -d ${LB_IP} --dport 80 -j DROP`,
    `:${fw} - [0:0]`,
    `-A KUBE-SERVICES -m comment --comment "${SVC} loadbalancer IP" -m tcp -p tcp -d ${LB_IP} --dport 80 -j ${fw}`,
    `-A ${fw} -m comment --comment "${SVC} loadbalancer IP" -s 198.18.0.100/30 -j ${ext}`,
    `-A ${fw} -m comment --comment "${SVC} loadbalancer IP" -s 198.18.0.8/29 -j ${ext}`,
    `-A ${fw} -m comment --comment "${SVC} loadbalancer IP" -s ${LB_IP} -j ${ext}`,
    `-A ${fw} -m comment --comment "other traffic to ${SVC} will be dropped by KUBE-PROXY-FIREWALL"`,
  ]);
  // NodePorts are not subject to the source ranges.
  t.true(ipt('loadbalancer-source-ranges').includes(`-A KUBE-NODEPORTS -m comment --comment ${SVC} -m tcp -p tcp --dport 30080 -j ${ext}`));
  assertInOrder(t, nft('loadbalancer-source-ranges'), [
    'add rule ip kube-proxy filter-prerouting ct state new jump firewall-check',
    'add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips',
    `add element ip kube-proxy service-ips { ${LB_IP} . tcp . 80 : goto external-EJAJPSCL-default/hostnames/tcp/ }`,
    `add element ip kube-proxy firewall-ips { ${LB_IP} . tcp . 80 : goto firewall-EJAJPSCL-default/hostnames/tcp/ }`,
    `add rule ip kube-proxy firewall-EJAJPSCL-default/hostnames/tcp/ ip saddr != { 198.18.0.100/30 , 198.18.0.8/29 , ${LB_IP} } drop`,
  ]);
});

test('session affinity: recent --rcheck per endpoint before the statistic rules, --set on DNAT; nft affinity sets', (t) => {
  const [a, b] = ['198.18.130.2:9376', '198.18.130.3:9376'];
  assertInOrder(t, ipt('session-affinity'), [
    `-A ${svc} -m comment --comment "${SVC} cluster IP" -m tcp -p tcp -d ${CLUSTER_IP} --dport 80 ! -s 198.18.128.0/17 -j KUBE-MARK-MASQ`,
    `-A ${svc} -m comment --comment "${SVC} -> ${a}" -m recent --name ${sep(a!)} --rcheck --seconds 600 --reap -j ${sep(a!)}`,
    `-A ${svc} -m comment --comment "${SVC} -> ${b}" -m recent --name ${sep(b!)} --rcheck --seconds 600 --reap -j ${sep(b!)}`,
    `-A ${svc} -m comment --comment "${SVC} -> ${a}" -m statistic --mode random --probability 0.5000000000 -j ${sep(a!)}`,
    `-A ${svc} -m comment --comment "${SVC} -> ${b}" -j ${sep(b!)}`,
    `-A ${sep(a!)} -m comment --comment ${SVC} -m recent --name ${sep(a!)} --set -m tcp -p tcp -j DNAT --to-destination ${a}`,
  ]);
  const lines = nft('session-affinity');
  const affinitySet = /^add set ip kube-proxy (affinity-\w{8}-default\/hostnames\/tcp\/__198\.18\.130\.2\/9376) \{ type ipv4_addr ; flags dynamic,timeout ; timeout 600s ; \}$/;
  const set = lines.map((l) => affinitySet.exec(l)?.[1]).find((x) => x !== undefined);
  if (set === undefined) return t.fail('no affinity set for 198.18.130.2:9376');
  const chain = set.replace(/^affinity-/, 'endpoint-');
  assertInOrder(t, lines, [
    `add rule ip kube-proxy service-EJAJPSCL-default/hostnames/tcp/ ip saddr @${set} goto ${chain}`,
    `add rule ip kube-proxy ${chain} update @${set} { ip saddr }`,
  ]);
});

test('ETP Local: KUBE-EXT short-circuits pods and the node, the rest goes to KUBE-SVL (local endpoints only); health check ACCEPT', (t) => {
  const local = '198.18.129.2:9376';
  assertInOrder(t, ipt('etp-local'), [
    `-A KUBE-NODEPORTS -m comment --comment "${SVC} health check node port" -m tcp -p tcp --dport 32000 -j ACCEPT`,
    `:${ext} - [0:0]`,
    `:${svc} - [0:0]`,
    `:${svl} - [0:0]`,
    `-A KUBE-SERVICES -m comment --comment "${SVC} loadbalancer IP" -m tcp -p tcp -d ${LB_IP} --dport 80 -j ${ext}`,
    `-A ${ext} -m comment --comment "pod traffic for ${SVC} external destinations" -s 198.18.128.0/17 -j ${svc}`,
    `-A ${ext} -m comment --comment "masquerade LOCAL traffic for ${SVC} external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`,
    `-A ${ext} -m comment --comment "route LOCAL traffic for ${SVC} external destinations" -m addrtype --src-type LOCAL -j ${svc}`,
    `-A ${ext} -j ${svl}`,
    `-A ${svl} -m comment --comment "${SVC} -> ${local}" -j ${sep(local)}`,
  ]);
  // No masquerade for external traffic that stays on the node: the client address is preserved.
  t.false(ipt('etp-local').some((l) => l.includes('masquerade traffic for')));
  assertInOrder(t, nft('etp-local'), [
    'add rule ip kube-proxy external-EJAJPSCL-default/hostnames/tcp/ ip saddr 198.18.128.0/17 goto service-EJAJPSCL-default/hostnames/tcp/ comment "short-circuit pod traffic"',
    'add rule ip kube-proxy external-EJAJPSCL-default/hostnames/tcp/ fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"',
    'add rule ip kube-proxy external-EJAJPSCL-default/hostnames/tcp/ fib saddr type local goto service-EJAJPSCL-default/hostnames/tcp/ comment "short-circuit local traffic"',
    'add rule ip kube-proxy external-EJAJPSCL-default/hostnames/tcp/ goto local-EJAJPSCL-default/hostnames/tcp/',
  ]);
});

test('ETP Local without a local endpoint: external traffic DROPped in filter, pods still short-circuit', (t) => {
  const lines = ipt('etp-local-no-local-endpoint');
  assertInOrder(t, lines, [
    `-A KUBE-EXTERNAL-SERVICES -m comment --comment "${SVC} has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j DROP`,
    `-A KUBE-NODEPORTS -m comment --comment ${SVC} -m tcp -p tcp --dport 30080 -j ${ext}`,
    `-A ${ext} -m comment --comment "pod traffic for ${SVC} external destinations" -s 198.18.128.0/17 -j ${svc}`,
  ]);
  t.false(lines.some((l) => l === `-A ${ext} -j ${svl}`), 'no fall-through to an empty KUBE-SVL');
  t.false(lines.some((l) => l.startsWith(`:${svl}`)));
  t.true(nft('etp-local-no-local-endpoint').includes('add element ip kube-proxy no-endpoint-nodeports { tcp . 30080 comment "default/hostnames" : drop }'));
});

test('no endpoints: REJECT in filter for ClusterIP, external IP and NodePort; no nat chains', (t) => {
  const lines = ipt('no-endpoints');
  assertInOrder(t, lines, [
    `-A KUBE-SERVICES -m comment --comment "${SVC} has no endpoints" -m tcp -p tcp -d ${CLUSTER_IP} --dport 80 -j REJECT`,
    `-A KUBE-EXTERNAL-SERVICES -m comment --comment "${SVC} has no endpoints" -m tcp -p tcp -d 198.19.255.20 --dport 80 -j REJECT`,
    `-A KUBE-EXTERNAL-SERVICES -m comment --comment "${SVC} has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT`,
  ]);
  t.false(lines.some((l) => /KUBE-(SVC|SEP|EXT|SVL|FW)-/.test(l)), 'a Service without endpoints has no nat chains');
  assertInOrder(t, nft('no-endpoints'), [
    'add rule ip kube-proxy reject-chain reject',
    'add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services',
    `add element ip kube-proxy no-endpoint-services { ${CLUSTER_IP} . tcp . 80 comment "default/hostnames" : goto reject-chain }`,
    'add element ip kube-proxy no-endpoint-services { 198.19.255.20 . tcp . 80 comment "default/hostnames" : goto reject-chain }',
    'add element ip kube-proxy no-endpoint-nodeports { tcp . 30080 comment "default/hostnames" : goto reject-chain }',
  ]);
  t.false(nft('no-endpoints').some((l) => /^add element ip kube-proxy service-(ips|nodeports) /.test(l)));
});

test('nodePortAddresses and masqueradeAll: one KUBE-NODEPORTS jump per selected address; unconditional masquerade', (t) => {
  const lines = ipt('nodeport-addresses-masquerade-all');
  t.true(lines.includes('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 198.18.0.11 -j KUBE-NODEPORTS'));
  t.false(lines.some((l) => l.includes('--dst-type LOCAL ! -d 127.0.0.0/8')));
  t.true(lines.includes(`-A ${svc} -m comment --comment "${SVC} cluster IP" -m tcp -p tcp -d ${CLUSTER_IP} --dport 80 -j KUBE-MARK-MASQ`));
  assertInOrder(t, nft('nodeport-addresses-masquerade-all'), [
    'add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }',
    'flush set ip kube-proxy nodeport-ips',
    'add element ip kube-proxy nodeport-ips { 198.18.0.11 }',
    'add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports',
    'add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports',
    `add rule ip kube-proxy service-EJAJPSCL-default/hostnames/tcp/ ip daddr ${CLUSTER_IP} tcp dport 80 jump mark-for-masquerade`,
  ]);
});
