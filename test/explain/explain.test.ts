// `explain` against real maps filled by the reconciler from Service/EndpointSlice objects, and
// against the datapath itself: the same packet is run through the real program
// (BPF_PROG_TEST_RUN) and must do what the explanation says.
import type { ExecutionContext } from 'ava';

import { DropReason, maglevIndex } from '../../ts/abi/index.js';
import { Reconciler } from '../../ts/dataplane/reconciler.js';
import { explainPacket, type ExplainInput, type Explanation } from '../../ts/explain/explain.js';
import { mapReader, type NodeSettings } from '../../ts/explain/map-reader.js';
import { resolveProxyConfig } from '../../ts/model/index.js';
import { parsePacket } from '../../ts/packet/index.js';
import { drops, HAIRPIN, NET, rootTest, setup, TC, type Env } from '../datapath/_fixture.js';
import { fromPeer, tcp, udp } from '../datapath/_packets.js';
import { program } from '../helpers/program.js';

const M = 251;
const proxy = resolveProxyConfig({ clusterCIDR: NET.podCidr, maglevTableSize: M });
const node = { name: 'node-1', addresses: [NET.node1], podCIDRs: ['198.18.129.0/24'] };
const settings: NodeSettings = { nodeIp: NET.node1, hairpinIp: HAIRPIN };

const YAML = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  type: LoadBalancer
  clusterIP: ${NET.clusterIp}
  ports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30080 }]
  loadBalancerSourceRanges: [198.18.0.100/31]
status: { loadBalancer: { ingress: [{ ip: ${NET.lbIp} }] } }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: default, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
  - { addresses: [${NET.pod1a}], nodeName: node-1 }
  - { addresses: [${NET.pod2a}], nodeName: node-2 }
---
apiVersion: v1
kind: Service
metadata: { name: empty, namespace: default }
spec: { clusterIP: ${NET.clusterIp2}, ports: [{ name: dns, port: 53, targetPort: 53, protocol: UDP }] }
---
apiVersion: v1
kind: Service
metadata: { name: local, namespace: default }
spec:
  type: NodePort
  clusterIP: 198.19.0.30
  externalTrafficPolicy: Local
  ports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30090 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: local-1, namespace: default, labels: { kubernetes.io/service-name: local } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
  - { addresses: [${NET.pod2b}], nodeName: node-2 }
