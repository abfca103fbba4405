/**
 * The path a packet takes through bpfproxy on one node, step by step, from the live maps: the
 * datapath's own decisions (bpf/lib/hooks.h → translate.h → lb.h, conntrack.h) replayed in user
 * space over a MapReader, the way people walk KUBE-SERVICES → KUBE-SVC-… → KUBE-SEP-… chains.
 *
 * The packet is the first of a connection (a TCP SYN, or a UDP datagram) unless conntrack already
 * holds its flow; nothing is written (no conntrack entry, no affinity, no SNAT port is taken).
 */
import { isIPv4 } from 'node:net';

import { BackendFlags, CtDir, CtFlags, IPPROTO, SvcFlags, SvcKind, SvcScope, ctClosing, ctStateName } from '../abi/constants.js';
import { flagNames, kindName } from '../abi/names.js';
import type { Backend4, Ct4Value, Svc4Key, Svc4Value } from '../abi/layouts.js';
import { flowHash4 } from '../abi/flow-hash.js';
import { maglevChoice, randomChoice, type Candidate } from './backend-choice.js';
import type { MapReader, NodeSettings } from './map-reader.js';

export type Ingress = 'pod' | 'uplink' | 'host';
export type Protocol = 'tcp' | 'udp';

export interface ExplainInput {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  proto: Protocol;
  /** Where the packet enters the datapath: from a pod's veth, from the uplink, or sent by the node itself. */
  ingress: Ingress;
}

export type StepId =
  | 'hook'
  | 'frontend'
  | 'reply'
  | 'origin'
  | 'source-range'
  | 'conntrack'
  | 'endpoints'
  | 'scope'
  | 'affinity'
  | 'backend'
  | 'snat'
  | 'rewrite'
  | 'deliver';

export interface Step {
  id: StepId;
  /** One line, for people. */
  summary: string;
  /** More lines (candidates, table shares…). */
  details?: string[];
  data?: Record<string, unknown>;
}

export type Verdict = 'pass' | 'forward' | 'bounce' | 'reject' | 'drop';

export interface Translation {
  src: string;
  /** A number, or the SNAT range when the port is taken at random. */
  sport: number | string;
  dst: string;
  dport: number;
}

/**
 * Where a translated packet goes next (bpf/lib/hooks.h): back out of the interface it came in on;
 * forwarded by the datapath (bpf_fib_lookup + redirect: the node's own packets, and any packet whose
 * source became a node address, which the stack would drop as a martian); forwarded by the FIB
 * lookup where it finds a neighbour, else by the stack (the uplink); or to the stack (a pod's veth).
 * For this node: delivered locally by the stack (`local`), or, when its source is a node address
 * too, in through lo (`lo`, lib/local.h), the one device where the stack takes a node source.
 */
export type Delivery = 'bounce' | 'datapath' | 'fib-or-stack' | 'stack' | 'local' | 'lo';

export interface Explanation {
  packet: ExplainInput;
  steps: Step[];
  verdict: Verdict;
  /** For forward and bounce verdicts with one outcome. */
  delivery?: Delivery;
  /** DropReason name when dropped or rejected. */
  dropReason?: string;
  /** The packet as it leaves, when one backend is certain. */
  translated?: Translation;
  /** A new flow chosen at random: the possible outcomes. */
  outcomes?: { backend: string; probability: number; translated: Translation; delivery: Delivery }[];
}

const PROTO: Record<Protocol, number> = { tcp: IPPROTO.TCP, udp: IPPROTO.UDP };

export class ExplainInputError extends Error {}

const endpoint = (b: Backend4) => `${b.addr}:${b.port}`;
const pct = (p: number) => {
  const x = p * 100;
  return `${Math.abs(x - Math.round(x)) < 1e-9 ? Math.round(x) : x.toFixed(1)}%`;
};

/** One walk: what every step reads, and the steps so far. */
interface Walk {
  readonly maps: MapReader;
  readonly node: NodeSettings;
  readonly input: ExplainInput;
  readonly proto: number;
  readonly now: bigint;
  readonly steps: Step[];
}

