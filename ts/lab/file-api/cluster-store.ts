/**
 * The lab's "API server storage" in file mode: the directory the agents' file source watches
 * (/run/bpfproxy/labs/<lab>/cluster/), one YAML file per object — Services (with their allocations),
 * EndpointSlices, Nodes, and the Deployments `lab apply` was given (the agents ignore those).
 * Every write goes to a temporary name the file source does not read, then is renamed into place,
 * so an agent never sees half an object.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { KubernetesObject, V1Deployment, V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';

import { InvalidObjectError } from './allocate.js';

export type StoredKind = 'Service' | 'EndpointSlice' | 'Node' | 'Deployment';

/** A DNS subdomain (RFC 1123), what the API allows for object names and namespaces. */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export class ClusterStore {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /**
   * The file of one object. Names and namespaces become path parts, so only what the API allows
   * (DNS subdomains: lower-case letters, digits, '-' and '.') gets that far: a "../x" would write or
   * delete outside the cluster's directory.
   */
  static fileName(kind: StoredKind, namespace: string | undefined, name: string): string {
    for (const [what, value] of [['metadata.name', name], ['metadata.namespace', namespace ?? 'default']] as const) {
      if (!OBJECT_NAME.test(value) || value.includes('..')) throw new InvalidObjectError(`${kind} "${name}"`, what, `Invalid value: ${JSON.stringify(value)}: must be a lower-case DNS subdomain`);
    }
    return kind === 'Node' ? `node_${name}.yaml` : `${kind.toLowerCase()}_${namespace ?? 'default'}_${name}.yaml`;
  }

  private pathOf(obj: KubernetesObject): string {
    return join(this.dir, ClusterStore.fileName(obj.kind as StoredKind, obj.metadata?.namespace, obj.metadata?.name ?? ''));
  }

  /** Writes (or replaces) one object; returns false when the file already held exactly this. */
  write(obj: KubernetesObject): boolean {
    const path = this.pathOf(obj);
    const text = stringify(obj);
    if (existsSync(path) && readFileSync(path, 'utf8') === text) return false;
    const tmp = join(this.dir, `.${ClusterStore.fileName(obj.kind as StoredKind, obj.metadata?.namespace, obj.metadata?.name ?? '')}.${process.pid}.tmp`);
    writeFileSync(tmp, text);
    renameSync(tmp, path);
    return true;
  }

  /** Removes one object; returns false when there was none. */
  remove(kind: StoredKind, namespace: string | undefined, name: string): boolean {
    const path = join(this.dir, ClusterStore.fileName(kind, namespace, name));
    if (!existsSync(path)) return false;
    rmSync(path);
    return true;
  }

  private list<T extends KubernetesObject>(kind: StoredKind): T[] {
    const prefix = `${kind.toLowerCase()}_`;
    return readdirSync(this.dir)
      .filter((f) => f.startsWith(prefix) && f.endsWith('.yaml'))
      .sort()
      .map((f) => parse(readFileSync(join(this.dir, f), 'utf8')) as T);
  }

  services(): V1Service[] {
    return this.list<V1Service>('Service');
  }

  endpointSlices(): V1EndpointSlice[] {
    return this.list<V1EndpointSlice>('EndpointSlice');
  }

  nodes(): V1Node[] {
    return this.list<V1Node>('Node');
  }

  deployments(): V1Deployment[] {
    return this.list<V1Deployment>('Deployment');
  }
}
