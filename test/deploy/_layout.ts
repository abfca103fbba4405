/**
 * What deploy/ holds, file by file: kustomizations (rendered by kubectl), the files they consume,
 * the kind cluster config, and plain manifests. Every YAML file must be one of these, so that a new
 * file cannot escape the server-side dry run.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parse, parseAllDocuments } from 'yaml';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEPLOY = join(REPO, 'deploy');

export interface Layout {
  /** Directories with a kustomization.yaml, repo-relative. */
  kustomizations: string[];
  /** Files read by a kustomization (resources, patches, generator inputs). */
  consumed: Set<string>;
  /** kind.x-k8s.io configs (not Kubernetes API objects). */
  kindConfigs: string[];
  /** YAML files of Kubernetes objects that no kustomization reads: applied as they are. */
  plain: string[];
}

interface Kustomization {
  resources?: string[];
  patches?: Array<{ path?: string }>;
  patchesStrategicMerge?: string[];
  configMapGenerator?: Array<{ files?: string[]; envs?: string[] }>;
  secretGenerator?: Array<{ files?: string[]; envs?: string[] }>;
}

function walk(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? walk(path) : [path];
    });
}

const rel = (p: string) => relative(REPO, p);

/** The files (not directories) a kustomization reads, absolute. */
function consumedBy(dir: string, k: Kustomization): string[] {
  const generatorFiles = [...(k.configMapGenerator ?? []), ...(k.secretGenerator ?? [])].flatMap((g) => [
    // `key=path` or `path`
    ...(g.files ?? []).map((f) => f.slice(f.indexOf('=') + 1)),
    ...(g.envs ?? []),
  ]);
  const candidates = [
    ...(k.resources ?? []),
    ...(k.patches ?? []).flatMap((p) => (p.path ? [p.path] : [])),
    ...(k.patchesStrategicMerge ?? []),
    ...generatorFiles,
  ];
  return candidates.map((c) => resolve(dir, c)).filter((p) => {
    try {
      return statSync(p).isFile();
    } catch {
      throw new Error(`${rel(join(dir, 'kustomization.yaml'))}: ${rel(p)} does not exist`);
    }
  });
}

export function deployLayout(): Layout {
  const files = walk(DEPLOY);
  const kustomizations: string[] = [];
  const consumed = new Set<string>();
  for (const f of files.filter((p) => /(^|\/)kustomization\.ya?ml$/.test(p))) {
    const dir = dirname(f);
    kustomizations.push(rel(dir));
    for (const c of consumedBy(dir, parse(readFileSync(f, 'utf8')) as Kustomization)) consumed.add(rel(c));
  }
  const kindConfigs: string[] = [];
  const plain: string[] = [];
  for (const f of files.filter((p) => /\.ya?ml$/.test(p) && !/(^|\/)kustomization\.ya?ml$/.test(p))) {
    if (consumed.has(rel(f))) continue;
    const docs = parseAllDocuments(readFileSync(f, 'utf8')).map((d) => d.toJS() as { apiVersion?: string; kind?: string } | null);
    if (docs.some((d) => d?.apiVersion?.startsWith('kind.x-k8s.io/'))) kindConfigs.push(rel(f));
    else if (docs.every((d) => d === null || (d.apiVersion && d.kind))) plain.push(rel(f));
    else throw new Error(`${rel(f)}: neither a manifest, a kind config, nor read by a kustomization`);
  }
  return { kustomizations, consumed, kindConfigs, plain };
}