/** The frontend a packet hit: the key that found it and its master. */
interface Hit {
  readonly frontend: Svc4Key;
  readonly svc: Svc4Value;
}

interface Chosen {
  backendId: number;
  backend: Backend4;
}

const done = (w: Walk, e: Omit<Explanation, 'packet' | 'steps'>): Explanation => ({ packet: w.input, steps: w.steps, ...e });
const ended = (x: Chosen | Explanation | null): x is Explanation => x !== null && 'verdict' in x;

/** The datapath's walk for a first packet (bpf/lib/hooks.h → translate.h → lb.h), step by step. */
export function explainPacket(maps: MapReader, node: NodeSettings, input: ExplainInput): Explanation {
  checkInput(input);
  const w: Walk = { maps, node, input, proto: PROTO[input.proto], now: maps.nowNs(), steps: [] };
  if (!hookStep(w)) return done(w, { verdict: 'pass' });
  const hit = frontendStep(w);
  if (!hit) return explainReply(w);
  const { svc } = hit;
  const external = originStep(w, svc);
  if (!sourceRangeStep(w, svc)) return done(w, { verdict: 'drop', dropReason: 'SOURCE_RANGE' });
  const existing = conntrackStep(w);
  if (existing) return existing;
  const { scope, count } = scopeStep(w, svc, external);
  if (count === 0) return noEndpoints(w, svc, scope);
  let chosen: Chosen | Explanation | null = svc.flags & SvcFlags.AFFINITY ? affinityStep(w, svc, scope) : null;
  if (!chosen && external && svc.flags & SvcFlags.MAGLEV) chosen = maglevStep(w, svc, scope);
  if (!chosen) chosen = randomStep(w, hit, scope, count);
  if (ended(chosen)) return chosen;
  const translated = translation(w, chosen.backend, svc);
  const hairpin = isHairpin(input, chosen.backend);
  w.steps.push({ id: 'snat', summary: snatReason(w, chosen.backend, svc) });
  return finish(w, hairpin ? 'bounce' : 'forward', translated, deliveryOf(w, hairpin, translated));
}

function checkInput(input: ExplainInput): void {
  for (const a of [input.src, input.dst]) if (!isIPv4(a)) throw new ExplainInputError(`'${a}' is not an IPv4 address (the datapath is IPv4 only)`);
  for (const p of [input.sport, input.dport]) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new ExplainInputError(`port ${p} is not 1…65535`);
}

/** Which program sees the packet; false when none does (a hook that is not attached). */
function hookStep(w: Walk): boolean {
  const { input, node, steps } = w;
  // The node's packets to its own addresses take lo, not the service device (bpf/lib/hooks_node.h).
  const viaLo = input.ingress === 'host' && ownsAddr(w, input.dst);
  if (viaLo && node.hooks?.loEgress === false) {
    steps.push({ id: 'hook', summary: 'no program on lo: the node\'s own packets to its own addresses are not translated' });
    return false;
  }
  if (input.ingress === 'host' && !viaLo && node.hooks?.hostEgress === false) {
    steps.push({ id: 'hook', summary: 'no service device is attached (serviceInterface): the node\'s own packets to service addresses are not translated' });
    return false;
  }
  steps.push(
    input.ingress === 'pod'
      ? { id: 'hook', summary: 'tc ingress on the pod\'s host-side veth (tc_pod_ingress): the packet as the pod sent it' }
      : viaLo
        ? { id: 'hook', summary: 'tc egress on lo (tc_lo_egress): the node\'s packet to its own address (a NodePort here, or the answer of a hostNetwork endpoint of this node)' }
      : input.ingress === 'host'
        ? { id: 'hook', summary: 'tc egress on the service device (tc_host_egress): the node routes service addresses there, its own packets are translated on the way out' }
        : node.hooks?.xdp === false
          ? { id: 'hook', summary: 'tc ingress on the uplink (tc_uplink_ingress); no XDP program is attached' }
          : { id: 'hook', summary: 'XDP on the uplink (xdp_uplink); what XDP cannot finish goes on to tc ingress (tc_uplink_ingress), same logic' },
  );
  return true;
}

