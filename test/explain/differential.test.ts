// `explain` never claims a path the datapath does not take: the same packets, many of them, go
// through the explanation and through the real programs (BPF_PROG_TEST_RUN, tc on a pod's veth, the
// uplink and the service device), on maps the reconciler filled from objects under the agent's own
// configuration code, for kube-proxy's default (no clusterCIDR), the lab's (clusterCIDR) and
// masqueradeAll. Verdict, translation (backend, SNAT source) and delivery (to the stack, forwarded
// by the datapath, bounced) must agree for every packet, new flows and the replies of what they made.
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { basename } from 'node:path';
import fc from 'fast-check';

import { resolveAgentConfig } from '../../ts/agent/config.js';
import { datapathConfigFor } from '../../ts/agent/datapath-config.js';
import type { DatapathProgramKey } from '../../ts/dataplane/loader.js';
import { Reconciler } from '../../ts/dataplane/reconciler.js';
import { explainPacket, type ExplainInput, type Explanation, type Translation } from '../../ts/explain/explain.js';
import { mapReader } from '../../ts/explain/map-reader.js';
import { buildPacket, parsePacket, type PacketSpec } from '../../ts/packet/index.js';
import { NET, TC, rootTest, setup } from '../datapath/_fixture.js';
import { wireNode1 } from '../datapath/_node1.js';
import { fromPeer, tcp, udp } from '../datapath/_packets.js';
import { program } from '../helpers/program.js';

const M = 251;
const POD_OF_NO_CIDR = '198.18.1.5'; // a source on a pod veth in no cluster CIDR
const node = { name: 'node-1', addresses: [NET.node1], podCIDRs: ['198.18.129.0/24'] };

const YAML = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  type: LoadBalancer
  clusterIP: ${NET.clusterIp}
  ports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30080 }, { name: dns, port: 53, targetPort: 8053, protocol: UDP, nodePort: 30053 }]
status: { loadBalancer: { ingress: [{ ip: ${NET.lbIp} }] } }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: default, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }, { name: dns, port: 8053, protocol: UDP }]
endpoints:
  - { addresses: [${NET.pod1a}], nodeName: node-1 }
  - { addresses: [${NET.pod2a}], nodeName: node-2 }
---
apiVersion: v1
kind: Service
metadata: { name: local, namespace: default }
spec:
  type: NodePort
  clusterIP: ${NET.clusterIp2}
  externalTrafficPolicy: Local
  externalIPs: [${NET.externalIp}]
  ports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30090 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: local-1, namespace: default, labels: { kubernetes.io/service-name: local } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
  - { addresses: [${NET.pod1b}], nodeName: node-1 }
  - { addresses: [${NET.pod2b}], nodeName: node-2 }
