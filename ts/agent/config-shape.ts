/**
 * The types a configuration file's fields must have, checked before anything is resolved: a wrong
 * type is named as such ("masqueradeAll: expected true or false, got the string \"false\"")
 * instead of failing later, deeper and vaguer ("clusterCIDR.split is not a function"). Fields not
 * listed here are left to their own checks. Also the floors below which a value makes no working
 * node: a zero sync period (a busy loop) and maps too small to hold a cluster.
 */
type Shape = 'string' | 'boolean' | 'integer' | 'duration' | 'string[]' | 'object';

const FIELDS: Record<string, Shape> = {
  apiVersion: 'string',
  kind: 'string',
  clusterCIDR: 'string',
  nodePortAddresses: 'string[]',
  masqueradeAll: 'boolean',
  syncPeriod: 'duration',
  minSyncPeriod: 'duration',
  conntrack: 'object',
  'conntrack.tcpEstablishedTimeout': 'duration',
  'conntrack.tcpCloseWaitTimeout': 'duration',
  'conntrack.udpTimeout': 'duration',
  'conntrack.udpStreamTimeout': 'duration',
  hostnameOverride: 'string',
  healthzBindAddress: 'string',
  metricsBindAddress: 'string',
  clientConnection: 'object',
  'clientConnection.kubeconfig': 'string',
  apiServer: 'string',
  sourceDir: 'string',
  bpffsDir: 'string',
  uplinkInterface: 'string',
  uplinkInterfaces: 'string[]',
  serviceInterface: 'string',
  serviceCIDRs: 'string[]',
  podInterfacePattern: 'string',
  xdpMode: 'string',
  maglevTableSize: 'integer',
  snatPortRange: 'string',
  mapSizes: 'object',
  'mapSizes.services': 'integer',
  'mapSizes.backends': 'integer',
  'mapSizes.conntrack': 'integer',
  'mapSizes.affinity': 'integer',
  'mapSizes.snat': 'integer',
};

/**
 * The smallest map sizes accepted: below, a map fills with the first few Services or flows (a size
 * of 1 used to be taken). Low enough for tests that fill a map on purpose.
 */
export const MAP_SIZE_FLOORS: Readonly<Record<string, number>> = { services: 8, backends: 8, conntrack: 1024, affinity: 64 };

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${String(v)}`;
}

const EXPECTED: Record<Shape, string> = {
  string: 'a string',
  boolean: 'true or false',
  integer: 'an integer',
  duration: 'a duration such as 30s, 1h30m or 500ms',
  'string[]': 'a list of strings',
  object: 'a mapping',
};

function fits(shape: Shape, v: unknown): boolean {
  switch (shape) {
    case 'string':
      return typeof v === 'string';
    case 'boolean':
      return typeof v === 'boolean';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'duration':
      return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
    case 'string[]':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
  }
}

/** Every field of the file whose value has the wrong type, as "path: expected X, got Y". */
export function configShapeProblems(file: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const walk = (obj: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(obj)) {
      const path = prefix + k;
      const shape = FIELDS[path];
      if (shape === undefined || v === undefined) continue;
      if (!fits(shape, v)) problems.push(`${path}: expected ${EXPECTED[shape]}, got ${describe(v)}`);
      else if (shape === 'object') walk(v as Record<string, unknown>, `${path}.`);
    }
  };
  walk(file, '');
  return problems;
}