`;

async function filled(t: ExecutionContext): Promise<Env> {
  const env = await setup(t, { maglevM: M });
  const reconciler = new Reconciler(env.dp);
  reconciler.adopt();
  t.deepEqual(program(reconciler, YAML, { node, config: proxy }).result.failures, []);
  return env;
}

const explain = (env: Env, input: ExplainInput): Explanation => explainPacket(mapReader(env.dp), settings, input);
const ids = (e: Explanation) => e.steps.map((s) => s.id);
const step = (e: Explanation, id: string) => e.steps.find((s) => s.id === id)?.summary;

rootTest('pod → ClusterIP: a random slot of two, each 50%, no SNAT; the datapath picks one of them', async (t) => {
  const env = await filled(t);
  const e = explain(env, { src: NET.pod1b, sport: 40000, dst: NET.clusterIp, dport: 80, proto: 'tcp', ingress: 'pod' });
  t.deepEqual(ids(e), ['hook', 'frontend', 'origin', 'conntrack', 'scope', 'backend', 'snat', 'rewrite', 'deliver']);
  t.regex(step(e, 'frontend')!, /^hit 198\.19\.0\.10:80\/TCP → service id \d+, ClusterIP, 2 endpoint\(s\), 0 on this node \[DETECT_LOCAL\]$/);
  t.is(step(e, 'conntrack'), 'no entry: a new flow');
  t.regex(step(e, 'backend')!, /^random slot of 2 \(like KUBE-SVC's statistic rules\): backend \d+ 50%, backend \d+ 50%$/);
  t.is(step(e, 'snat'), 'no SNAT: the client address is kept');
  t.is(e.verdict, 'forward');
  t.deepEqual(e.outcomes!.map((o) => [o.translated.dst, o.probability]).sort(), [[NET.pod1a, 0.5], [NET.pod2a, 0.5]]);

  const { verdict, out } = env.send('tcPodIngress', tcp(NET.pod1b, 40000, NET.clusterIp, 80));
  t.is(verdict, TC.OK);
  const dst = parsePacket(out).ip!.dst;
  t.true([NET.pod1a, NET.pod2a].includes(dst as never));

  // Now the flow exists: explained as conntrack has it.
  const again = explain(env, { src: NET.pod1b, sport: 40000, dst: NET.clusterIp, dport: 80, proto: 'tcp', ingress: 'pod' });
  t.deepEqual(ids(again), ['hook', 'frontend', 'origin', 'conntrack', 'rewrite', 'deliver']);
  t.regex(step(again, 'conntrack')!, new RegExp(`^existing flow \\(SYN_SENT, expires in \\d+s\\): backend \\d+ ${dst.replace(/\./g, '\\.')}:8080, translated as recorded$`));
  t.deepEqual(again.translated, { src: NET.pod1b, sport: 40000, dst, dport: 8080 });
});

rootTest('outside → NodePort: Maglev over the flow hash names the backend, and the datapath agrees', async (t) => {
  const env = await filled(t);
  // Client ports whose Maglev entries land on each backend, so both SNAT answers are seen.
  for (const sport of [40000, 40001, 40002, 40003, 40004, 40005]) {
    const input: ExplainInput = { src: NET.client2, sport, dst: NET.node1, dport: 30080, proto: 'tcp', ingress: 'uplink' };
    const e = explain(env, input);
    t.deepEqual(ids(e), ['hook', 'frontend', 'origin', 'conntrack', 'scope', 'backend', 'snat', 'rewrite', 'deliver']);
    t.regex(step(e, 'frontend')!, /^hit 0\.0\.0\.0:30080\/TCP \(198\.18\.0\.11 is a node address: NodePort 0\.0\.0\.0:30080\) → service id \d+, NodePort, 2 endpoint\(s\), 0 on this node \[MAGLEV\]$/);
    const entry = maglevIndex({ saddr: NET.client2, daddr: NET.node1, sport, dport: 30080, proto: 6 }, M);
    t.regex(step(e, 'backend')!, new RegExp(`^Maglev: flow hash 0x[0-9a-f]{8} mod M=251 = entry ${entry} → backend \\d+ 198\\.18\\.1(29|30)\\.10:8080 \\(every node picks the same\\)$`));
    const remote = e.translated!.dst === NET.pod2a;
    t.is(step(e, 'snat'), remote
      ? 'from outside this node to a backend on another node: source becomes 198.18.0.11, so that the reply comes back through this node'
      : 'no SNAT: the client address is kept (the reply passes this node anyway)');

    const { out } = env.send('tcUplinkIngress', tcp(NET.client2, sport, NET.node1, 30080, ['SYN'], { eth: fromPeer }));
    const p = parsePacket(out);
    t.is(p.ip!.dst, e.translated!.dst, 'the datapath sends it where explain said');
    t.is(p.ip!.src, remote ? NET.node1 : NET.client2);
  }
});

rootTest('LoadBalancer source ranges, no endpoints, Local policy without a local endpoint: drops and rejects with their reasons', async (t) => {
  const env = await filled(t);
  const denied = explain(env, { src: '198.18.0.102', sport: 40000, dst: NET.lbIp, dport: 80, proto: 'tcp', ingress: 'uplink' });
  t.deepEqual(ids(denied), ['hook', 'frontend', 'origin', 'source-range']);
  t.is(step(denied, 'source-range'), '198.18.0.102 is not within loadBalancerSourceRanges (198.18.0.100/31): dropped');
  t.like(denied, { verdict: 'drop', dropReason: 'SOURCE_RANGE' });
  const before = drops(env.dp, DropReason.SOURCE_RANGE);
  t.is(env.send('tcUplinkIngress', tcp('198.18.0.102', 40000, NET.lbIp, 80, ['SYN'], { eth: fromPeer })).verdict, TC.SHOT);
  t.is(drops(env.dp, DropReason.SOURCE_RANGE), before + 1n);

  const allowed = explain(env, { src: NET.client2, sport: 40000, dst: NET.lbIp, dport: 80, proto: 'tcp', ingress: 'uplink' });
  t.is(step(allowed, 'source-range'), '198.18.0.101 is within loadBalancerSourceRanges (198.18.0.100/31)');
  t.is(allowed.verdict, 'forward');

  const empty = explain(env, { src: NET.pod1a, sport: 5000, dst: NET.clusterIp2, dport: 53, proto: 'udp', ingress: 'pod' });
  t.deepEqual(ids(empty), ['hook', 'frontend', 'origin', 'conntrack', 'scope', 'endpoints']);
  t.like(empty, { verdict: 'reject', dropReason: 'NO_ENDPOINTS' });
  t.is(step(empty, 'endpoints'), `the service has no endpoints: rejected (ICMP port unreachable from ${NET.clusterIp2}, back out of the interface it came in on)`);
  const rejected = drops(env.dp, DropReason.NO_ENDPOINTS);
  env.send('tcPodIngress', udp(NET.pod1a, 5000, NET.clusterIp2, 53));
  t.is(drops(env.dp, DropReason.NO_ENDPOINTS), rejected + 1n);

  const local = explain(env, { src: NET.client2, sport: 40000, dst: NET.node1, dport: 30090, proto: 'tcp', ingress: 'uplink' });
  t.deepEqual(ids(local), ['hook', 'frontend', 'origin', 'conntrack', 'scope', 'endpoints']);
  t.is(step(local, 'scope'), 'externalTrafficPolicy Local: the 0 endpoint(s) on this node');
  t.like(local, { verdict: 'drop', dropReason: 'NO_LOCAL_ENDPOINTS' });
  t.is(env.send('tcUplinkIngress', tcp(NET.client2, 40000, NET.node1, 30090, ['SYN'], { eth: fromPeer })).verdict, TC.SHOT);

  // The same service from a pod of this node: ETP does not apply, every endpoint may be used.
  const fromPod = explain(env, { src: NET.pod1a, sport: 40000, dst: '198.19.0.30', dport: 80, proto: 'tcp', ingress: 'pod' });
  t.is(fromPod.verdict, 'forward');
  t.deepEqual(fromPod.translated, { src: NET.pod1a, sport: 40000, dst: NET.pod2b, dport: 8080 });
});

rootTest('replies and strangers: a masqueraded flow\'s reply is reversed, other traffic passes untouched', async (t) => {
  const env = await filled(t);
  // A flow from outside to the remote backend, masqueraded to the node address.
  let sport = 40000;
  for (; sport < 40100; sport++) {
    if (explain(env, { src: NET.client2, sport, dst: NET.node1, dport: 30080, proto: 'tcp', ingress: 'uplink' }).translated!.dst === NET.pod2a) break;
  }
  const { out } = env.send('tcUplinkIngress', tcp(NET.client2, sport, NET.node1, 30080, ['SYN'], { eth: fromPeer }));
  const fwd = parsePacket(out);
  t.is(fwd.ip!.src, NET.node1);
  const snatPort = fwd.tcp!.sport;

  const reply = explain(env, { src: NET.pod2a, sport: 8080, dst: NET.node1, dport: snatPort, proto: 'tcp', ingress: 'uplink' });
  t.deepEqual(ids(reply), ['hook', 'frontend', 'reply', 'deliver']);
  t.regex(step(reply, 'reply')!, new RegExp(`^reply of a tracked flow of service id \\d+: source ${NET.pod2a}:8080 → ${NET.node1.replace(/\./g, '\\.')}:30080, destination ${NET.node1}:${snatPort} → ${NET.client2}:${sport}$`));
  t.deepEqual(reply.translated, { src: NET.node1, sport: 30080, dst: NET.client2, dport: sport });

  const stranger = explain(env, { src: NET.client2, sport: 40000, dst: '198.18.0.50', dport: 22, proto: 'tcp', ingress: 'uplink' });
  t.deepEqual(ids(stranger), ['hook', 'frontend', 'reply']);
  t.like(stranger, { verdict: 'pass' });
  t.is(step(stranger, 'frontend'), 'miss: no frontend 198.18.0.50:22/TCP');
});

// hostNetwork endpoints of this node (an API server, an ingress controller) and the node's own
// traffic to them: explain names the hooks and the delivery the datapath takes (bpf/lib/hooks_node.h).
const HOST_YAML = `
apiVersion: v1
kind: Service
metadata: { name: kubernetes, namespace: default }
spec: { clusterIP: 198.19.0.1, ports: [{ name: https, port: 443, targetPort: 6443, protocol: TCP }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: kubernetes, namespace: default, labels: { kubernetes.io/service-name: kubernetes } }
addressType: IPv4
ports: [{ name: https, port: 6443, protocol: TCP }]
endpoints:
  - { addresses: [${NET.node1}], nodeName: node-1 }
---
apiVersion: v1
kind: Service
metadata: { name: ingress, namespace: default }
spec:
  type: NodePort
  clusterIP: 198.19.0.2
  ports: [{ name: https, port: 443, targetPort: 8443, protocol: TCP, nodePort: 30443 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ingress, namespace: default, labels: { kubernetes.io/service-name: ingress } }
addressType: IPv4
ports: [{ name: https, port: 8443, protocol: TCP }]
endpoints:
  - { addresses: [${NET.node1}], nodeName: node-1 }
`;

rootTest('hostNetwork endpoints of this node: explain tells the lo and local paths the datapath takes', async (t) => {
  const env = await setup(t, { maglevM: M });
  // Node 1's address on a device, so that the FIB lookups see it as local.
  const { execFileSync } = await import('node:child_process');
  const ns = env.netns.slice(env.netns.lastIndexOf('/') + 1);
  const ip = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args]);
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'fabric0');
  ip('link', 'set', 'up0', 'up');
  ip('addr', 'add', `${NET.node1}/24`, 'dev', 'up0');
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']); // a Kubernetes node forwards
  const reconciler = new Reconciler(env.dp);
  reconciler.adopt();
  t.deepEqual(program(reconciler, HOST_YAML, { node, config: proxy }).result.failures, []);
  const lo = { src: '00:00:00:00:00:00', dst: '00:00:00:00:00:00' };

  // The node → kubernetes.default, whose API server is this node: masqueraded (no hairpin), in through lo.
  const e = explain(env, { src: NET.node1, sport: 40000, dst: '198.19.0.1', dport: 443, proto: 'tcp', ingress: 'host' });
  t.regex(step(e, 'hook')!, /^tc egress on the service device/);
  t.regex(step(e, 'snat')!, /^no SNAT: the node's own flow from its address keeps address and port/);
  t.regex(step(e, 'deliver')!, /^for this node, from a node address: in through lo/);
  const r = env.send('tcHostEgress', tcp(NET.node1, 40000, '198.19.0.1', 443, ['SYN'], { eth: lo }));
  t.is(r.verdict, TC.REDIRECT);
  t.like(parsePacket(r.out), { eth: lo, ip: { src: NET.node1, dst: NET.node1 }, tcp: { dport: 6443 } });

  // The node → its own NodePort, endpoint this node: translated on lo, which delivers it.
  const viaLo = explain(env, { src: NET.node1, sport: 40001, dst: NET.node1, dport: 30443, proto: 'tcp', ingress: 'host' });
  t.regex(step(viaLo, 'hook')!, /^tc egress on lo \(tc_lo_egress\)/);
  t.regex(step(viaLo, 'deliver')!, /^for this node \(a hostNetwork endpoint here, or the node's own connection\): delivered locally/);
  t.like(viaLo.translated, { src: NET.node1, dst: NET.node1, dport: 8443 });
  const l = env.send('tcLoEgress', tcp(NET.node1, 40001, NET.node1, 30443, ['SYN'], { eth: lo }));
  t.is(l.verdict, TC.OK);
  t.like(parsePacket(l.out).tcp, { dport: 8443 });

  // Outside → NodePort → this node's own endpoint: to the stack; the answers reversed on the uplink's egress.
  const out = explain(env, { src: NET.client, sport: 40002, dst: NET.node1, dport: 30443, proto: 'tcp', ingress: 'uplink' });
  t.is(out.delivery, 'local');
  const u = env.send('tcUplinkIngress', tcp(NET.client, 40002, NET.node1, 30443, ['SYN'], { eth: fromPeer }));
  t.is(u.verdict, TC.OK);
  t.like(parsePacket(u.out).ip, { src: NET.client, dst: NET.node1 });
});