/** svc_lookup(): exact frontend, else a NodePort on one of this node's addresses. */
function frontendStep(w: Walk): Hit | null {
  const { maps, input, proto } = w;
  const exact: Svc4Key = { addr: input.dst, port: input.dport, proto, scope: SvcScope.ALL, backend_slot: 0, pad: 0 };
  let frontend = exact;
  let svc = maps.service(exact);
  let nodePortNote = '';
  if (!svc && maps.isNodeAddress(input.dst)) {
    frontend = { ...exact, addr: '0.0.0.0' };
    svc = maps.service(frontend);
    nodePortNote = ` (${input.dst} is a node address: NodePort 0.0.0.0:${input.dport})`;
  }
  const feText = `${frontend.addr}:${frontend.port}/${input.proto.toUpperCase()}`;
  if (!svc) {
    w.steps.push({
      id: 'frontend',
      summary: `miss: no frontend ${input.dst}:${input.dport}/${input.proto.toUpperCase()}${maps.isNodeAddress(input.dst) ? ` and no NodePort ${input.dport} on this node address` : ''}`,
      data: { hit: false },
    });
    return null;
  }
  const flags = flagNames(svc.flags, SvcFlags);
  const kind = kindName(svc.kind);
  w.steps.push({
    id: 'frontend',
    summary: `hit ${feText}${nodePortNote} → service id ${svc.svc_id}, ${kind}, ${svc.count} endpoint(s), ${svc.local_count} on this node${flags.length ? ` [${flags.join(',')}]` : ''}${svc.affinity_timeout ? `, affinity ${svc.affinity_timeout}s` : ''}`,
    data: { hit: true, frontend: feText, svcId: svc.svc_id, kind, count: svc.count, localCount: svc.local_count, flags, affinityTimeout: svc.affinity_timeout },
  });
  return { frontend, svc };
}

/** svc_external(): is the flow external traffic (externalTrafficPolicy applies)? */
function originStep(w: Walk, svc: Svc4Value): boolean {
  const { maps, input } = w;
  const clusterSource = input.ingress === 'uplink' && svc.kind !== SvcKind.CLUSTER_IP && (svc.flags & SvcFlags.DETECT_LOCAL) !== 0 && maps.inClusterCidrs(input.src);
  const external = input.ingress === 'uplink' && svc.kind !== SvcKind.CLUSTER_IP && !clusterSource;
  w.steps.push({
    id: 'origin',
    summary: external
      ? 'external traffic (from the uplink to a NodePort, LoadBalancer or external IP): externalTrafficPolicy applies'
      : clusterSource
        ? `from the uplink, but from the cluster CIDRs (${maps.clusterCidrs().join(', ')}): cluster traffic, every endpoint (externalTrafficPolicy does not narrow it)`
        : input.ingress === 'uplink'
        ? 'a ClusterIP reached from outside the node: internal traffic, internalTrafficPolicy applies'
        : input.ingress === 'host'
          ? 'from this node itself: internal traffic (externalTrafficPolicy does not narrow it)'
          : 'from a pod of this node: internal traffic',
    data: { external },
  });
  return external;
}

/** loadBalancerSourceRanges (a LoadBalancer with some): false when the source is not allowed. */
function sourceRangeStep(w: Walk, svc: Svc4Value): boolean {
  if (!(svc.flags & SvcFlags.SOURCE_RANGES && svc.kind === SvcKind.LOAD_BALANCER)) return true;
  const { maps, input } = w;
  const ranges = maps.sourceRanges(svc.svc_id);
  // The LB IP itself as source is always allowed (kube-proxy's KUBE-FW chain; translate.h).
  const allowed = input.src === input.dst || maps.sourceRangeAllows(svc.svc_id, input.src);
  w.steps.push({
    id: 'source-range',
    summary: input.src === input.dst ? `${input.src} is the load balancer IP itself: allowed whatever loadBalancerSourceRanges say` : allowed ? `${input.src} is within loadBalancerSourceRanges (${ranges.join(', ')})` : `${input.src} is not within loadBalancerSourceRanges (${ranges.join(', ') || 'none'}): dropped`,
    data: { allowed, ranges },
  });
  return allowed;
}

