/**
 * The ABI's numbers as people read them: protocols, service kinds, flag sets. One table each, so
 * that dumps, `bpfproxy services`, `explain` and the agent name things alike. (Drop reasons:
 * drop-reason.ts; conntrack states: ctStateName in constants.ts.)
 */
import { IPPROTO, SvcKind } from './constants.js';

const PROTOCOL_NAME = new Map<number, string>(Object.entries(IPPROTO).map(([name, value]) => [value, name]));

/** 'TCP', 'UDP', 'SCTP', 'ICMP' (the IPPROTO key), else the number. */
export function protocolName(proto: number): string {
  return PROTOCOL_NAME.get(proto) ?? String(proto);
}

/** svc_kind of each Kubernetes frontend kind (the model's FrontendKind). */
export const SVC_KIND_OF = {
  ClusterIP: SvcKind.CLUSTER_IP,
  NodePort: SvcKind.NODE_PORT,
  LoadBalancer: SvcKind.LOAD_BALANCER,
  ExternalIP: SvcKind.EXTERNAL_IP,
} as const;

const KIND_NAME = new Map<number, string>(Object.entries(SVC_KIND_OF).map(([name, value]) => [value, name]));

/** The Kubernetes name of a svc_kind ('ClusterIP', …), else 'kind N'. */
export function kindName(kind: number): string {
  return KIND_NAME.get(kind) ?? `kind ${kind}`;
}

/** The member of a C enum (as constants.ts holds it) with this value: 'CLUSTER_IP' for SVC_KIND_CLUSTER_IP. */
export function enumName(table: Record<string, number>, value: number): string | undefined {
  return Object.entries(table).find(([, v]) => v === value)?.[0];
}

/** The members of a flag enum (SvcFlags, BackendFlags, CtFlags) set in `flags`, in bit order. */
export function flagNames(flags: number, table: Record<string, number>): string[] {
  return Object.entries(table)
    .filter(([, bit]) => flags & bit)
    .map(([name]) => name);
}
