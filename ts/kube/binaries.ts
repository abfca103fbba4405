/**
 * Where the Kubernetes test binaries (etcd, kube-apiserver, kube-controller-manager, kubectl) are:
 * KUBEBUILDER_ASSETS when set (the envtest convention), else the per-version cache that
 * hack/k8s-test-binaries.sh fills. The script is the one source of truth for the pinned version.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const K8S_BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl'] as const;
export type K8sBinary = (typeof K8S_BINARIES)[number];

/** hack/k8s-test-binaries.sh, found upwards from this file (it runs from ts/ and from dist/ts/). */
export function binariesScript(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'hack', 'k8s-test-binaries.sh');
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error('hack/k8s-test-binaries.sh not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** The Kubernetes version the script builds: K8S_VERSION, else its pinned default. */
export function pinnedK8sVersion(): string {
  if (process.env.K8S_VERSION) return process.env.K8S_VERSION;
  const m = /^K8S_VERSION=\$\{K8S_VERSION:-(v[0-9.]+)\}/m.exec(readFileSync(binariesScript(), 'utf8'));
  if (!m?.[1]) throw new Error(`no pinned K8S_VERSION in ${binariesScript()}`);
  return m[1];
}

export function defaultCacheDir(version = pinnedK8sVersion()): string {
  const root =
    process.env.BPFPROXY_K8S_CACHE ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'bpfproxy', 'k8s');
  return join(root, version);
}

function holdsAll(dir: string): boolean {
  return K8S_BINARIES.every((b) => {
    try {
      accessSync(join(dir, b), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The assets directory if the binaries are already there (never builds). */
export function findAssets(): string | undefined {
  const assets = process.env.KUBEBUILDER_ASSETS;
  if (assets) return holdsAll(assets) ? assets : undefined;
  const dir = defaultCacheDir();
  return holdsAll(dir) && existsSync(join(dir, '.complete')) ? dir : undefined;
}

/**
 * The assets directory, running the build script when the binaries are missing (a cold build
 * takes minutes; its progress goes to `log`).
 */
export async function resolveAssets(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<string> {
  const found = findAssets();
  if (found) return found;
  const script = binariesScript();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let tail: string[] = [];
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n').filter(Boolean)) {
        log(line);
        tail = [...tail.slice(-19), line];
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const dir = out.trim().split('\n').pop() ?? '';
      if (code === 0 && dir && holdsAll(dir)) resolve(dir);
      else reject(new Error(`${script} failed (exit ${code}):\n${tail.join('\n')}`));
    });
  });
}