/** Conntrack: an existing flow keeps its translation while its backend exists (the walk ends); null: a new flow. */
function conntrackStep(w: Walk): Explanation | null {
  const { maps, input, proto, now, steps } = w;
  const ct = maps.conntrack({ saddr: input.src, daddr: input.dst, sport: input.sport, dport: input.dport, proto, dir: CtDir.FWD, pad: 0 });
  const live = ct && ct.expires_ns >= now;
  if (ct && live && !ctClosing(ct.state)) {
    const be = maps.backend(ct.backend_id);
    const left = Number((ct.expires_ns - now) / 1_000_000_000n);
    if (be) {
      const translated = { src: ct.nat_saddr, sport: ct.nat_sport, dst: ct.nat_daddr, dport: ct.nat_dport };
      steps.push({
        id: 'conntrack',
        summary: `existing flow (${ctStateName(proto, ct.state)}, expires in ${left}s): backend ${ct.backend_id} ${endpoint(be)}, translated as recorded${ct.flags & CtFlags.SNAT ? ', with SNAT' : ''}`,
        data: { existing: true, backendId: ct.backend_id, flags: flagNames(ct.flags, CtFlags), state: ctStateName(proto, ct.state), expiresInSeconds: left },
      });
      const hairpin = (ct.flags & CtFlags.HAIRPIN) !== 0;
      return finish(w, hairpin ? 'bounce' : 'forward', translated, deliveryOf(w, hairpin, translated));
    }
    steps.push({
      id: 'conntrack',
      summary: `existing flow, but its backend ${ct.backend_id} is gone: ${input.proto === 'tcp' ? 'a SYN starts over (other TCP segments are answered with a RST)' : 'UDP picks again'}`,
      data: { existing: true, backendGone: true, backendId: ct.backend_id },
    });
  } else {
    steps.push({
      id: 'conntrack',
      summary: ct && !live ? 'an expired entry (ignored, garbage collection removes it): a new flow' : ct ? 'a closing entry: a SYN reusing the port is a new flow' : 'no entry: a new flow',
      data: { existing: false },
    });
  }
  return null;
}

/** svc_new_flow(): the endpoints a new flow may go to, by traffic policy. */
function scopeStep(w: Walk, svc: Svc4Value, external: boolean): { scope: number; count: number } {
  const scope = external && svc.flags & SvcFlags.ETP_LOCAL ? SvcScope.LOCAL : svc.kind === SvcKind.CLUSTER_IP && svc.flags & SvcFlags.ITP_LOCAL ? SvcScope.LOCAL : SvcScope.ALL;
  const count = scope === SvcScope.LOCAL ? svc.local_count : svc.count;
  w.steps.push({
    id: 'scope',
    summary:
      scope === SvcScope.LOCAL
        ? `${external ? 'externalTrafficPolicy' : 'internalTrafficPolicy'} Local: the ${count} endpoint(s) on this node`
        : `all ${count} endpoint(s) of the service`,
    data: { scope: scope === SvcScope.LOCAL ? 'local' : 'all', count },
  });
  return { scope, count };
}

/** No endpoint to pick. SVC_F_REJECT: none anywhere (kube-proxy's REJECT); else a Local policy with none here. */
function noEndpoints(w: Walk, svc: Svc4Value, scope: number): Explanation {
  const { input, steps } = w;
  if (svc.flags & SvcFlags.REJECT) {
    steps.push({
      id: 'endpoints',
      summary: `the service has no endpoints: rejected (${input.proto === 'tcp' ? 'TCP RST' : 'ICMP port unreachable'} from ${input.dst}, back ${input.ingress === 'host' ? 'in to the node' : 'out of the interface it came in on'})`,
    });
    return done(w, { verdict: 'reject', dropReason: 'NO_ENDPOINTS' });
  }
  const local = scope === SvcScope.LOCAL;
  steps.push({ id: 'endpoints', summary: local ? 'no endpoint on this node under a Local policy: dropped' : 'no endpoint to choose from: dropped' });
  return done(w, { verdict: 'drop', dropReason: local ? 'NO_LOCAL_ENDPOINTS' : 'NO_ENDPOINTS' });
}

