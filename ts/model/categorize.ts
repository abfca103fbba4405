import type { EndpointInfo } from './endpoints.js';
import type { TopologyMode } from './types.js';

export interface CategorizeInput {
  /** kube-proxy ServicePort.UsesClusterEndpoints(). */
  readonly usesClusterEndpoints: boolean;
  /** kube-proxy ServicePort.UsesLocalEndpoints(). */
  readonly usesLocalEndpoints: boolean;
  readonly nodeName: string;
  /** The node's topology.kubernetes.io/zone; '' when unknown. */
  readonly zone: string;
}

export interface Categorized {
  /** Usable for Cluster policy: ready (topology-filtered), else serving+terminating. */
  readonly cluster: readonly EndpointInfo[];
  /** Usable for Local policy: local ready, else local serving+terminating. */
  readonly local: readonly EndpointInfo[];
  /** Whether anything anywhere could serve: false means reject. */
  readonly hasAnyEndpoints: boolean;
  readonly topologyMode: TopologyMode;
}

/**
 * kube-proxy's CategorizeEndpoints (pkg/proxy/topology.go). Ready endpoints are used; only when
 * there are none are serving+terminating ones used, decided separately for the cluster-wide and
 * the node-local sets. Topology narrows the cluster set only (never the local one).
 */
export function categorizeEndpoints(endpoints: readonly EndpointInfo[], input: CategorizeInput): Categorized {
  let cluster: EndpointInfo[] = [];
  let local: EndpointInfo[] = [];
  let hasAnyEndpoints = false;
  let topologyMode: TopologyMode = 'None';

  if (input.usesClusterEndpoints) {
    topologyMode = topologyModeFromHints(endpoints, input.nodeName, input.zone);
    cluster = endpoints.filter((ep) => ep.ready && availableForTopology(ep, topologyMode, input.nodeName, input.zone));
    // A topology mode is only chosen when some ready endpoint matches it, so an empty set here
    // means nothing is ready anywhere.
    if (cluster.length === 0) cluster = endpoints.filter((ep) => ep.serving && ep.terminating);
    if (cluster.length > 0) hasAnyEndpoints = true;
  }

  if (input.usesLocalEndpoints) {
    let localReady = false;
    let localServingTerminating = false;
    for (const ep of endpoints) {
      if (ep.ready) {
        hasAnyEndpoints = true;
        if (ep.local) localReady = true;
      } else if (ep.serving && ep.terminating) {
        hasAnyEndpoints = true;
        if (ep.local) localServingTerminating = true;
      }
    }
    if (localReady) local = endpoints.filter((ep) => ep.local && ep.ready);
    else if (localServingTerminating) local = endpoints.filter((ep) => ep.local && ep.serving && ep.terminating);
  }

  return { cluster, local, hasAnyEndpoints, topologyMode };
}

/**
 * PreferSameNode when every ready endpoint has node hints and one names this node; else
 * PreferSameZone when every ready endpoint has zone hints and one names this zone; else None.
 * The hints already encode the Service's trafficDistribution (the EndpointSlice controller writes
 * them from it), so, like kube-proxy, the Service field itself is not consulted.
 */
export function topologyModeFromHints(endpoints: readonly EndpointInfo[], nodeName: string, zone: string): TopologyMode {
  let hasReady = false;
  let allHaveNodeHints = true;
  let hasForNode = false;
  let allHaveZoneHints = true;
  let hasForZone = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    hasReady = true;
    if (ep.nodeHints.size === 0) allHaveNodeHints = false;
    else if (ep.nodeHints.has(nodeName)) hasForNode = true;
    if (ep.zoneHints.size === 0) allHaveZoneHints = false;
    else if (ep.zoneHints.has(zone)) hasForZone = true;
  }
  if (!hasReady) return 'None';
  if (allHaveNodeHints && hasForNode) return 'PreferSameNode';
  if (allHaveZoneHints && hasForZone) return 'PreferSameZone';
  return 'None';
}

function availableForTopology(ep: EndpointInfo, mode: TopologyMode, nodeName: string, zone: string): boolean {
  switch (mode) {
    case 'None':
      return true;
    case 'PreferSameNode':
      return ep.nodeHints.has(nodeName);
    case 'PreferSameZone':
      return ep.zoneHints.has(zone);
  }
}
