/**
 * The sync path of the agent, kube-proxy's syncProxyRules: change trackers hold what the source
 * reported; a sync drains them, computes the desired state from every current object (a pure
 * function), turns it into map entries and lets the reconciler write the difference.
 *
 * Source handlers only record (`events`); nothing is computed there. The first sync of a Syncer
 * over maps a previous agent left rebuilds the id bookkeeping from them (recover-ids.ts), so that
 * an unchanged cluster means no writes at all.
 */
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

import { computeEntries } from '../dataplane/entries.js';
import type { Datapath } from '../dataplane/loader.js';
import type { ApplyResult, Reconciler } from '../dataplane/reconciler.js';
import { computeDesiredState, type DesiredState, type IdState, type ProxyConfig } from '../model/index.js';
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
  state: DesiredState;
  result: ApplyResult;
  node: NodeView;
  serviceChanges: number;
  endpointChanges: number;
  /** last-change-trigger-time of the EndpointSlices this sync applied (ms since epoch). */
  triggerTimes: number[];
  /** Ids came from the maps of a previous agent in this sync. */
  recoveredIds: boolean;
  durationMs: number;
}

export class Syncer {
  readonly services = new ChangeTracker<V1Service>(objectKey);
  readonly endpointSlices = new ChangeTracker<V1EndpointSlice>(objectKey);
  readonly nodes = new ChangeTracker<V1Node>(objectKey);
  private ids: IdState | undefined;
  private idsChecked: boolean;
  private last: DesiredState | undefined;

  constructor(
    private readonly dp: Datapath,
    private readonly reconciler: Reconciler,
    private readonly opts: SyncerOptions,
  ) {
    this.idsChecked = opts.recoverIds === false;
  }

  /** The desired state of the last sync. */
  get lastState(): DesiredState | undefined {
    return this.last;
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

  sync(): SyncOutcome {
    const started = performance.now();
    const serviceChanges = this.services.drain().length;
    const endpointChanges = this.endpointSlices.drain();
    this.nodes.drain();
    const node = this.nodeView();
    const services = this.services.current();
    const endpointSlices = this.endpointSlices.current();
    const compute = (previousIds: IdState | undefined) =>
      computeDesiredState({ services, endpointSlices, node: node.info, config: this.opts.proxy, ...(previousIds ? { previousIds } : {}) });

    let recoveredIds = false;
    if (!this.idsChecked) {
      this.idsChecked = true;
      const mapIds = readMapIds(this.dp);
      if (mapIds.frontends.size > 0 || mapIds.backends.size > 0 || mapIds.maxServiceId > 0 || mapIds.maxBackendId > 0) {
        this.ids = recoverIds(mapIds, compute);
        recoveredIds = true;
      }
    }
    const state = compute(this.ids);
    const result = this.reconciler.apply(computeEntries(state, this.opts.proxy.maglevTableSize));
    this.ids = state.ids;
    this.last = state;

    const triggerTimes: number[] = [];
    for (const c of endpointChanges) {
      const t = Date.parse(c.current?.metadata?.annotations?.[TRIGGER_TIME_ANNOTATION] ?? '');
      if (Number.isFinite(t)) triggerTimes.push(t);
    }
    return {
      state,
      result,
      node,
      serviceChanges,
      endpointChanges: endpointChanges.length,
      triggerTimes,
      recoveredIds,
      durationMs: performance.now() - started,
    };
  }
}