/** ClientIP affinity: the client's recent backend, if it may still take new flows. */
function affinityStep(w: Walk, svc: Svc4Value, scope: number): Chosen | null {
  const { maps, input, now, steps } = w;
  const a = maps.affinity(input.src, svc.svc_id);
  const be = a ? maps.backend(a.backend_id) : null;
  const age = a ? Number((now - a.last_seen_ns) / 1_000_000_000n) : 0;
  const fresh = a !== null && now - a.last_seen_ns <= BigInt(svc.affinity_timeout) * 1_000_000_000n;
  const eligible = be !== null && !(be.flags & BackendFlags.TERMINATING && !(svc.flags & SvcFlags.TERM_FALLBACK)) && !(scope === SvcScope.LOCAL && !(be.flags & BackendFlags.LOCAL));
  if (a && be && fresh && eligible) {
    steps.push({ id: 'affinity', summary: `ClientIP affinity: ${input.src} used backend ${a.backend_id} ${endpoint(be)} ${age}s ago (timeout ${svc.affinity_timeout}s): same backend`, data: { hit: true, backendId: a.backend_id } });
    return { backendId: a.backend_id, backend: be };
  }
  steps.push({
    id: 'affinity',
    summary: !a
      ? `ClientIP affinity: no recent backend for ${input.src}; the pick below is remembered for ${svc.affinity_timeout}s`
      : !fresh
        ? `ClientIP affinity: the last pick is ${age}s old, past the ${svc.affinity_timeout}s timeout: pick again`
        : `ClientIP affinity: backend ${a.backend_id} may not take new flows any more: pick again`,
    data: { hit: false },
  });
  return null;
}

/** External traffic to a Maglev service: the flow hash's entry names the backend (null: the service has no table). */
function maglevStep(w: Walk, svc: Svc4Value, scope: number): Chosen | Explanation | null {
  const { maps, input, proto } = w;
  const maglevTable = maps.maglevTable(svc.svc_id);
  if (!maglevTable) return null;
  const hash = flowHash4({ saddr: input.src, daddr: input.dst, sport: input.sport, dport: input.dport, proto });
  const mc = maglevChoice(maglevTable, hash, (id) => maps.backend(id), svc, scope);
  const shares = [...mc.shares].sort(([a], [b]) => a - b).map(([id, n]) => {
    const be = maps.backend(id);
    return `backend ${id} ${be ? endpoint(be) : '(missing)'}: ${n}/${mc.m} entries (${pct(n / mc.m)})`;
  });
  const probes = mc.probes.map((p) => `entry ${p.index} → backend ${p.backendId}${p.backend ? ` ${endpoint(p.backend)}` : ''}${p.ineligible ? ` (${p.ineligible}: next entry)` : ''}`);
  w.steps.push({
    id: 'backend',
    summary: mc.pick
      ? `Maglev: flow hash 0x${hash.toString(16).padStart(8, '0')} mod M=${mc.m} = entry ${mc.probes[0]!.index} → backend ${mc.pick.backendId} ${endpoint(mc.pick.backend)} (every node picks the same)`
      : `Maglev: flow hash 0x${hash.toString(16).padStart(8, '0')}: no eligible backend in ${mc.probes.length} entries: dropped`,
    details: [...probes, 'table shares:', ...shares.map((s) => '  ' + s)],
    data: { method: 'maglev', hash, m: mc.m, entry: mc.probes[0]!.index, probes: mc.probes.map((p) => ({ index: p.index, backendId: p.backendId, ineligible: p.ineligible })), backendId: mc.pick?.backendId ?? null },
  });
  if (!mc.pick) return done(w, { verdict: 'drop', dropReason: mc.dropReason! });
  return mc.pick;
}

