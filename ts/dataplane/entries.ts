/**
 * The desired contents of the control-plane maps, computed from the model's desired state: a pure
 * function (no I/O), so the golden tests and the reconciler see the same thing. Keys and values
 * are encoded with the ABI codecs; entries without a natural index are indexed by bin(key), the
 * form the reconciler's shadow of the maps holds keys in.
 */
import { backend4, nodeaddr4Value, srcr4Key, svc4Key, svc4Value } from '../abi/layouts.js';
import { fieldSpan, ipv4, u8, type StructCodec } from '../abi/codec.js';
import { BackendFlags, IPPROTO, SvcFlags, SvcScope } from '../abi/constants.js';
import { SVC_KIND_OF } from '../abi/names.js';
import { maglevTableFor } from '../model/maglev-tables.js';
import type { DesiredBackend, DesiredFrontend, DesiredState, FrontendKind, Protocol } from '../model/types.js';

export interface Entry {
  key: Buffer;
  value: Buffer;
}

/** One frontend's svc4_v1 entries: the master and its slots, written in a safe order. */
export interface FrontendEntries {
  frontend: string;
  svcId: number;
  master: Entry;
  slots: Entry[];
}

export interface DesiredEntries {
  frontends: Map<string, FrontendEntries>;
  /** be_v1 by backend id. */
  backends: Map<number, Entry>;
  /** srcr4_v1 by bin(key). */
  sourceRanges: Map<string, Entry>;
  /** nodeaddr4_v1 by address. */
  nodeAddresses: Map<string, Entry>;
  /** maglev_v1: svc id → table of backend ids. */
  maglev: Map<number, Uint32Array>;
}

/**
 * A key or value in Node's shared Buffer pool (zeroed, then encoded). codec.encode's Buffer.alloc
 * gives every Buffer an ArrayBuffer of its own, a backing store allocated outside the JS heap;
 * a full sync makes one per key and per value (over a million at 30k Services × 10 endpoints),
 * which leaves the process's malloc arenas large long after the entries are garbage.
 */
function encode<T>(codec: StructCodec<T>, value: Partial<T>): Buffer {
  const buf = Buffer.allocUnsafe(codec.size).fill(0);
  codec.encodeInto(value, buf, 0);
  return buf;
}

/**
 * A key (or value) as the reconciler's shadow holds it: a latin1 string, one character per byte.
 * The most compact string V8 has (a one-byte string of n characters), half of a hex string, and
 * exact both ways; at scale the shadow holds a million of them.
 */
export function bin(b: Buffer): string {
  return b.toString('latin1');
}

