/**
 * Deployments in the lab: a Deployment becomes `replicas` pods named `<deployment>-1`, `-2`, …, pod i
 * on node ((i − 1) mod N) + 1 so that replicas spread over the nodes, each running the hostname
 * server on every container port. Scaling adds the missing indices and terminates the highest ones
 * (they first become terminating endpoints, then are deleted after the grace period). A changed set
 * of container ports re-creates the pods; changed labels are applied in place. Pure: parse and plan.
 */
import type { V1Deployment } from '@kubernetes/client-node';

import { InvalidObjectError } from './allocate.js';
import type { PodPort, Protocol } from '../lab-state.js';

/** Kubernetes waits 30 s by default; the lab's pods stop at once when asked, so 1 s shows the state. */
export const DEFAULT_GRACE_SECONDS = 1;
export const MAX_GRACE_SECONDS = 60;
export const MAX_REPLICAS = 100;

export interface DeploymentSpec {
  name: string;
  namespace: string;
  replicas: number;
  selector: Record<string, string>;
  /** The pod template's labels. */
  labels: Record<string, string>;
  ports: PodPort[];
  gracePeriodSeconds: number;
  /** spec.template.spec.hostNetwork: the pods run in their node's namespace, with its address. */
  hostNetwork: boolean;
}

/** How a lab pod names the Deployment that owns it. */
export function ownerOf(d: Pick<DeploymentSpec, 'name' | 'namespace'>): string {
  return `Deployment/${d.namespace}/${d.name}`;
}

export function parseDeployment(obj: V1Deployment): DeploymentSpec {
  const name = obj.metadata?.name ?? '';
  const namespace = obj.metadata?.namespace ?? 'default';
  const invalid = (field: string, reason: string): never => {
    throw new InvalidObjectError(`Deployment "${name}"`, field, reason);
  };
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 50) invalid('metadata.name', `Invalid value: "${name}": a DNS-1123 label of at most 50 characters (the lab names pods <deployment>-N)`);
  const replicas = obj.spec?.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > MAX_REPLICAS) invalid('spec.replicas', `Invalid value: ${replicas}: must be 0…${MAX_REPLICAS} in the lab`);
  const selector = obj.spec?.selector?.matchLabels ?? {};
  if (Object.keys(selector).length === 0) invalid('spec.selector', 'Required value: the lab needs matchLabels');
  if (obj.spec?.selector?.matchExpressions?.length) invalid('spec.selector.matchExpressions', 'Unsupported value: the lab only matches matchLabels');
  const labels = obj.spec?.template?.metadata?.labels ?? {};
  if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) invalid('spec.template.metadata.labels', 'Invalid value: `selector` does not match template `labels`');
  const ports: PodPort[] = [];
  const containers = obj.spec?.template?.spec?.containers ?? [];
  if (containers.length === 0) invalid('spec.template.spec.containers', 'Required value');
  for (const [ci, c] of containers.entries()) {
    for (const [pi, p] of (c.ports ?? []).entries()) {
      const field = `spec.template.spec.containers[${ci}].ports[${pi}]`;
      const protocol = (p.protocol ?? 'TCP') as Protocol;
      if (protocol !== 'TCP' && protocol !== 'UDP') invalid(`${field}.protocol`, `Unsupported value: "${protocol}": the lab's pods serve TCP and UDP`);
      if (!Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535) invalid(`${field}.containerPort`, `Invalid value: ${p.containerPort}`);
      if (p.name !== undefined && ports.some((q) => q.name === p.name)) invalid(`${field}.name`, `Duplicate value: "${p.name}"`);
      ports.push({ port: p.containerPort, protocol, ...(p.name !== undefined && { name: p.name }) });
    }
  }
  if (ports.length === 0) invalid('spec.template.spec.containers[*].ports', "Required value: the lab's pods answer on their declared container ports; declare at least one");
  const grace = obj.spec?.template?.spec?.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
  if (!Number.isInteger(grace) || grace < 0 || grace > MAX_GRACE_SECONDS) invalid('spec.template.spec.terminationGracePeriodSeconds', `Invalid value: ${grace}: 0…${MAX_GRACE_SECONDS} in the lab`);
  const hostNetwork = obj.spec?.template?.spec?.hostNetwork ?? false;
  if (typeof hostNetwork !== 'boolean') invalid('spec.template.spec.hostNetwork', `Invalid value: ${String(hostNetwork)}`);
  return { name, namespace, replicas, selector: { ...selector }, labels: { ...labels }, ports, gracePeriodSeconds: grace, hostNetwork };
}