/**
 * A random slot of `count` (lb_pick): one eligible backend is certain (returned); several, or a
 * chance of none, end the walk with every outcome and its probability.
 */
function randomStep(w: Walk, hit: Hit, scope: number, count: number): Chosen | Explanation {
  const { maps, input, steps } = w;
  const { frontend, svc } = hit;
  const slots = Array.from({ length: count }, (_, i) => {
    const v = maps.service({ ...frontend, scope, backend_slot: i + 1 });
    const backendId = v?.backend_id ?? 0;
    return { slot: i + 1, backendId, backend: backendId ? maps.backend(backendId) : null };
  });
  const rc = randomChoice(slots, svc, scope);
  const eligible = rc.candidates.filter((c) => c.probability > 0);
  const outcomes = eligible.map((c) => {
    const translated = translation(w, c.backend!, svc);
    const hairpin = isHairpin(input, c.backend!);
    return { backend: `${c.backendId} ${endpoint(c.backend!)}`, probability: c.probability, translated, delivery: deliveryOf(w, hairpin, translated) };
  });
  steps.push({
    id: 'backend',
    summary:
      eligible.length === 0
        ? `random slot of ${count}: no eligible backend: dropped`
        : eligible.length === 1
          ? `random slot of ${count}: always backend ${eligible[0]!.backendId} ${endpoint(eligible[0]!.backend!)}`
          : `random slot of ${count} (like KUBE-SVC's statistic rules): ${eligible.map((c) => `backend ${c.backendId} ${pct(c.probability)}`).join(', ')}`,
    details: rc.candidates.map((c: Candidate) => `slot ${c.slot} → backend ${c.backendId} ${c.backend ? endpoint(c.backend) : '(missing)'}${c.backend && c.backend.flags & BackendFlags.LOCAL ? ' [local]' : ''}: ${c.ineligible ? `${c.ineligible}, skipped to the next slot` : pct(c.probability)}`),
    data: {
      method: 'random',
      candidates: rc.candidates.map((c) => ({ slot: c.slot, backendId: c.backendId, ineligible: c.ineligible, probability: c.probability })),
      dropProbability: rc.dropProbability,
    },
  });
  if (eligible.length === 0) return done(w, { verdict: 'drop', dropReason: rc.dropReason ?? 'NO_ELIGIBLE_BACKEND' });
  if (eligible.length > 1 || rc.dropProbability > 0) {
    const snats = new Set(outcomes.map((o) => `${o.translated.src}`));
    steps.push({
      id: 'snat',
      summary:
        snats.size === 1 && snats.has(input.src)
          ? 'no SNAT: the client address is kept'
          : `source per backend: ${outcomes
              .map((o) => `${o.backend.split(' ')[0]} → ${o.translated.src === input.src ? 'kept' : `${o.translated.src} (${o.translated.dst === input.src && input.ingress !== 'host' ? 'hairpin: the client is this backend' : 'SNAT'})`}`)
              .join(', ')}`,
    });
    steps.push({ id: 'rewrite', summary: `DNAT to the chosen backend${rc.dropProbability > 0 ? `; ${pct(rc.dropProbability)} of new flows find no eligible backend (${rc.dropReason})` : ''}` });
    const deliveries = new Set(outcomes.map((o) => o.delivery));
    steps.push(deliveries.size === 1 ? deliverStep(outcomes[0]!.delivery) : { id: 'deliver', summary: `per backend: ${outcomes.map((o) => `${o.backend.split(' ')[0]} ${DELIVERY_TEXT[o.delivery]}`).join('; ')}` });
    return done(w, { verdict: outcomes.some((o) => o.delivery === 'bounce') ? 'bounce' : 'forward', outcomes });
  }
  return { backendId: eligible[0]!.backendId, backend: eligible[0]!.backend! };
}

type SnatRule = 'hairpin' | 'other-node' | 'host' | 'masquerade-all' | 'outside-cluster';

