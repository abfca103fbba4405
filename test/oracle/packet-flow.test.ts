// The upstream oracle: Kubernetes' own kube-proxy packet-flow cases (recorded from
// k8s.io/kubernetes pkg/proxy/{iptables,nftables} by hack/record-packet-flow-cases.sh) run through
// bpfproxy as the agent runs it — its config code, its node view, the model, the reconciler into a
// loaded datapath's maps — and `bpfproxy explain`'s engine over those maps. Each case's endpoints,
// masquerading and drop/reject must agree with upstream, or be a documented difference
// (docs/datapath.md, "Differences from kube-proxy"), or be untranslatable (IPv6, SCTP, localhost
// NodePorts), or be a known bug of issue 12 listed in KNOWN_BUGS until its fix lands.
import { Reconciler } from '../../ts/dataplane/reconciler.js';
import { mapReader, type MapReader } from '../../ts/explain/map-reader.js';
import { maskOf, parseCidr4, parseIPv4 } from '../../ts/model/index.js';
import { rootTest, setup } from '../datapath/_fixture.js';
import {
  cachingReader, expectedOutcome, formatOutcome, frontendOf, ingressOf, localEndpoints, loadRecorded, prepare, runCase, sameOutcome, sourcesOf, sync,
  untranslatable, Untranslatable, type Case, type Outcome, type Prepared, type Scenario, type Source,
} from './_oracle.js';

interface Difference {
  c: Case;
  s: Scenario;
  source: Source;
  expected: Outcome;
  actual: Outcome;
}

/**
 * Deliberate differences: each a rule over the case and both answers, with its reason (the same
 * list, in words, is docs/datapath.md's "Differences from kube-proxy").
 */
const DOCUMENTED: { id: string; reason: string; applies: (d: Difference) => boolean }[] = [
  {
    id: 'uplink traffic is masqueraded to other nodes only',
    reason:
      'Traffic that arrives on the uplink is masqueraded exactly when its endpoint is on another node: the reply must come ' +
      'back through this node, the only one that can reverse the translation, and an endpoint on this node sees the ' +
      'client. kube-proxy decides by policy instead: it masquerades all external traffic under externalTrafficPolicy ' +
      'Cluster (a local endpoint included) and none of a cluster source\'s traffic to an ETP Local service or, without a ' +
      'local-traffic detector, to a ClusterIP (replies from another node then bypass the node that translated them).',
    applies: ({ s, c, source, expected, actual }) => {
      if ((source !== 'outside' && source !== 'other-node pod') || !sameEndpoints(expected, actual) || expected.masq === actual.masq) return false;
      const local = localEndpoints(s);
      const onThisNode = (actual.to as string[]).filter((ep) => local.has(ep));
      return actual.unmasqueraded!.join() === onThisNode.join();
    },
  },
  {
    id: 'pods of this node are internal traffic',
    reason:
      'A pod of this node reaching a NodePort, load balancer IP or external IP is recognised by the interface it sends ' +
      'from (its veth, as kube-proxy\'s detect-local modes by interface do), not by clusterCIDR, and handled as internal ' +
      'traffic: all endpoints even under externalTrafficPolicy Local, and no masquerade (its replies pass this node, ' +
      'where the pod is). kube-proxy masquerades traffic to external destinations, and without a local-traffic ' +
      'detector cannot tell pods from outside clients.',
    applies: ({ s, c, source, expected, actual }) => {
      const fe = frontendOf(s, c);
      if (source !== 'pod' || !fe || fe.kind === 'ClusterIP' || !Array.isArray(actual.to)) return false;
      // Without a detector kube-proxy sends it to local endpoints only (ETP Local); bpfproxy to all.
      const widened = !s.settings.localDetector && externalLocal(s, c) && Array.isArray(expected.to) && expected.to.every((ep) => (actual.to as string[]).includes(ep));
      return actual.masq === 'no' && (sameEndpoints(expected, actual) || widened);
    },
  },
  {
    id: 'the node\'s own traffic keeps the node address',
    reason:
      'The node\'s own connections to a service always leave with the node address (and a port of the SNAT range, so ' +
      'that their replies are recognised); the address is the one the connection had, so whether kube-proxy marks it for ' +
      'masquerading (with a local-traffic detector, or masqueradeAll) changes nothing the endpoint sees.',
    applies: ({ source, expected, actual }) => source === 'node' && sameEndpoints(expected, actual) && expected.masq !== actual.masq,
  },
  {
    id: 'nftables ClusterIP checks',
    reason:
      'A packet to a ClusterIP on a port it does not serve, or to an unallocated address of the service CIDR, passes ' +
      'untouched (as with kube-proxy\'s iptables mode); the nftables mode rejects or drops it.',
    applies: ({ s, c, expected, actual }) =>
      c.backends.every((b) => b === 'nftables') &&
      (expected.to === 'REJECT' || expected.to === 'DROP') &&
      actual.to === 'UNTOUCHED' &&
      frontendOf(s, c) === undefined &&
      (s.backendSettings.nftables ?? []).some((b) => b.serviceCIDRs && inCidr(c.destIP, b.serviceCIDRs)),
  },
];

const sameEndpoints = (a: Outcome, b: Outcome) => Array.isArray(a.to) && Array.isArray(b.to) && a.to.join() === b.to.join();
const externalLocal = (s: Scenario, c: Case) => frontendOf(s, c)?.service.spec?.externalTrafficPolicy === 'Local';
function inCidr(ip: string, cidr: string): boolean {
  const c = parseCidr4(cidr);
  const n = parseIPv4(ip);
  return c !== undefined && n !== undefined && ((n & maskOf(c.prefix)) >>> 0) === c.base;
}

