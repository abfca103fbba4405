/**
 * The agent's RBAC exactly as `deploy/` ships it: the ServiceAccount, ClusterRole and
 * ClusterRoleBinding named `bpfproxy`, picked out of whatever YAML files deploy/ holds (the layout may
 * change, e.g. to kustomize bases), so that the lab's agents run with the shipped role and the lab
 * proves it sufficient.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseAllDocuments } from 'yaml';

export const AGENT_NAME = 'bpfproxy';
/** Where the ServiceAccount lives when the manifest leaves the namespace to kustomize. */
export const AGENT_NAMESPACE_DEFAULT = 'kube-system';

interface Doc {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  subjects?: Array<{ kind?: string; name?: string; namespace?: string }>;
}

/** The repository's deploy/ directory, found upwards from this file (ts/ or dist/ts/). */
export function deployDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'deploy')) && existsSync(join(dir, 'package.json'))) return join(dir, 'deploy');
    const up = dirname(dir);
    if (up === dir) throw new Error(`no deploy/ directory above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return yamlFiles(path);
      return /\.ya?ml$/.test(name) ? [path] : [];
    });
}

/** The three RBAC objects of the agent, with the ServiceAccount's namespace filled in. */
export function agentRbac(dir = deployDir()): { objects: Doc[]; serviceAccount: { namespace: string; name: string }; files: string[] } {
  const found = new Map<string, { doc: Doc; file: string }>();
  for (const file of yamlFiles(dir)) {
    for (const d of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const doc = d.toJS() as Doc | null;
      if (!doc?.kind || doc.metadata?.name !== AGENT_NAME) continue;
      if (!['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(doc.kind)) continue;
      if (found.has(doc.kind)) throw new Error(`deploy/: two ${doc.kind} objects named ${AGENT_NAME} (${found.get(doc.kind)!.file}, ${file})`);
      found.set(doc.kind, { doc, file });
    }
  }
  for (const kind of ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding']) {
    if (!found.has(kind)) throw new Error(`deploy/ (${dir}) has no ${kind} named ${AGENT_NAME}`);
  }
  const sa = found.get('ServiceAccount')!.doc;
  const namespace = sa.metadata?.namespace ?? AGENT_NAMESPACE_DEFAULT;
  sa.metadata = { ...sa.metadata, namespace };
  for (const s of found.get('ClusterRoleBinding')!.doc.subjects ?? []) if (s.kind === 'ServiceAccount' && !s.namespace) s.namespace = namespace;
  return {
    objects: [...found.values()].map((f) => f.doc),
    serviceAccount: { namespace, name: sa.metadata.name ?? AGENT_NAME },
    files: [...new Set([...found.values()].map((f) => f.file))],
  };
}
