/**
 * The sync path of the agent, kube-proxy's syncProxyRules: change trackers hold what the source
 * reported; a sync drains them into the incremental model, turns what changed into map entries and
 * lets the reconciler write them. Source handlers only record (`events`); nothing is computed there.
 *
 * Most syncs are partial: only the Services and slices that changed are recomputed and written.
 * A full sync (every entry diffed against the reconciler's shadow of the maps) runs on the first
 * sync, when this node's own Node changes (locality, zone, node port addresses), when asked (the
 * agent asks every fullSyncPeriod, like kube-proxy's hourly full resync) and after any failed
 * write (the retry). The first sync of a Syncer over maps a previous agent left rebuilds the id
 * bookkeeping from them (recover-ids.ts), so that an unchanged cluster means no writes at all.
 */
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

import { EntryTracker } from '../dataplane/entry-changes.js';
import { computeEntries } from '../dataplane/entries.js';
import type { Datapath } from '../dataplane/loader.js';
import type { ApplyResult, Reconciler } from '../dataplane/reconciler.js';
import { flushStaleFlows, staleMemberships, type StaleFlushResult } from '../dataplane/stale-flows.js';
import {
  computeDesiredState,
  IncrementalModel,
  type DesiredHealthCheck,
  type DesiredService,
  type DesiredState,
  type IdState,
  type ModelSummary,
  type Problem,
  type ProxyConfig,
} from '../model/index.js';
import { admitEndpointSlice, admitNode, admitService } from '../sources/admit.js';
import { objectKey } from '../sources/source.js';
import { ChangeTracker } from './change-tracker.js';
import { nodeDeletionReason, nodeInfoFrom, type NodeView } from './node-info.js';
import { readMapIds, recoverIds } from './recover-ids.js';

export const TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

export interface SyncerOptions {
  proxy: ProxyConfig;
  /** This node's name (hostnameOverride): its Node object and which endpoints are local. */
  nodeName: string;
  /** Addresses to use while there is no Node object (the uplink's). */
  fallbackAddresses: () => readonly string[];
  /** Rebuild ids from the maps on the first sync (default true). */
  recoverIds?: boolean;
}

export interface SyncOutcome {
  /** Whole-state sync (every entry diffed) or partial (only what changed). */
  full: boolean;
  result: ApplyResult;
  node: NodeView;
  summary: ModelSummary;
  /** Every current problem (the same list, unchanged, when problemsChanged is false). */
  problems: readonly Problem[];
  problemsChanged: boolean;
  /** Health check node ports to serve, when they changed in this sync. */
  healthChecks: DesiredHealthCheck[] | undefined;
  serviceChanges: number;
  endpointChanges: number;
  /** last-change-trigger-time of the EndpointSlices this sync applied (ms since epoch). */
  triggerTimes: number[];
  /** Ids came from the maps of a previous agent in this sync. */
  recoveredIds: boolean;
  /** UDP flows and affinities deleted because their endpoint left the Service (stale-flows.ts). */
  stale: StaleFlushResult;
  durationMs: number;
}

/**
 * The change trackers the source's events go to. Every object is admitted (checked against the
 * API's shapes, ts/sources/admit.ts) as it is recorded: one the API would refuse is set aside and
 * reported, and never reaches the model.
 */
export function sourceTrackers(): { services: ChangeTracker<V1Service>; endpointSlices: ChangeTracker<V1EndpointSlice>; nodes: ChangeTracker<V1Node> } {
  return {
    services: new ChangeTracker<V1Service>(objectKey, admitService),
    endpointSlices: new ChangeTracker<V1EndpointSlice>(objectKey, admitEndpointSlice),
    nodes: new ChangeTracker<V1Node>(objectKey, admitNode),
  };
}