/**
 * KNOWN BUGS — differences that are bugs of issue 12, being fixed. Keyed by case id (and source
 * when a case is run from more than one); each names its bug. A fix makes its entries agree, and
 * this test then fails until they are removed from here: the table only ever shrinks. (Empty since
 * the node's own traffic is served: the service device by default, tc_lo_egress for its own addresses.)
 */
const KNOWN_BUG_LIST: [bugs: string[], keys: string[]][] = [];
const KNOWN_BUGS: Record<string, string> = Object.fromEntries(KNOWN_BUG_LIST.flatMap(([bugs, keys]) => keys.map((k) => [k, bugs.join('; and ')])));

type Verdict = 'agree' | 'documented' | 'untranslatable' | 'known bug' | 'unexpected';

rootTest('upstream oracle: kube-proxy\'s packet-flow cases through bpfproxy', async (t) => {
  t.timeout(10 * 60_000);
  const { kubernetes, scenarios, cases } = loadRecorded();
  // One datapath per load-time configuration, loaded as the agent loads it (datapathConfigFor);
  // each scenario is then a full sync into its maps.
  const datapaths = new Map<string, { reconciler: Reconciler; maps: MapReader }>();
  const datapathFor = async (p: Prepared) => {
    const key = JSON.stringify(p.datapath);
    let d = datapaths.get(key);
    if (!d) {
      const env = await setup(t, p.datapath);
      const reconciler = new Reconciler(env.dp);
      reconciler.adopt();
      d = { reconciler, maps: mapReader(env.dp) };
      datapaths.set(key, d);
    }
    return d;
  };

  const verdicts = new Map<string, Verdict>();
  const unexpected: string[] = [];
  const fixed: string[] = [];
  const knownSeen = new Set<string>();
  const tally = new Map<string, number>(); // comparisons (case × source) per documented id and per known bug
  const byCase = new Map<string, Case[]>();
  for (const c of cases) byCase.set(c.scenario, [...(byCase.get(c.scenario) ?? []), c]);

  for (const [sid, scenarioCases] of byCase) {
    const s = scenarios.get(sid)!;
    let p: Prepared | undefined;
    try {
      p = prepare(s);
    } catch (e) {
      if (!(e instanceof Untranslatable)) throw e;
      for (const c of scenarioCases) verdicts.set(c.id, 'untranslatable');
      continue;
    }
    const { reconciler, maps } = await datapathFor(p);
    t.deepEqual(sync(reconciler, p), [], `scenario ${sid}: the reconciler wrote every entry`);
    const reader = cachingReader(maps);
    for (const c of scenarioCases) {
      if (untranslatable(s, c)) {
        verdicts.set(c.id, 'untranslatable');
        continue;
      }
      const expected = expectedOutcome(c);
      const sources = sourcesOf(s, c);
      const results: Verdict[] = [];
      for (const source of sources) {
        const key = sources.length > 1 ? `${c.id} ${source}` : c.id;
        const { outcome: actual } = runCase(reader, p, c, ingressOf(source, c, p));
        const known = KNOWN_BUGS[key];
        if (known) knownSeen.add(key);
        const line = `${key} [${c.names[0]}] ${source} ${c.sourceIP} → ${c.destIP}:${c.destPort}/${c.protocol}: kube-proxy ${formatOutcome(expected)}, bpfproxy ${formatOutcome(actual)}`;
        if (sameOutcome(expected, actual)) {
          results.push('agree');
          if (known) fixed.push(`${line} — agrees now: remove it from KNOWN_BUGS (${known})`);
          continue;
        }
        const d: Difference = { c, s, source, expected, actual };
        const doc = DOCUMENTED.find((x) => x.applies(d));
        if (doc) {
          results.push('documented');
          tally.set(doc.id, (tally.get(doc.id) ?? 0) + 1);
          if (known) fixed.push(`${line} — now a documented difference (${doc.id}): remove it from KNOWN_BUGS (${known})`);
        }
        else if (known) {
          results.push('known bug');
          tally.set(`known bug: ${known}`, (tally.get(`known bug: ${known}`) ?? 0) + 1);
        }
        else {
          results.push('unexpected');
          unexpected.push(line);
        }
      }
      const order: Verdict[] = ['unexpected', 'known bug', 'documented', 'agree'];
      verdicts.set(c.id, order.find((v) => results.includes(v))!);
    }
  }

  const count = (v: Verdict) => [...verdicts.values()].filter((x) => x === v).length;
  const summary =
    `oracle (kube-proxy ${kubernetes}, ${cases.length} distinct cases): ${count('agree')} agree, ${count('documented')} documented differences, ` +
    `${count('untranslatable')} untranslatable, ${count('known bug')} known bugs, ${count('unexpected')} unexpected`;
  console.log(summary);
  t.log(summary);
  for (const [what, n] of tally) t.log(`  ${n} × ${what}`);
  for (const u of unexpected) t.log(`unexpected: ${u}`);
  const stale = Object.keys(KNOWN_BUGS).filter((k) => !knownSeen.has(k));
  t.deepEqual(unexpected, [], 'differences from kube-proxy that are neither documented nor known bugs');
  t.deepEqual(fixed, [], 'known bugs that are fixed: remove them from KNOWN_BUGS');
  t.deepEqual(stale, [], 'KNOWN_BUGS entries for cases that no longer exist');
});

