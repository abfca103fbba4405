/**
 * The agent's sync in one step, for tests that program real maps: Services and EndpointSlices (as
 * objects or as YAML) → computeDesiredState → computeEntries → Reconciler.apply.
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

import { computeEntries } from '../../ts/dataplane/entries.js';
import type { ApplyResult, Reconciler } from '../../ts/dataplane/reconciler.js';
import { computeDesiredState, type DesiredState, type IdState, type NodeInfo, type ProxyConfig } from '../../ts/model/index.js';

export interface ClusterObjects {
  services: V1Service[];
  endpointSlices: V1EndpointSlice[];
}

/** The Services and EndpointSlices of a YAML stream (any number of documents; other kinds ignored). */
export function objectsOf(yaml: string): ClusterObjects {
  const docs = parseAllDocuments(yaml).map((d) => d.toJS() as { kind: string });
  return {
    services: docs.filter((d) => d.kind === 'Service') as V1Service[],
    endpointSlices: docs.filter((d) => d.kind === 'EndpointSlice') as V1EndpointSlice[],
  };
}

export interface ProgramOptions {
  node: NodeInfo;
  config: ProxyConfig;
  /** The previous sync's ids, so that ids stay put across syncs as in the agent. */
  previousIds?: IdState;
}

/** Programs `objects` into the reconciler's maps; Maglev tables of the config's size. */
export function program(reconciler: Reconciler, objects: string | ClusterObjects, opts: ProgramOptions): { state: DesiredState; result: ApplyResult } {
  const state = computeDesiredState({
    ...(typeof objects === 'string' ? objectsOf(objects) : objects),
    node: opts.node,
    config: opts.config,
    ...(opts.previousIds ? { previousIds: opts.previousIds } : {}),
  });
  return { state, result: reconciler.apply(computeEntries(state, opts.config.maglevTableSize)) };
}
