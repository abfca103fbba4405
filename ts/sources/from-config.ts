/**
 * The cluster source an agent's configuration names: a YAML directory, or the Kubernetes API
 * (a kubeconfig file, `--master` to override its server, or the in-cluster service account).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { FileSource } from './file-source.js';
import type { ClusterSource } from './source.js';

/** Which source an agent's configuration names (agent/config.ts resolves it from the file and flags). */
export type SourceConfig = { kind: 'kubernetes'; kubeconfig?: string; apiServer?: string } | { kind: 'file'; dir: string };

export interface SourceOptions {
  /** This node's name: the Kubernetes source watches its Node object. */
  nodeName: string;
  /** Problems and progress worth a log line (unreadable files, watch errors). */
  log: (message: string, fields?: Record<string, unknown>) => void;
}

/** Loaded on demand: @kubernetes/client-node takes seconds to import, and a file source needs none of it. */
export async function kubeConfigFor(source: Extract<SourceConfig, { kind: 'kubernetes' }>): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (source.kubeconfig) kc.loadFromFile(source.kubeconfig);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else if (process.env.KUBECONFIG || existsSync(join(homedir(), '.kube', 'config'))) kc.loadFromDefault();
  else if (!source.apiServer) {
    // loadFromDefault would settle for http://localhost:8080 and the agent would retry it forever.
    throw new Error(
      'kubernetes source: no kubeconfig (clientConnection.kubeconfig, KUBECONFIG or ~/.kube/config), not in a cluster (no KUBERNETES_SERVICE_HOST) and no apiServer: nothing to watch (sourceDir reads a directory of YAML instead)',
    );
  }
  if (source.apiServer) {
    // --master overrides the kubeconfig's server, as in kube-proxy.
    const cluster = kc.getCurrentCluster();
    const name = cluster?.name ?? 'master';
    const clusters = kc.clusters.filter((c) => c.name !== name);
    kc.clusters = [...clusters, { ...(cluster ?? { skipTLSVerify: false }), name, server: source.apiServer }];
    if (!cluster) {
      kc.contexts = [...kc.contexts, { name, cluster: name, user: kc.getCurrentUser()?.name ?? '' }];
      kc.setCurrentContext(name);
    }
  }
  if (!kc.getCurrentCluster()?.server) throw new Error('kubernetes source: no API server (give --kubeconfig, --master, or run in a cluster)');
  return kc;
}

export async function sourceFromConfig(source: SourceConfig, opts: SourceOptions): Promise<ClusterSource> {
  if (source.kind === 'file') {
    return new FileSource(source.dir, { onProblem: (file, reason) => opts.log('source file skipped', { file, reason }) });
  }
  const { KubeSource } = await import('./kube-source.js');
  return new KubeSource({ kubeConfig: await kubeConfigFor(source), nodeName: opts.nodeName, log: (m) => opts.log(m) });
}
