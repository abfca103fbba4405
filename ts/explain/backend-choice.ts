/**
 * How the datapath picks a backend for a new flow (bpf/lib/lb.h lb_pick), computed rather than
 * sampled: a uniform start slot (or the flow hash's Maglev entry) and up to LB_PROBES neighbours
 * when the first backend is terminating, of another scope or missing.
 */
import { BackendFlags, SvcFlags, SvcScope } from '../abi/constants.js';
import type { Backend4, Svc4Value } from '../abi/layouts.js';

export const LB_PROBES = 4;

export type Ineligible = 'missing' | 'terminating' | 'not-local';

/** backend_eligible(): may a new flow of this service, in this scope, go there? */
export function ineligibility(be: Backend4 | null, svc: Svc4Value, scope: number): Ineligible | null {
  if (!be) return 'missing';
  if (be.flags & BackendFlags.TERMINATING && !(svc.flags & SvcFlags.TERM_FALLBACK)) return 'terminating';
  if (scope === SvcScope.LOCAL && !(be.flags & BackendFlags.LOCAL)) return 'not-local';
  return null;
}

export interface Candidate {
  slot: number;
  backendId: number;
  backend: Backend4 | null;
  ineligible: Ineligible | null;
  /** Probability that a new flow lands here. */
  probability: number;
}

export interface RandomChoice {
  candidates: Candidate[];
  /** Probability that no probe finds an eligible backend (the flow is dropped). */
  dropProbability: number;
  /** BACKEND_MISSING if a probe met a missing backend on the failing paths, else NO_ELIGIBLE_BACKEND. */
  dropReason: 'BACKEND_MISSING' | 'NO_ELIGIBLE_BACKEND' | null;
}

/** Uniform start slot s in 1..count, then s+1, s+2, s+3 (mod count): exact probabilities. */
export function randomChoice(slots: { slot: number; backendId: number; backend: Backend4 | null }[], svc: Svc4Value, scope: number): RandomChoice {
  const n = slots.length;
  const candidates: Candidate[] = slots.map((s) => ({ ...s, ineligible: ineligibility(s.backend, svc, scope), probability: 0 }));
  let drops = 0;
  let missingOnDrop = false;
  for (let start = 0; start < n; start++) {
    let chosen = -1;
    let missing = false;
    for (let i = 0; i < LB_PROBES; i++) {
      const c = candidates[(start + i) % n]!;
      if (c.ineligible === null) {
        chosen = (start + i) % n;
        break;
      }
      if (c.ineligible === 'missing') missing = true;
    }
    if (chosen >= 0) candidates[chosen]!.probability += 1 / n;
    else {
      drops++;
      missingOnDrop ||= missing;
    }
  }
  return { candidates, dropProbability: n === 0 ? 0 : drops / n, dropReason: drops === 0 ? null : missingOnDrop ? 'BACKEND_MISSING' : 'NO_ELIGIBLE_BACKEND' };
}

export interface MaglevChoice {
  hash: number;
  m: number;
  /** The entries probed, in order; the last is the pick unless every one was ineligible. */
  probes: { index: number; backendId: number; backend: Backend4 | null; ineligible: Ineligible | null }[];
  pick: { backendId: number; backend: Backend4 } | null;
  dropReason: 'BACKEND_MISSING' | 'NO_ELIGIBLE_BACKEND' | null;
  /** Entries per backend id: the table's shares. */
  shares: Map<number, number>;
}

export function maglevChoice(table: Uint32Array, hash: number, lookup: (id: number) => Backend4 | null, svc: Svc4Value, scope: number): MaglevChoice {
  const m = table.length;
  const probes: MaglevChoice['probes'] = [];
  let pick: MaglevChoice['pick'] = null;
  let missing = false;
  for (let i = 0; i < LB_PROBES; i++) {
    const index = ((hash + i) >>> 0) % m; // maglev_entry(table, start + i): the u32 sum, then % M
    const backendId = table[index] ?? 0;
    const backend = backendId ? lookup(backendId) : null;
    const ineligible = ineligibility(backend, svc, scope);
    probes.push({ index, backendId, backend, ineligible });
    if (ineligible === null) {
      pick = { backendId, backend: backend! };
      break;
    }
    if (ineligible === 'missing') missing = true;
  }
  const shares = new Map<number, number>();
  for (const id of table) shares.set(id, (shares.get(id) ?? 0) + 1);
  return { hash, m, probes, pick, dropReason: pick ? null : missing ? 'BACKEND_MISSING' : 'NO_ELIGIBLE_BACKEND', shares };
}
