/**
 * A lab in file mode, what `bpfproxy lab up` makes by default: the lab's object directory
 * (/run/bpfproxy/labs/<lab>/cluster/) with a Node object per node, and one agent per node reading it.
 * `lab apply` then plays the API server and controllers into the same directory (apply.ts).
 */
import { join } from 'node:path';

import { NodeAgents, type NodeAgentsOptions } from '../agents.js';
import { ClusterStore } from './cluster-store.js';
import { nodeObject } from '../node-objects.js';
import type { Lab } from '../topology.js';

export function clusterDirOf(lab: Lab): string {
  return join(lab.status().runDir, 'cluster');
}

export async function startFileCluster(lab: Lab, opts: NodeAgentsOptions = {}): Promise<NodeAgents> {
  const dir = clusterDirOf(lab);
  const store = new ClusterStore(dir);
  for (const node of lab.nodes) store.write(nodeObject(node));
  return NodeAgents.start(lab, { kind: 'file', dir }, opts);
}
