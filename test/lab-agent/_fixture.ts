/** A lab with one agent per node in file mode, taken down after the test whether it passed or not. */
import type { ExecutionContext } from 'ava';
import type { V1Service } from '@kubernetes/client-node';

import type { NodeAgents, NodeAgentsOptions } from '../../ts/lab/agents.js';
import { clusterStoreOf } from '../../ts/lab/file-api/apply.js';
import { startFileCluster } from '../../ts/lab/file-api/file-cluster.js';
import type { Manifest } from '../../ts/lab/file-api/manifests.js';
import { runId } from '../../ts/lab/net/netns.js';
import { Lab, type LabOptions } from '../../ts/lab/topology.js';
import { hostnamesDeployment } from '../helpers/hostnames.js';

export async function agentLabFor(t: ExecutionContext, opts: Omit<LabOptions, 'name'> = {}, agentOpts: NodeAgentsOptions = {}): Promise<{ lab: Lab; agents: NodeAgents }> {
  let lab: Lab | undefined;
  t.teardown(async () => {
    await lab?.down();
  });
  lab = await Lab.up({ ...opts, name: `ta-${runId()}` });
  const agents = await startFileCluster(lab, agentOpts);
  return { lab, agents };
}

/** test/helpers/hostnames.ts's Deployment, as `lab apply` takes it. */
export function hostnamesManifest(replicas: number, opts?: Parameters<typeof hostnamesDeployment>[1]): Manifest {
  return { kind: 'Deployment', object: hostnamesDeployment(replicas, opts) };
}

export function hostnamesService(spec: NonNullable<V1Service['spec']> = {}): Manifest {
  const object: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'hostnames', namespace: 'default' },
    spec: { selector: { app: 'hostnames' }, ports: [{ protocol: 'TCP', port: 80, targetPort: 9376 as never }], ...spec },
  };
  return { kind: 'Service', object };
}

/** The Service as the lab stored it (allocated ClusterIP, node ports). */
export function liveService(lab: Lab, name = 'hostnames'): V1Service {
  const svc = clusterStoreOf(lab.status()).services().find((s) => s.metadata?.name === name);
  if (!svc) throw new Error(`no Service ${name} in lab ${lab.name}`);
  return svc;
}
