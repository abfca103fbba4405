import type { V1EndpointSlice } from '@kubernetes/client-node';

import { compareIPv4Text, parseIPv4 } from '../util/ip.js';
import { unexpectedProblem, type ProblemList } from './problems.js';
import { isPort } from './service.js';
import { PROTOCOLS, type Protocol } from './types.js';

export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';

/** One endpoint of one service port, as kube-proxy's BaseEndpointInfo. */
export interface EndpointInfo {
  readonly address: string;
  readonly port: number;
  /** "<ip>:<port>", kube-proxy's Endpoint.String(). */
  readonly key: string;
  readonly nodeName: string | null;
  readonly zone: string | null;
  readonly local: boolean;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly zoneHints: ReadonlySet<string>;
  readonly nodeHints: ReadonlySet<string>;
}

/** Endpoints of one Service, by "<portName>/<protocol>" (slice ports are named after Service ports). */
export type ServiceEndpoints = Map<string, EndpointInfo[]>;

export function portKey(portName: string, protocol: Protocol): string {
  return `${portName}/${protocol}`;
}

export function serviceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/**
 * Merges EndpointSlices per Service and port the way kube-proxy's EndpointSliceCache does: a slice
 * belongs to the Service named by its kubernetes.io/service-name label; only the first address of
 * an endpoint counts; the same ip:port from several slices is kept once, preferring the copy that
 * says it is local. Slices are visited sorted by name so the result never depends on input order.
 */
export function collectEndpoints(
  slices: readonly V1EndpointSlice[],
  nodeName: string,
  problems: ProblemList,
): Map<string, ServiceEndpoints> {
  const byService = new Map<string, Map<string, Map<string, EndpointInfo>>>();
  const sorted = [...slices].sort((a, b) => compareText(sliceId(a), sliceId(b)));
  const duplicated = new Set<string>();
  for (let i = 1; i < sorted.length; i++) {
    if (sliceId(sorted[i]!) === sliceId(sorted[i - 1]!)) duplicated.add(sliceId(sorted[i]!));
  }

  for (const slice of sorted) {
    const namespace = slice.metadata?.namespace || 'default';
    const name = slice.metadata?.name ?? '';
    const report = (reason: string): void => problems.add({ kind: 'EndpointSlice', namespace, name, reason });
    if (duplicated.has(sliceId(slice))) {
      // Which copy is current is unknowable here; using neither keeps the result order-free.
      report('EndpointSlice listed more than once; all copies ignored');
      continue;
    }
    const serviceName = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
    if (serviceName === undefined || serviceName === '') {
      report(`no ${LABEL_SERVICE_NAME} label; ignored`);
      continue;
    }
    // IPv6 slices belong to the IPv6 family's proxier; FQDN slices are not proxied by anyone.
    if (slice.addressType !== 'IPv4') continue;

    // Each slice is read apart and only then merged: an exception (input the source's admission
    // check should have refused, or a bug) is that slice's problem and leaves no half of it.
    let read: SliceRead;
    const own: string[] = [];
    try {
      read = readSlice(slice, nodeName, (reason) => own.push(reason));
    } catch (e) {
      problems.add(unexpectedProblem('EndpointSlice', namespace, slice.metadata?.name, e));
      continue;
    }
    for (const reason of own) report(reason);
    const svcKey = serviceKey(namespace, serviceName);
    let ports = byService.get(svcKey);
    if (ports === undefined) byService.set(svcKey, (ports = new Map()));
    for (const [key, infos] of read) {
      let set = ports.get(key);
      if (set === undefined) ports.set(key, (set = new Map()));
      for (const info of infos) if (!set.has(info.key) || info.local) set.set(info.key, info);
    }
  }

  const result = new Map<string, ServiceEndpoints>();
  for (const [svcKey, ports] of byService) {
    const merged: ServiceEndpoints = new Map();
    for (const [key, set] of ports) {
      if (set.size > 0) merged.set(key, [...set.values()].sort(compareEndpoints));
    }
    result.set(svcKey, merged);
  }
  return result;
}

/** A slice's endpoints by port key, in slice order (merged by collectEndpoints). */
type SliceRead = Map<string, EndpointInfo[]>;

function readSlice(slice: V1EndpointSlice, nodeName: string, report: (reason: string) => void): SliceRead {
  const read: SliceRead = new Map();
  for (const port of slice.ports ?? []) {
    if (port.name === undefined || port.name === null) {
      // kube-proxy ignores such ports too; the slice controller always sets a name ('' allowed).
      report('a port has no name; ignored');
      continue;
    }
    const protocol = port.protocol ?? 'TCP';
    if (!PROTOCOLS.includes(protocol as Protocol)) {
      report(`port ${JSON.stringify(port.name)}: unknown protocol ${JSON.stringify(protocol)}; ignored`);
      continue;
    }
    if (!isPort(port.port)) {
      report(`port ${JSON.stringify(port.name)}: ${String(port.port)} is outside 1…65535; ignored`);
      continue;
    }
    const key = portKey(port.name, protocol as Protocol);
    let list = read.get(key);
    if (list === undefined) read.set(key, (list = []));

    for (const endpoint of slice.endpoints ?? []) {
      const address = endpoint.addresses?.[0];
      if (address === undefined) continue;
      if (parseIPv4(address) === undefined) {
        report(`endpoint address ${JSON.stringify(address)} is not an IPv4 address; ignored`);
        continue;
      }
      const conditions = endpoint.conditions ?? {};
      const local = endpoint.nodeName !== undefined && endpoint.nodeName === nodeName && nodeName !== '';
      list.push({
        address,
        port: port.port,
        // One flat string (a template literal makes cons strings): kept for every endpoint.
        key: [address, ':', port.port].join(''),
        nodeName: endpoint.nodeName ?? null,
        zone: endpoint.zone ?? null,
        local,
        // Unset conditions mean ready and serving, never terminating (EndpointConditions docs);
        // only a boolean counts (the admission check refuses anything else).
        ready: conditions.ready == null || conditions.ready === true,
        serving: conditions.serving == null || conditions.serving === true,
        terminating: conditions.terminating === true,
        zoneHints: hintSet(endpoint.hints?.forZones),
        nodeHints: hintSet(endpoint.hints?.forNodes),
      });
    }
  }
  return read;
}

export function compareEndpoints(a: { address: string; port: number }, b: { address: string; port: number }): number {
  return compareIPv4Text(a.address, b.address) || a.port - b.port;
}

// Most endpoints carry no hints: one shared empty set instead of two per endpoint, which the
// incremental model keeps for every endpoint of the cluster.
const NO_HINTS: ReadonlySet<string> = new Set();

function hintSet(hints: readonly { name: string }[] | undefined): ReadonlySet<string> {
  return hints === undefined || hints.length === 0 ? NO_HINTS : new Set(hints.map((h) => h.name));
}

function sliceId(slice: V1EndpointSlice): string {
  return `${slice.metadata?.namespace || 'default'}/${slice.metadata?.name ?? ''}`;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