/** The model's problems and the objects the trackers set aside, in the model's order. */
export function allProblems(modelProblems: readonly Problem[], trackers: readonly ChangeTracker<unknown>[]): readonly Problem[] {
  const rejected = trackers.flatMap((t) => t.rejected());
  if (rejected.length === 0) return modelProblems;
  const key = (p: Problem): string => [p.kind, p.namespace, p.name, p.port ?? '', p.reason].join('\u0000');
  return [...modelProblems, ...rejected].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

export class Syncer {
  readonly services: ChangeTracker<V1Service>;
  readonly endpointSlices: ChangeTracker<V1EndpointSlice>;
  readonly nodes: ChangeTracker<V1Node>;
  private ids: IdState | undefined;
  private idsChecked: boolean;
  private model: IncrementalModel | undefined;
  /** The node view the model was built for. */
  private modelNode = '';
  private readonly entries: EntryTracker;
  /** The last sync failed some write: the next one is full. */
  private retryFull = false;

  constructor(
    private readonly dp: Datapath,
    private readonly reconciler: Reconciler,
    private readonly opts: SyncerOptions,
  ) {
    ({ services: this.services, endpointSlices: this.endpointSlices, nodes: this.nodes } = sourceTrackers());
    this.idsChecked = opts.recoverIds === false;
    this.entries = new EntryTracker(opts.proxy.maglevTableSize);
  }

  /** The desired state of the last sync (materialized on demand, cached until a change). */
  get lastState(): DesiredState | undefined {
    return this.model?.state();
  }

  /** The Service groups of the last sync, sorted by key (without materializing the whole state). */
  serviceList(): readonly DesiredService[] {
    return this.model?.serviceList() ?? [];
  }

  /** This node's Node object, if the source has one. */
  ownNode(): V1Node | undefined {
    return this.nodes.current().find((n) => n.metadata?.name === this.opts.nodeName);
  }

  nodeView(): NodeView {
    return nodeInfoFrom(this.ownNode(), this.opts.nodeName, this.opts.fallbackAddresses());
  }

  /** Why /healthz must fail because this node is being deleted, if it is. */
  nodeDeletion(): string | undefined {
    return nodeDeletionReason(this.ownNode());
  }

  sync(opts: { full?: boolean } = {}): SyncOutcome {
    try {
      return this.syncOnce(opts);
    } catch (e) {
      // The changes were drained, and a model that threw half way through a batch holds neither
      // the state before it nor after. Forget it: the next sync rebuilds from every object the
      // trackers hold and takes the ids back from the maps, as a restarted agent does, so that no
      // change is lost (it used to be: the drained changes were never applied).
      this.model = undefined;
      this.ids = undefined;
      this.idsChecked = this.opts.recoverIds === false;
      this.retryFull = true;
      throw e;
    }
  }

  private syncOnce(opts: { full?: boolean }): SyncOutcome {
    const started = performance.now();
    const rejectionsChanged = [this.services, this.endpointSlices, this.nodes].map((t) => t.takeRejectionsChanged()).some(Boolean);
    const serviceChanges = this.services.drain();
    const endpointChanges = this.endpointSlices.drain();
    this.nodes.drain();
    const node = this.nodeView();
    const nodeKey = JSON.stringify(node.info);

    let recoveredIds = false;
    let full = opts.full === true || this.retryFull;
    let delta;
    if (this.model === undefined || nodeKey !== this.modelNode) {
      const services = this.services.current();
      const endpointSlices = this.endpointSlices.current();
      const input = { services, endpointSlices, node: node.info, config: this.opts.proxy };
      if (!this.idsChecked) {
        this.idsChecked = true;
        const mapIds = readMapIds(this.dp);
        if (mapIds.frontends.size > 0 || mapIds.backends.size > 0 || mapIds.maxServiceId > 0 || mapIds.maxBackendId > 0) {
          this.ids = recoverIds(mapIds, (previousIds) => computeDesiredState({ ...input, previousIds }));
          recoveredIds = true;
        }
      }
      this.model = IncrementalModel.build({ ...input, previousIds: this.model?.ids() ?? this.ids });
      this.modelNode = nodeKey;
      full = true;
    } else {
      delta = this.model.update({ services: serviceChanges, endpointSlices: endpointChanges });
    }

    const model = this.model;
    let result: ApplyResult;
    if (full || delta === undefined) {
      // Not cached in the model: the whole state is only needed for this sync.
      const state = model.state({ cache: false });
      result = this.reconciler.apply(computeEntries(state, this.opts.proxy.maglevTableSize));
      this.entries.reset(state);
    } else {
      result = this.reconciler.applyChanges(this.entries.changes(delta, model));
    }
    this.retryFull = result.failures.length > 0;
    // Once the slots no longer offer them: what each group stopped choosing from loses its UDP
    // flows and affinities. (A rebuilt model has no before; the first sync has nothing stale.)
    const stale = delta === undefined ? { flows: 0, affinities: 0 } : flushStaleFlows(this.dp.maps, staleMemberships(delta.services.values()));

    const triggerTimes: number[] = [];
    for (const c of endpointChanges) {
      const t = Date.parse(c.current?.metadata?.annotations?.[TRIGGER_TIME_ANNOTATION] ?? '');
      if (Number.isFinite(t)) triggerTimes.push(t);
    }
    return {
      full,
      result,
      node,
      summary: model.summary(),
      problems: allProblems(model.problems(), [this.services, this.endpointSlices, this.nodes] as ChangeTracker<unknown>[]),
      problemsChanged: full || rejectionsChanged || delta!.problemsChanged,
      healthChecks: full || delta!.healthChecksChanged ? model.healthChecks() : undefined,
      serviceChanges: serviceChanges.length,
      endpointChanges: endpointChanges.length,
      triggerTimes,
      recoveredIds,
      stale,
      durationMs: performance.now() - started,
    };
  }
}