/** svc_snat_source(): which rule masquerades a new flow, in the C code's order, or null. */
function snatRule(w: Walk, be: Backend4, svc: Svc4Value): SnatRule | null {
  const { maps, node, input } = w;
  if (isHairpin(input, be)) return 'hairpin';
  if (input.ingress === 'uplink' && !(be.flags & BackendFlags.LOCAL)) return 'other-node';
  if (input.ingress === 'host') return input.src === node.nodeIp ? null : 'host';
  if (svc.flags & SvcFlags.MASQUERADE) return 'masquerade-all';
  if (svc.kind === SvcKind.CLUSTER_IP && svc.flags & SvcFlags.DETECT_LOCAL && !maps.inClusterCidrs(input.src)) return 'outside-cluster';
  return null;
}

function snatSource(w: Walk, be: Backend4, svc: Svc4Value): string | null {
  const rule = snatRule(w, be, svc);
  if (rule === null) return null;
  return rule === 'hairpin' ? (w.node.hairpinIp ?? '(hairpin address)') : (w.node.nodeIp ?? '(node address)');
}

function snatReason(w: Walk, be: Backend4, svc: Svc4Value): string {
  const rule = snatRule(w, be, svc);
  const to = snatSource(w, be, svc);
  switch (rule) {
    case null:
      if (w.input.ingress === 'host') return 'no SNAT: the node\'s own flow from its address keeps address and port (its socket owns the port; replies are recognised there)';
      return svc.kind === SvcKind.CLUSTER_IP && !(svc.flags & SvcFlags.DETECT_LOCAL)
        ? 'no SNAT: the client address is kept (no cluster CIDR configured: kube-proxy masquerades no ClusterIP source then)'
        : 'no SNAT: the client address is kept (the reply passes this node anyway)';
    case 'hairpin':
      return `hairpin (the pod reaches itself): source becomes ${to}, so that the reply comes back through its veth`;
    case 'other-node':
      return `from outside this node to a backend on another node: source becomes ${to}, so that the reply comes back through this node`;
    case 'host':
      return `the node's own traffic: source becomes ${to}, where the reply is recognised`;
    case 'masquerade-all':
      return `masqueradeAll (ClusterIP traffic): source becomes ${to}`;
    case 'outside-cluster':
      return `a ClusterIP from outside the cluster CIDRs (${w.maps.clusterCidrs().join(', ')}): source becomes ${to}`;
  }
}

function translation(w: Walk, be: Backend4, svc: Svc4Value): Translation {
  const snat = snatSource(w, be, svc);
  const range = `${w.node.snatPortMin ?? 61000}-${w.node.snatPortMax ?? 65535}`;
  return { src: snat ?? w.input.src, sport: snat ? range : w.input.sport, dst: be.addr, dport: be.port };
}

/** node_owns_addr(): the masquerade address, or one where NodePorts answer. */
function ownsAddr(w: Pick<Walk, 'maps' | 'node'>, addr: string): boolean {
  return addr === w.node.nodeIp || w.maps.isNodeAddress(addr);
}

/** svc_snat_source's hairpin: a client that is its own backend, never the node itself (origin FROM_HOST). */
function isHairpin(input: ExplainInput, be: Backend4): boolean {
  return be.addr === input.src && input.ingress !== 'host';
}

/** hooks.h's choice for a translated packet (fib.h's: a node-sourced packet for this node goes in through lo). */
function deliveryOf(w: Walk, hairpin: boolean, translated: Translation): Delivery {
  const { input } = w;
  const ours = (addr: string) => ownsAddr(w, addr);
  if (hairpin) return 'bounce';
  if (ours(translated.dst)) {
    // On lo's egress the packet keeps its local route: lo delivers it (hooks_node.h).
    if (input.ingress === 'host' && ours(input.dst)) return 'local';
    return input.ingress === 'host' || ours(translated.src) ? 'lo' : 'local';
  }
  if (input.ingress === 'host' || ours(translated.src)) return 'datapath';
  return input.ingress === 'pod' ? 'stack' : 'fib-or-stack';
}

