// The agent's sync path without maps: objects as a source delivers them (slim copies) go through the
// agent's own change trackers (with their admission check, syncer.ts's sourceTrackers), the
// incremental model and computeEntries, as Syncer.sync does. Used by the bad-input corpus and the
// fuzz test to ask: does a bad object in the batch change anything a good one is programmed with?
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import { allProblems, sourceTrackers } from '../../ts/agent/syncer.js';
import type { ChangeTracker } from '../../ts/agent/change-tracker.js';
import { computeEntries, type DesiredEntries } from '../../ts/dataplane/entries.js';
import { IncrementalModel, resolveProxyConfig, type DesiredState, type IdState, type NodeInfo, type Problem } from '../../ts/model/index.js';
import { slim } from '../../ts/sources/slim.js';
import { objectKey } from '../../ts/sources/source.js';

export const PROXY = resolveProxyConfig({ clusterCIDR: '198.18.128.0/17', maglevTableSize: 251 });
export const NODE: NodeInfo = { name: 'node-a', addresses: ['198.18.0.10'], zone: 'zone-a', podCIDRs: ['198.18.129.0/24'] };

export interface Batch {
  readonly services: readonly unknown[];
  readonly slices: readonly unknown[];
}

export interface Outcome {
  readonly state: DesiredState;
  readonly entries: DesiredEntries;
  readonly problems: readonly Problem[];
}

function record(trackers: ReturnType<typeof sourceTrackers>, batch: Batch): void {
  for (const s of batch.services) trackers.services.record(undefined, slim('Service', s as V1Service));
  for (const s of batch.slices) trackers.endpointSlices.record(undefined, slim('EndpointSlice', s as V1EndpointSlice));
}

function outcome(model: IncrementalModel, trackers: ReturnType<typeof sourceTrackers>): Outcome {
  const state = model.state();
  const list = [trackers.services, trackers.endpointSlices, trackers.nodes] as ChangeTracker<unknown>[];
  return { state, entries: computeEntries(state, PROXY.maglevTableSize), problems: allProblems(model.problems(), list) };
}

/** Everything in one batch, as a first sync sees it. */
export function runFull(batch: Batch, previousIds?: IdState): Outcome {
  const trackers = sourceTrackers();
  record(trackers, batch);
  return runTrackers(trackers, previousIds);
}

/** What trackers a source has fed hold, as a first sync computes it. */
export function runTrackers(trackers: ReturnType<typeof sourceTrackers>, previousIds?: IdState): Outcome {
  trackers.services.drain();
  trackers.endpointSlices.drain();
  const model = IncrementalModel.build({
    services: trackers.services.current(),
    endpointSlices: trackers.endpointSlices.current(),
    node: NODE,
    config: PROXY,
    ...(previousIds ? { previousIds } : {}),
  });
  return outcome(model, trackers);
}

/** `before` synced first, then `after` arrives as one batch of changes (a partial sync). */
export function runIncremental(before: Batch, after: Batch): Outcome {
  const trackers = sourceTrackers();
  record(trackers, before);
  trackers.services.drain();
  trackers.endpointSlices.drain();
  const model = IncrementalModel.build({ services: trackers.services.current(), endpointSlices: trackers.endpointSlices.current(), node: NODE, config: PROXY });
  const previous = { services: new Map(trackers.services.current().map((s) => [key(s), s])), slices: new Map(trackers.endpointSlices.current().map((s) => [key(s), s])) };
  for (const s of after.services) trackers.services.record(previous.services.get(key(s)), slim('Service', s as V1Service));
  for (const s of after.slices) trackers.endpointSlices.record(previous.slices.get(key(s)), slim('EndpointSlice', s as V1EndpointSlice));
  model.update({ services: trackers.services.drain(), endpointSlices: trackers.endpointSlices.drain() });
  return outcome(model, trackers);
}

function key(o: unknown): string {
  return objectKey(o as V1Service);
}

/**
 * What `good` programs is programmed the same in `mixed`: every map entry of `good` is in `mixed`
 * with the same bytes (mixed may hold more: what a partly usable bad object adds). Returns the
 * differences, none when equal.
 */
export function entriesMissing(good: DesiredEntries, mixed: DesiredEntries): string[] {
  const out: string[] = [];
  for (const [k, fe] of good.frontends) {
    const m = mixed.frontends.get(k);
    if (m === undefined) out.push(`frontend ${k} missing`);
    else if (!same(fe.master, m.master) || fe.slots.length !== m.slots.length || fe.slots.some((s, i) => !same(s, m.slots[i]!))) out.push(`frontend ${k} differs`);
  }
  for (const [id, e] of good.backends) if (!mixed.backends.has(id) || !same(e, mixed.backends.get(id)!)) out.push(`backend ${id} missing or differs`);
  for (const [k, e] of good.sourceRanges) if (!mixed.sourceRanges.has(k) || !same(e, mixed.sourceRanges.get(k)!)) out.push(`source range ${k} missing or differs`);
  for (const [k, e] of good.nodeAddresses) if (!mixed.nodeAddresses.has(k) || !same(e, mixed.nodeAddresses.get(k)!)) out.push(`node address ${k} missing or differs`);
  for (const [id, table] of good.maglev) {
    const m = mixed.maglev.get(id);
    if (m === undefined || Buffer.compare(Buffer.from(table.buffer, table.byteOffset, table.byteLength), Buffer.from(m.buffer, m.byteOffset, m.byteLength)) !== 0) out.push(`maglev table ${id} missing or differs`);
  }
  return out;
}

function same(a: { key: Buffer; value: Buffer }, b: { key: Buffer; value: Buffer }): boolean {
  return a.key.equals(b.key) && a.value.equals(b.value);
}

/** Total entries, to see that a comparison compared something. */
export function entryCount(e: DesiredEntries): number {
  return e.frontends.size + e.backends.size + e.sourceRanges.size + e.nodeAddresses.size + e.maglev.size;
}