export function unbin(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

function u32Key(v: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt32LE(v, 0);
  return buf;
}

const PROTO: Record<Protocol, number> = IPPROTO;
const KIND: Record<FrontendKind, number> = SVC_KIND_OF;
/** A slot's backend_id (what computeEntries reads back from the encoded slots). */
const SLOT_BACKEND_ID = fieldSpan(svc4Value, 'backend_id').offset;

/** Frontends the datapath can serve: SCTP is passed through untouched (docs/datapath.md). */
export function servedFrontends(state: DesiredState): DesiredFrontend[] {
  return state.frontends.filter((f) => f.protocol !== 'SCTP');
}

function frontendFlags(f: DesiredFrontend): number {
  let flags = 0;
  if (f.kind !== 'ClusterIP' && f.externalTrafficPolicy === 'Local') flags |= SvcFlags.ETP_LOCAL;
  if (f.kind === 'ClusterIP' && f.internalTrafficPolicy === 'Local') flags |= SvcFlags.ITP_LOCAL;
  if (f.sessionAffinity) flags |= SvcFlags.AFFINITY;
  if (f.loadBalancerSourceRanges.length > 0) flags |= SvcFlags.SOURCE_RANGES;
  if (f.action === 'reject') flags |= SvcFlags.REJECT;
  if (f.maglev) flags |= SvcFlags.MAGLEV;
  if (f.kind === 'ClusterIP' && f.masquerade === 'all') flags |= SvcFlags.MASQUERADE;
  if (f.detectLocal) flags |= SvcFlags.DETECT_LOCAL;
  return flags;
}

/** Backend id of "ip:port" (how frontends list endpoints) under a protocol. */
export type BackendIdOf = (endpoint: string, protocol: Protocol) => number;

/** A served frontend's svc4_v1 master and slots. */
export function frontendEntries(f: DesiredFrontend, idOf: BackendIdOf): FrontendEntries {
  const all = f.clusterEndpoints.map((ep) => idOf(ep, f.protocol));
  const local = f.localEndpoints.map((ep) => idOf(ep, f.protocol));
  const proto = PROTO[f.protocol];
  const slotEntry = (scope: number, slot: number, backendId: number): Entry => ({
    key: encode(svc4Key, { addr: f.address, port: f.port, proto, scope, backend_slot: slot }),
    value: encode(svc4Value, { backend_id: backendId, svc_id: f.serviceId }),
  });
  return {
    frontend: f.key,
    svcId: f.serviceId,
    master: {
      key: frontendMasterKey(f),
      value: encode(svc4Value, {
        svc_id: f.serviceId,
        affinity_timeout: f.sessionAffinity?.timeoutSeconds ?? 0,
        count: all.length,
        local_count: local.length,
        flags: frontendFlags(f),
        kind: KIND[f.kind],
      }),
    },
    slots: [...all.map((id, i) => slotEntry(SvcScope.ALL, i + 1, id)), ...local.map((id, i) => slotEntry(SvcScope.LOCAL, i + 1, id))],
  };
}

export function frontendMasterKey(f: DesiredFrontend): Buffer {
  return encode(svc4Key, { addr: f.address, port: f.port, proto: PROTO[f.protocol], scope: SvcScope.ALL, backend_slot: 0 });
}

/** Backend ids a served frontend can pick for new flows. */
export function selectableIds(f: DesiredFrontend, idOf: BackendIdOf): number[] {
  return [...f.clusterEndpoints, ...f.localEndpoints].map((ep) => idOf(ep, f.protocol));
}

/** srcr4_v1 entries of a LoadBalancer frontend with source ranges. */
export function sourceRangeEntries(f: DesiredFrontend): Entry[] {
  return f.loadBalancerSourceRanges.map((cidr) => {
    const [addr, len] = cidr.split('/') as [string, string];
    return { key: encode(srcr4Key, { prefixlen: 32 + Number(len), svc_id: f.serviceId, addr }), value: u8.encode(1) };
  });
}

/** be_v1 entry; a backend no frontend can pick for new flows is marked terminating. */
export function backendEntry(b: DesiredBackend, selectable: boolean): Entry {
  const flags = (b.local ? BackendFlags.LOCAL : 0) | (selectable ? 0 : BackendFlags.TERMINATING);
  return { key: u32Key(b.id), value: encode(backend4, { addr: b.address, port: b.port, proto: PROTO[b.protocol], flags }) };
}

export function nodeAddressEntries(addresses: readonly string[]): Map<string, Entry> {
  return new Map(addresses.map((a) => [a, { key: ipv4.encode(a), value: nodeaddr4Value.encode({ flags: 0 }) }]));
}

export function computeEntries(state: DesiredState, maglevTableSize: number): DesiredEntries {
  const backendsByKey = new Map<string, DesiredBackend>(state.backends.map((b) => [b.key, b]));
  const backendsById = new Map<number, DesiredBackend>(state.backends.map((b) => [b.id, b]));
  // Frontends list endpoints as "ip:port"; backends are keyed "ip:port/PROTOCOL".
  const idOf: BackendIdOf = (endpoint, protocol) => {
    const b = backendsByKey.get(`${endpoint}/${protocol}`) ?? backendsByKey.get(endpoint);
    if (!b) throw new RangeError(`frontend names unknown backend ${endpoint}/${protocol}`);
    return b.id;
  };

  const served = servedFrontends(state);
  const selectable = new Set<number>();
  const frontends = new Map<string, FrontendEntries>();
  const sourceRanges = new Map<string, Entry>();
  for (const f of served) {
    const fe = frontendEntries(f, idOf);
    // The slots name exactly selectableIds(f): read them back rather than look every id up twice.
    for (const slot of fe.slots) selectable.add(slot.value.readUInt32LE(SLOT_BACKEND_ID));
    frontends.set(f.key, fe);
    for (const e of sourceRangeEntries(f)) sourceRanges.set(bin(e.key), e);
  }

  const backends = new Map<number, Entry>();
  for (const b of state.backends) {
    if (b.protocol === 'SCTP') continue;
    backends.set(b.id, backendEntry(b, selectable.has(b.id)));
  }

  // Where NodePorts answer: only needed, and only written, while some NodePort exists.
  const anyNodePort = served.some((f) => f.kind === 'NodePort');
  const nodeAddresses = nodeAddressEntries(anyNodePort ? state.nodePortAddresses : []);

  const maglev = new Map<number, Uint32Array>();
  const maglevIds = new Set(served.filter((f) => f.maglev).map((f) => f.serviceId));
  for (const s of state.services) {
    if (!maglevIds.has(s.id)) continue;
    const table = maglevTableFor(s, backendsById, maglevTableSize);
    if (table) maglev.set(s.id, table);
  }
  return { frontends, backends, sourceRanges, nodeAddresses, maglev };
}
