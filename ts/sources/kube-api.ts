/** Kubernetes API resources as the agent uses them: what its ClusterRole must allow, exactly. */
export interface ApiResource {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly verbs: readonly string[];
}

/** The collection's path: /api/v1/services, /apis/discovery.k8s.io/v1/endpointslices… */
export function apiPath(api: ApiResource, namespace?: string): string {
  const base = api.group === '' ? `/api/${api.version}` : `/apis/${api.group}/${api.version}`;
  return `${base}${namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`}/${api.resource}`;
}
