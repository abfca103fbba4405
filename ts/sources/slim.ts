/**
 * Sources hand the agent slim copies of API objects: only the fields the model (ts/model), the
 * node view (ts/agent/node-info.ts) and the syncer read, like client-go's SetTransform /
 * controller-runtime's TransformStripManagedFields, but keeping a list of what stays rather than of
 * what goes. A real Service or EndpointSlice is mostly managedFields, annotations, targetRefs and
 * status the proxy never looks at; the agent holds every object of the cluster, so that is most of
 * its memory for objects.
 *
 * Values are copied as they are, malformed ones included (a string where a list belongs, null): the
 * model validates and reports them, and must decide the same on the slim copy as on the original.
 * test/sources/slim.test.ts checks that computeDesiredState gives the same result for both; a model
 * that starts reading a field dropped here fails that test until the field is added below.
 */
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

/**
 * What to keep of a value: `true` the value as it is; `'shared'` the same, a string of few distinct
 * values (names of nodes, zones, protocols…) shared between objects; `{ key: Shape }` an object
 * with only these keys; `[Shape]` a list, each element kept by Shape; `{ [FIRST]: Shape }` only the
 * first element of a list; `Keys` a string map with only these keys.
 */
type Shape = true | 'shared' | Keys | First | readonly [Shape] | { readonly [key: string]: Shape };

class Keys {
  constructor(readonly keys: readonly string[]) {}
}
class First {
  constructor(readonly element: Shape) {}
}

// Label and annotation keys read (kept in sync with the model; the test notices drift).
const SERVICE_PROXY_NAME = 'service.kubernetes.io/service-proxy-name';
const HEADLESS = 'service.kubernetes.io/headless';
const SERVICE_NAME = 'kubernetes.io/service-name';
const ZONE = 'topology.kubernetes.io/zone';
const TRIGGER_TIME = 'endpoints.kubernetes.io/last-change-trigger-time';

/** kind, apiVersion, and the metadata every source and tracker uses (keys, relist diffs). */
const identity = { kind: 'shared', apiVersion: 'shared' } as const;
const meta = { name: true, namespace: 'shared', resourceVersion: true } as const;

const SERVICE: Shape = {
  ...identity,
  // creationTimestamp and uid decide frontend conflicts (the older Service wins).
  metadata: { ...meta, uid: true, creationTimestamp: true, labels: new Keys([SERVICE_PROXY_NAME, HEADLESS]) },
  spec: {
    type: 'shared',
    clusterIP: true,
    clusterIPs: [true],
    externalIPs: [true],
    loadBalancerSourceRanges: [true],
    externalTrafficPolicy: 'shared',
    internalTrafficPolicy: 'shared',
    sessionAffinity: 'shared',
    sessionAffinityConfig: { clientIP: { timeoutSeconds: true } },
    healthCheckNodePort: true,
    ports: [{ name: 'shared', protocol: 'shared', port: true, nodePort: true }],
  },
  status: { loadBalancer: { ingress: [{ ip: true, ipMode: 'shared' }] } },
};

const hints = [{ name: 'shared' }] as const;
const ENDPOINT_SLICE: Shape = {
  ...identity,
  metadata: { ...meta, labels: new Keys([SERVICE_NAME]), annotations: new Keys([TRIGGER_TIME]) },
  addressType: 'shared',
  ports: [{ name: 'shared', protocol: 'shared', port: true }],
  endpoints: [
    {
      // Only the first address counts (kube-proxy's EndpointSliceCache; the API's own advice).
      addresses: new First(true),
      nodeName: 'shared',
      zone: 'shared',
      conditions: { ready: true, serving: true, terminating: true },
      hints: { forZones: hints, forNodes: hints },
    },
  ],
};

const NODE: Shape = {
  ...identity,
  metadata: { ...meta, labels: new Keys([ZONE]), deletionTimestamp: true },
  spec: { podCIDR: true, podCIDRs: [true], taints: [{ key: 'shared', effect: 'shared' }] },
  status: { addresses: [{ type: 'shared', address: true }] },
};

const SERVICE_CIDR: Shape = { ...identity, metadata: meta, spec: { cidrs: [true] } };

/**
 * Shared strings: a table of the values seen at 'shared' leaves. JSON and YAML parsers make a new
 * string for every occurrence; 100 000 endpoints on 50 nodes need 50 node names, not 100 000. The
 * table is emptied when it grows large (a cluster whose "few" values are not few), which only
 * costs sharing, never correctness.
 */
const SHARED_LIMIT = 4096;
let shared = new Map<string, string>();

function share(s: string): string {
  const known = shared.get(s);
  if (known !== undefined) return known;
  if (shared.size >= SHARED_LIMIT) shared = new Map();
  shared.set(s, s);
  return s;
}

function keep(shape: Shape, value: unknown): unknown {
  if (shape === true) return value;
  if (shape === 'shared') return typeof value === 'string' ? share(value) : value;
  // Anything that is not the object or list the shape expects is kept as it is, for the model to judge.
  if (value === null || typeof value !== 'object') return value;
  if (shape instanceof First) return Array.isArray(value) ? value.slice(0, 1).map((v: unknown) => keep(shape.element, v)) : value;
  if (Array.isArray(shape)) return Array.isArray(value) ? value.map((v: unknown) => keep(shape[0] as Shape, v)) : value;
  if (Array.isArray(value)) return value;
  const source = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  if (shape instanceof Keys) {
    let any = false;
    for (const k of shape.keys) {
      if (source[k] !== undefined) {
        out[k] = source[k];
        any = true;
      }
    }
    // A map with none of the keys read is the same to every reader as no map.
    return any ? out : undefined;
  }
  for (const k of Object.keys(shape)) {
    const v = source[k];
    if (v === undefined) continue;
    const kept = keep((shape as Record<string, Shape>)[k]!, v);
    if (kept !== undefined) out[k] = kept;
  }
  return out;
}

export function slimService(service: V1Service): V1Service {
  return keep(SERVICE, service) as V1Service;
}

export function slimEndpointSlice(slice: V1EndpointSlice): V1EndpointSlice {
  return keep(ENDPOINT_SLICE, slice) as V1EndpointSlice;
}

export function slimNode(node: V1Node): V1Node {
  return keep(NODE, node) as V1Node;
}

export type SlimKind = 'Service' | 'EndpointSlice' | 'Node' | 'ServiceCIDR';

/** The slim copy of an object of `kind`. */
export function slim<T>(kind: SlimKind, o: T): T {
  const shape = kind === 'Service' ? SERVICE : kind === 'EndpointSlice' ? ENDPOINT_SLICE : kind === 'ServiceCIDR' ? SERVICE_CIDR : NODE;
  return keep(shape, o) as T;
}
