/**
 * `bpfproxy lab apply -f` and `lab delete -f` in file mode: the lab plays API server, cloud
 * controller, Deployment controller, kubelet and EndpointSlice controller, and writes what they would
 * store into the directory the agents watch (cluster-store.ts).
 *
 * Everything given is checked first (parsing, allocation, plans); if anything would be refused,
 * nothing changes. Then, in an order that never shows an agent a Service without the endpoints it
 * already has: new pods start, EndpointSlices are written before the Services that use them, pods
 * that go away turn into terminating endpoints, are deleted after their grace period, and the slices
 * are written once more.
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import { InvalidObjectError, allocateService } from './allocate.js';
import { ClusterStore } from './cluster-store.js';
import { ownerOf, parseDeployment, planDeletion, planDeployment, type DeploymentSpec, type PodPlan } from './deployments.js';
import { CONTROLLER_NAME, LABEL_MANAGED_BY, endpointSlicesFor, type SelectablePod } from './endpointslice-controller.js';
import type { LabState } from '../lab-state.js';
import { describe, type Manifest } from './manifests.js';
import { zoneOf } from '../node-objects.js';
import type { Lab } from '../topology.js';

export interface ApplyOptions {
  /** Progress lines as things happen (kubectl-like "service/hostnames created"). */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

const keyOf = (o: { metadata?: { namespace?: string; name?: string } }) => `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name}`;