/** What the plan needs to know of an existing pod. */
export interface ExistingPod {
  name: string;
  owner?: string | undefined;
  ports: readonly PodPort[];
  labels: Readonly<Record<string, string>>;
  terminating?: boolean | undefined;
  hostNetwork?: boolean | undefined;
}

export interface PodToAdd {
  name: string;
  /** 1-based node index. */
  node: number;
  ports: PodPort[];
  labels: Record<string, string>;
  hostNetwork?: true;
}

export interface PodPlan {
  /** Pods to terminate (become terminating endpoints, then deleted). */
  terminate: string[];
  /** Pods to create, after the terminated ones are gone (a re-created pod keeps its name). */
  add: PodToAdd[];
  /** Pods whose labels change in place. */
  relabel: { name: string; labels: Record<string, string> }[];
}

export function podName(d: Pick<DeploymentSpec, 'name'>, index: number): string {
  return `${d.name}-${index}`;
}

const samePorts = (a: readonly PodPort[], b: readonly PodPort[]) => JSON.stringify(a) === JSON.stringify(b);
const sameLabels = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

export function planDeployment(dep: DeploymentSpec, pods: readonly ExistingPod[], nodeCount: number): PodPlan {
  const owner = ownerOf(dep);
  const plan: PodPlan = { terminate: [], add: [], relabel: [] };
  const mine = pods.filter((p) => p.owner === owner);
  for (const p of mine) {
    const index = Number(p.name.slice(dep.name.length + 1));
    const wanted = p.name === podName(dep, index) && index >= 1 && index <= dep.replicas;
    if (!wanted || p.terminating || !samePorts(p.ports, dep.ports) || (p.hostNetwork ?? false) !== dep.hostNetwork) plan.terminate.push(p.name);
    else if (!sameLabels(p.labels, dep.labels)) plan.relabel.push({ name: p.name, labels: { ...dep.labels } });
  }
  for (let i = 1; i <= dep.replicas; i++) {
    const name = podName(dep, i);
    const existing = pods.find((p) => p.name === name);
    if (existing && existing.owner !== owner) {
      throw new InvalidObjectError(`Deployment "${dep.name}"`, 'metadata.name', `its pod ${name} would take the name of a pod it does not own${existing.owner ? ` (${existing.owner})` : ''}`);
    }
    if (!existing || plan.terminate.includes(name)) plan.add.push({ name, node: ((i - 1) % nodeCount) + 1, ports: dep.ports.map((p) => ({ ...p })), labels: { ...dep.labels }, ...(dep.hostNetwork && { hostNetwork: true as const }) });
  }
  plan.terminate.sort(byIndex);
  plan.add.sort((a, b) => byIndex(a.name, b.name));
  return plan;
}

/** Every pod of a Deployment that is deleted. */
export function planDeletion(owner: string, pods: readonly ExistingPod[]): PodPlan {
  return { terminate: pods.filter((p) => p.owner === owner).map((p) => p.name).sort(byIndex), add: [], relabel: [] };
}

function byIndex(a: string, b: string): number {
  const n = (s: string) => Number(/-(\d+)$/.exec(s)?.[1] ?? 0);
  return n(a) - n(b) || a.localeCompare(b);
}