const DELIVERY_TEXT: Record<Delivery, string> = {
  bounce: 'bounced back out of the interface it came in on (the client is its own backend)',
  datapath: 'forwarded by the datapath (bpf_fib_lookup + redirect): the node sent it, or its source is now a node address, which the stack would drop as a martian',
  stack: 'handed to the stack, which routes it to the backend like any packet from the pod',
  'fib-or-stack': 'forwarded by bpf_fib_lookup + redirect (XDP_TX / XDP_REDIRECT), or left to the stack when the lookup cannot finish (no neighbour yet, local delivery)',
  local: 'for this node (a hostNetwork endpoint here, or the node\'s own connection): delivered locally by the stack; an endpoint\'s answers are reversed on their way out (lo\'s, the uplink\'s or the pod veth\'s tc)',
  lo: 'for this node, from a node address: in through lo (redirected to lo\'s ingress), the one device where the stack accepts a node source (accept_local)',
};

function deliverStep(delivery: Delivery): Step {
  return { id: 'deliver', summary: DELIVERY_TEXT[delivery], data: { delivery } };
}

function finish(w: Walk, verdict: 'forward' | 'bounce', translated: Translation, delivery: Delivery): Explanation {
  const { input, steps } = w;
  const changes = [
    `destination ${input.dst}:${input.dport} → ${translated.dst}:${translated.dport} (DNAT)`,
    ...(translated.src !== input.src || translated.sport !== input.sport ? [`source ${input.src}:${input.sport} → ${translated.src}:${translated.sport} (SNAT)`] : []),
  ];
  steps.push({ id: 'rewrite', summary: changes.join('; '), data: { translated } });
  steps.push(deliverStep(delivery));
  return done(w, { verdict, translated, delivery });
}

/** Not a frontend: maybe the reply of a translated flow (svc_reply), else untouched. */
function explainReply(w: Walk): Explanation {
  const { maps, node, input, proto, now, steps } = w;
  // On lo (the node to its own address) replies are looked up: a hostNetwork endpoint answering.
  if (input.ingress === 'host' && !ownsAddr(w, input.dst)) {
    steps.push({ id: 'reply', summary: 'not a service address: passed untouched (the device drops what reaches it)' });
    return done(w, { verdict: 'pass' });
  }
  // On the uplink only packets to the node address are looked up as replies (masqueraded flows).
  if (input.ingress === 'uplink' && input.dst !== node.nodeIp) {
    steps.push({ id: 'reply', summary: `not to the node address${node.nodeIp ? ` ${node.nodeIp}` : ''}: not a reply of a masqueraded flow; passed untouched (routed by the stack)` });
    return done(w, { verdict: 'pass' });
  }
  const ct: Ct4Value | null = maps.conntrack({ saddr: input.src, daddr: input.dst, sport: input.sport, dport: input.dport, proto, dir: CtDir.REPLY, pad: 0 });
  if (!ct || ct.expires_ns < now) {
    steps.push({ id: 'reply', summary: `not the reply of a tracked flow${ct ? ' (its entry expired)' : ''}: passed untouched (no service traffic)`, data: { reply: false } });
    return done(w, { verdict: 'pass' });
  }
  const translated = { src: ct.nat_saddr, sport: ct.nat_sport, dst: ct.nat_daddr, dport: ct.nat_dport };
  steps.push({
    id: 'reply',
    summary: `reply of a tracked flow of service id ${ct.svc_id}: source ${input.src}:${input.sport} → ${ct.nat_saddr}:${ct.nat_sport}, destination ${input.dst}:${input.dport} → ${ct.nat_daddr}:${ct.nat_dport}`,
    data: { reply: true, svcId: ct.svc_id, translated },
  });
  const hairpin = (ct.flags & CtFlags.HAIRPIN) !== 0;
  const delivery = deliveryOf(w, hairpin, translated);
  steps.push(deliverStep(delivery));
  return done(w, { verdict: hairpin ? 'bounce' : 'forward', translated, delivery });
}