/** The lab's object directory; only labs whose agents read files have one. */
export function clusterStoreOf(state: Pick<LabState, 'name' | 'cluster'>): ClusterStore {
  if (state.cluster?.api !== 'file') {
    throw new Error(`lab ${state.name} has no file source${state.cluster ? ` (its agents use the ${state.cluster.api} API: use \`bpfproxy lab kubectl\`)` : ' (it was brought up without agents)'}`);
  }
  return new ClusterStore(state.cluster.dir);
}

function selectable(lab: Lab): SelectablePod[] {
  return lab.pods.map((p) => ({
    name: p.name,
    namespace: p.namespace ?? 'default',
    node: p.node,
    address: p.address,
    labels: p.labels,
    ports: p.ports,
    terminating: p.terminating === true,
  }));
}

/**
 * The EndpointSlice controller's pass: the slices of every Service with a selector, from the pods
 * now; stale managed slices removed. `services` defaults to what the store holds.
 */
export function syncEndpointSlices(lab: Lab, store: ClusterStore, services: readonly V1Service[] = store.services()): void {
  const zones = new Map(lab.nodes.map((n) => [n.name, zoneOf(n)]));
  const pods = selectable(lab);
  const desired = services.flatMap((s) => endpointSlicesFor(s, pods, zones));
  const names = new Set(desired.map(keyOf));
  for (const slice of desired) store.write(slice);
  for (const slice of store.endpointSlices()) {
    if (slice.metadata?.labels?.[LABEL_MANAGED_BY] === CONTROLLER_NAME && !names.has(keyOf(slice))) {
      store.remove('EndpointSlice', slice.metadata.namespace, slice.metadata.name!);
    }
  }
}

/** "ClusterIP 198.19.1.1, 80/TCP→9376", plus node ports, ingress, external IPs, policies. */
export function describeService(s: V1Service): string {
  const spec = s.spec ?? {};
  const ports = (spec.ports ?? []).map((p) => `${p.port}/${p.protocol ?? 'TCP'}→${p.targetPort ?? p.port}${p.nodePort ? ` (node port ${p.nodePort})` : ''}`);
  const parts = [`${spec.type ?? 'ClusterIP'} ${spec.clusterIP ?? ''}`.trim(), ports.join(', ')];
  const ingress = (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter(Boolean);
  if (ingress.length > 0) parts.push(`ingress ${ingress.join(', ')}`);
  if (spec.loadBalancerSourceRanges?.length) parts.push(`source ranges ${spec.loadBalancerSourceRanges.join(', ')}`);
  if (spec.externalIPs?.length) parts.push(`external IPs ${spec.externalIPs.join(', ')}`);
  if (spec.externalTrafficPolicy === 'Local') parts.push('externalTrafficPolicy Local');
  if (spec.healthCheckNodePort) parts.push(`health check node port ${spec.healthCheckNodePort}`);
  if (spec.sessionAffinity === 'ClientIP') parts.push(`affinity ClientIP ${spec.sessionAffinityConfig?.clientIP?.timeoutSeconds}s`);
  return parts.join(', ');
}

interface Checked {
  services: { manifest: Manifest; live: V1Service; previous: V1Service | undefined }[];
  deployments: { manifest: Manifest; spec: DeploymentSpec; plan: PodPlan; existed: boolean; changed: boolean }[];
  slices: { manifest: Manifest; slice: V1EndpointSlice; changed: boolean }[];
}

/** Parses, allocates and plans everything; throws one error listing every problem, changing nothing. */
function check(lab: Lab, store: ClusterStore, manifests: readonly Manifest[]): Checked {
  const problems: string[] = [];
  const out: Checked = { services: [], deployments: [], slices: [] };
  const live = new Map(store.services().map((s) => [keyOf(s), s]));
  const storedDeployments = new Map(store.deployments().map((d) => [keyOf(d), d]));
  const storedSlices = new Map(store.endpointSlices().map((s) => [keyOf(s), s]));
  for (const m of manifests) {
    try {
      if (m.kind === 'Service') {
        const previous = live.get(keyOf(m.object));
        const allocated = allocateService(m.object, previous, [...live.values()]);
        live.set(keyOf(allocated), allocated);
        out.services = out.services.filter((s) => keyOf(s.live) !== keyOf(allocated));
        out.services.push({ manifest: m, live: allocated, previous });
      } else if (m.kind === 'Deployment') {
        const spec = parseDeployment(m.object);
        const plan = planDeployment(spec, lab.pods, lab.nodes.length);
        const stored = storedDeployments.get(keyOf(m.object));
        out.deployments = out.deployments.filter((d) => keyOf(d.manifest.object) !== keyOf(m.object));
        out.deployments.push({ manifest: m, spec, plan, existed: stored !== undefined, changed: JSON.stringify(stored) !== JSON.stringify(m.object) });
      } else {
        const slice = structuredClone(m.object);
        slice.kind = 'EndpointSlice';
        if (slice.metadata?.labels?.[LABEL_MANAGED_BY] === CONTROLLER_NAME) {
          throw new InvalidObjectError(`EndpointSlice "${slice.metadata.name}"`, `metadata.labels[${LABEL_MANAGED_BY}]`, 'slices of the EndpointSlice controller are written by the lab from the pods; drop the label');
        }
        if (slice.addressType !== 'IPv4') throw new InvalidObjectError(`EndpointSlice "${slice.metadata?.name}"`, 'addressType', `Unsupported value: "${slice.addressType}": the lab is IPv4`);
        out.slices.push({ manifest: m, slice, changed: JSON.stringify(storedSlices.get(keyOf(slice))) !== JSON.stringify(slice) });
      }
    } catch (e) {
      problems.push(`${describe(m)}: ${(e as Error).message}`);
    }
  }
  if (problems.length > 0) throw new Error(`nothing applied:\n  ${problems.join('\n  ')}`);
  return out;
}

/** Applies Deployments, Services and EndpointSlices; resolves with what happened, one line each. */
export async function applyManifests(lab: Lab, manifests: readonly Manifest[], opts: ApplyOptions = {}): Promise<string[]> {
  const store = clusterStoreOf(lab.status());
  const checked = check(lab, store, manifests);
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    opts.log?.(line);
  };
  const plans: { spec: DeploymentSpec; plan: PodPlan }[] = [];
  for (const d of checked.deployments) {
    store.write(d.manifest.object);
    for (const r of d.plan.relabel) lab.setPodLabels(r.name, r.labels);
    plans.push({ spec: d.spec, plan: d.plan });
    const scale = d.plan.add.length > 0 || d.plan.terminate.length > 0;
    say(`${describe(d.manifest)} ${!d.existed ? 'created' : d.changed ? 'configured' : 'unchanged'}${scale ? '' : ` (${d.spec.replicas} pods)`}`);
  }
  // New pods that take no name of a pod going away start now; the others after it is gone.
  const terminating = new Set(plans.flatMap((p) => p.plan.terminate));
  await addPods(lab, plans, (name) => !terminating.has(name), say);

  // Slices first, then the Services that select them: an agent never sees a new Service empty.
  const services = new Map(store.services().map((s) => [keyOf(s), s]));
  for (const s of checked.services) services.set(keyOf(s.live), s.live);
  syncEndpointSlices(lab, store, [...services.values()]);
  for (const s of checked.slices) store.write(s.slice);
  for (const s of checked.services) {
    const changed = store.write(s.live);
    say(`${describe(s.manifest)} ${s.previous ? (changed ? 'configured' : 'unchanged') : 'created'}: ${describeService(s.live)}`);
  }
  for (const s of checked.slices) say(`${describe(s.manifest)} ${s.changed ? 'configured' : 'unchanged'}`);

  await terminatePods(lab, store, plans, say, opts.signal);
  await addPods(lab, plans, (name) => terminating.has(name), say);
  syncEndpointSlices(lab, store);
  return lines;
}

/** Deletes what the manifests name (Deployments with their pods, Services with their slices, slices). */
export async function deleteManifests(lab: Lab, manifests: readonly Manifest[], opts: ApplyOptions = {}): Promise<{ lines: string[]; missing: string[] }> {
  const store = clusterStoreOf(lab.status());
  const lines: string[] = [];
  const missing: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    opts.log?.(line);
  };
  const plans: { spec: DeploymentSpec; plan: PodPlan }[] = [];
  for (const m of manifests) {
    const name = m.object.metadata!.name!;
    const namespace = m.object.metadata?.namespace ?? 'default';
    const kindName = m.kind === 'Deployment' ? 'deployment.apps' : m.kind === 'Service' ? 'service' : 'endpointslice.discovery.k8s.io';
    if (!store.remove(m.kind, namespace, name)) {
      missing.push(`${kindName} "${name}" not found`);
      continue;
    }
    if (m.kind === 'Deployment') {
      const owner = ownerOf({ name, namespace });
      plans.push({ spec: { name, namespace, replicas: 0, selector: {}, labels: {}, ports: [], gracePeriodSeconds: parseDeploymentGrace(m), hostNetwork: false }, plan: planDeletion(owner, lab.pods) });
    }
    say(`${kindName} "${name}" deleted`);
  }
  syncEndpointSlices(lab, store);
  await terminatePods(lab, store, plans, say, opts.signal);
  return { lines, missing };
}

function parseDeploymentGrace(m: Manifest): number {
  try {
    return m.kind === 'Deployment' ? parseDeployment(m.object).gracePeriodSeconds : 0;
  } catch {
    return 0;
  }
}

async function addPods(lab: Lab, plans: readonly { spec: DeploymentSpec; plan: PodPlan }[], which: (name: string) => boolean, say: (l: string) => void): Promise<void> {
  for (const { spec, plan } of plans) {
    for (const p of plan.add.filter((x) => which(x.name))) {
      const pod = await lab.addPod({ name: p.name, node: p.node, ports: p.ports, labels: p.labels, namespace: spec.namespace, owner: ownerOf(spec), ...(p.hostNetwork && { hostNetwork: true }) });
      say(`  pod/${pod.name} running on ${pod.node} at ${pod.address}`);
    }
  }
}

/** Terminating endpoints first; the pods go once the longest grace period is over. */
async function terminatePods(lab: Lab, store: ClusterStore, plans: readonly { spec: DeploymentSpec; plan: PodPlan }[], say: (l: string) => void, signal?: AbortSignal): Promise<void> {
  const doomed = plans.flatMap(({ plan }) => plan.terminate);
  if (doomed.length === 0) return;
  for (const name of doomed) lab.setPodTerminating(name);
  syncEndpointSlices(lab, store);
  const grace = Math.max(...plans.filter((p) => p.plan.terminate.length > 0).map((p) => p.spec.gracePeriodSeconds));
  say(`  pod/${doomed.join(', pod/')} terminating (grace period ${grace}s)`);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, grace * 1000);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    }, { once: true });
  });
  for (const name of doomed) await lab.removePod(name);
  syncEndpointSlices(lab, store);
  say(`  pod/${doomed.join(', pod/')} deleted`);
}
