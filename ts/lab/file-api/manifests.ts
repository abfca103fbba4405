/**
 * Reading what `lab apply -f` and `lab delete -f` are given: YAML (or JSON) with any number of
 * documents, `kind: List` included, holding Deployments, Services and EndpointSlices.
 */
import type { V1Deployment, V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

export type Manifest =
  | { kind: 'Deployment'; object: V1Deployment }
  | { kind: 'Service'; object: V1Service }
  | { kind: 'EndpointSlice'; object: V1EndpointSlice };

const KINDS: Record<Manifest['kind'], string> = { Deployment: 'apps/v1', Service: 'v1', EndpointSlice: 'discovery.k8s.io/v1' };

export class ManifestError extends Error {
  constructor(source: string, reason: string) {
    super(`${source}: ${reason}`);
    this.name = 'ManifestError';
  }
}

/** The objects in `text`, in order, namespace defaulted to "default"; throws on anything else. */
export function parseManifests(text: string, source: string): Manifest[] {
  const out: Manifest[] = [];
  const docs = parseAllDocuments(text);
  for (const [i, doc] of docs.entries()) {
    const where = docs.length > 1 ? `${source} (document ${i + 1})` : source;
    if (doc.errors.length > 0) throw new ManifestError(where, doc.errors.map((e) => e.message).join('; '));
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) throw new ManifestError(where, 'expected an object with kind and metadata');
    const obj = value as { kind?: string; apiVersion?: string; items?: unknown[] };
    const items = obj.kind === 'List' ? (obj.items ?? []) : [obj];
    for (const item of items) out.push(toManifest(item, where));
  }
  if (out.length === 0) throw new ManifestError(source, 'no objects');
  return out;
}

function toManifest(item: unknown, where: string): Manifest {
  const o = item as { kind?: string; apiVersion?: string; metadata?: { name?: string; namespace?: string } };
  const kind = o?.kind;
  if (kind !== 'Deployment' && kind !== 'Service' && kind !== 'EndpointSlice') {
    throw new ManifestError(where, `kind ${kind === undefined ? '(none)' : `'${kind}'`} is not something the lab runs (it takes ${Object.keys(KINDS).join(', ')})`);
  }
  if (o.apiVersion !== undefined && o.apiVersion !== KINDS[kind]) throw new ManifestError(where, `${kind} has apiVersion '${o.apiVersion}', expected ${KINDS[kind]}`);
  if (!o.metadata?.name) throw new ManifestError(where, `a ${kind} without metadata.name`);
  const object = structuredClone(o) as Manifest['object'];
  object.apiVersion = KINDS[kind];
  object.metadata!.namespace ??= 'default';
  return { kind, object } as Manifest;
}

/** `kind/name` as kubectl prints it. */
export function describe(m: Manifest): string {
  const prefix = m.kind === 'Deployment' ? 'deployment.apps' : m.kind === 'EndpointSlice' ? 'endpointslice.discovery.k8s.io' : 'service';
  const ns = m.object.metadata?.namespace;
  return `${prefix}/${m.object.metadata?.name}${ns && ns !== 'default' ? ` -n ${ns}` : ''}`;
}