`;

const CONFIGS = { kubeProxyDefault: {}, clusterCIDR: { clusterCIDR: NET.podCidr }, masqueradeAll: { clusterCIDR: NET.podCidr, masqueradeAll: true } } as const;

/** node-1's datapath as its agent would configure it, maps filled by the reconciler; pods of node-1 routable. */
async function node1(t: ExecutionContext, file: Record<string, unknown>) {
  const agent = resolveAgentConfig({ maglevTableSize: M, ...file }, {}, 'node-1');
  const dp = datapathConfigFor(agent, NET.node1).config;
  const env = await setup(t, dp);
  wireNode1(env);
  const ns = basename(env.netns);
  const ip = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args]);
  ip('link', 'add', 'pods0', 'type', 'veth', 'peer', 'name', 'pods0p');
  ip('link', 'set', 'pods0', 'up');
  ip('link', 'set', 'pods0p', 'up');
  ip('route', 'add', '198.18.129.0/24', 'dev', 'pods0');
  ip('route', 'add', 'default', 'via', NET.node2); // a real node routes everything somewhere
  for (const pod of [NET.pod1a, NET.pod1b]) ip('neigh', 'add', pod, 'lladdr', '02:00:00:00:01:99', 'dev', 'pods0', 'nud', 'permanent');
  env.dp.maps.nodeaddr4.set(NET.node1, { flags: 0 });
  const reconciler = new Reconciler(env.dp);
  reconciler.adopt();
  t.deepEqual(program(reconciler, YAML, { node, config: agent.proxy }).result.failures, []);
  return { env, settings: { nodeIp: dp.nodeIp!, hairpinIp: dp.hairpinIp! } };
}

const HOOK: Record<ExplainInput['ingress'], DatapathProgramKey> = { pod: 'tcPodIngress', uplink: 'tcUplinkIngress', host: 'tcHostEgress' };

function specOf(input: ExplainInput): PacketSpec {
  const eth = input.ingress === 'pod' ? undefined : fromPeer;
  return input.proto === 'tcp'
    ? tcp(input.src, input.sport, input.dst, input.dport, ['SYN'], eth ? { eth } : {})
    : udp(input.src, input.sport, input.dst, input.dport, 'q', eth ? { eth } : {});
}

/** Does what the program did match the explanation? A reason when it does not. */
function disagreement(e: Explanation, input: ExplainInput, verdict: number, out: Buffer): string | null {
  const p = parsePacket(out);
  const l4 = p.tcp ?? p.udp;
  const got = `verdict ${verdict}, ${p.ip!.src}:${l4?.sport} → ${p.ip!.dst}:${l4?.dport}`;
  switch (e.verdict) {
    case 'pass':
      return verdict === TC.OK && p.ip!.dst === input.dst && p.ip!.src === input.src ? null : `explain: pass untouched; program: ${got}`;
    case 'drop':
      return verdict === TC.SHOT ? null : `explain: drop (${e.dropReason}); program: ${got}`;
    case 'reject':
      return verdict === TC.REDIRECT && (p.icmp !== undefined || (p.tcp?.flagNames.includes('RST') ?? false)) ? null : `explain: reject; program: ${got}`;
    default: {
      const outcomes: { translated: Translation; delivery: string }[] = e.outcomes ?? [{ translated: e.translated!, delivery: e.delivery! }];
      const match = outcomes.find((o) => o.translated.dst === p.ip!.dst && o.translated.dport === l4?.dport);
      if (!match) return `explain: to ${outcomes.map((o) => `${o.translated.dst}:${o.translated.dport}`).join(' or ')}; program: ${got}`;
      const t = match.translated;
      const srcOk = p.ip!.src === t.src && (typeof t.sport === 'number' ? l4?.sport === t.sport : l4!.sport >= 61000);
      if (!srcOk) return `explain: from ${t.src}:${t.sport}; program: ${got}`;
      const deliveryOk =
        match.delivery === 'stack' || match.delivery === 'local' ? verdict === TC.OK : match.delivery === 'fib-or-stack' ? verdict === TC.OK || verdict === TC.REDIRECT : verdict === TC.REDIRECT;
      return deliveryOk ? null : `explain: delivery ${match.delivery}; program: ${got}`;
    }
  }
}

const arbPacket = fc.record({
  ingress: fc.constantFrom('pod', 'uplink', 'host') as fc.Arbitrary<ExplainInput['ingress']>,
  src: fc.constantFrom(NET.pod1a, NET.pod1b, NET.pod2a, POD_OF_NO_CIDR, NET.client, NET.client2),
  dst: fc.constantFrom(
    [NET.clusterIp, 80, 'tcp'], [NET.clusterIp, 53, 'udp'], [NET.lbIp, 80, 'tcp'], [NET.node1, 30080, 'tcp'], [NET.node1, 30053, 'udp'],
    [NET.clusterIp2, 80, 'tcp'], [NET.node1, 30090, 'tcp'], [NET.externalIp, 80, 'tcp'], [NET.pod2a, 8080, 'tcp'],
  ) as fc.Arbitrary<[string, number, 'tcp' | 'udp']>,
});

for (const [name, file] of Object.entries(CONFIGS)) {
  rootTest(`explain agrees with the datapath on random packets and their replies (${name})`, async (t) => {
    const { env, settings } = await node1(t, file);
    const explainOf = (input: ExplainInput) => explainPacket(mapReader(env.dp), settings, input);
    let sport = 20000;
    const compared = { packets: 0, replies: 0 };
    fc.assert(
      fc.property(arbPacket, ({ ingress, src, dst: [dst, dport, proto] }) => {
        // The node sends from its own address; the others arrive on a pod's veth or the uplink.
        const input: ExplainInput = { ingress, src: ingress === 'host' ? NET.node1 : src, sport: sport++, dst, dport, proto };
        const e = explainOf(input);
        // The node's packets to its own address leave through lo, not the service device.
        const r = env.run(ingress === 'host' && dst === NET.node1 ? 'tcLoEgress' : HOOK[ingress], buildPacket(specOf(input)));
        const why = disagreement(e, input, r.retval, r.data);
        if (why) throw new Error(`${ingress} ${input.src}:${input.sport} → ${dst}:${dport}/${proto}: ${why}\n${e.steps.map((s) => `  ${s.id}: ${s.summary}`).join('\n')}`);
        compared.packets++;
        if (e.verdict !== 'forward') return;
        // The reply, from the backend, enters where the backend is: its veth (node-1's pods) or the uplink.
        const p = parsePacket(r.data);
        const l4 = p.tcp ?? p.udp!;
        const local = p.ip!.dst.startsWith('198.18.129.');
        const reply: ExplainInput = { ingress: local ? 'pod' : 'uplink', src: p.ip!.dst, sport: l4.dport, dst: p.ip!.src, dport: l4.sport, proto };
        const re = explainOf(reply);
        const spec = proto === 'tcp' ? tcp(reply.src, reply.sport, reply.dst, reply.dport, ['SYN', 'ACK'], { ack: 1001, ...(local ? {} : { eth: fromPeer }) }) : udp(reply.src, reply.sport, reply.dst, reply.dport, 'a', local ? {} : { eth: fromPeer });
        const rr = env.run(HOOK[reply.ingress], buildPacket(spec));
        const rwhy = disagreement(re, reply, rr.retval, rr.data);
        if (rwhy) throw new Error(`reply ${reply.ingress} ${reply.src}:${reply.sport} → ${reply.dst}:${reply.dport}: ${rwhy}\n${re.steps.map((s) => `  ${s.id}: ${s.summary}`).join('\n')}`);
        compared.replies++;
      }),
      { numRuns: 300, seed: 4242, includeErrorInReport: true },
    );
    t.log(`explain ≡ datapath (${name}): ${compared.packets} packets and ${compared.replies} replies compared`);
    t.true(compared.replies > 0);
  });
}
