/**
 * The desired state kept up to date change by change: what the agent's sync loop uses, so that one
 * changed Service among 30 000 costs work for that Service only. computeDesiredState
 * (desired-state.ts) stays the specification, rule by rule; this class applies the same rules (the
 * same functions) per Service and keeps the cross-Service decisions as indexes that only the
 * touched keys are re-decided in:
 *
 *   - a Service's fragment: its groups, frontend claims, backend claims and health check, computed
 *     from the Service and the endpoints of the slices that name it;
 *   - frontend claims by address:port/protocol (the winner as orderFrontendClaims ranks them),
 *     less those refused (refusals.ts: re-decided where a ClusterIP, NodePort or health check
 *     they depend on came or went);
 *   - backend claims by ip:port/protocol (a claim saying "local" wins, else the first Service);
 *   - health check claims by port; external groups live while they win at least one frontend;
 *   - ids, allocated and released per batch exactly as IdAllocator.sync does for a full run.
 *
 * test/model/incremental.test.ts checks that any sequence of batches gives the state a full
 * computation gives from the same objects and previous ids.
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import type { NodeInfo, ProxyConfig } from './config.js';
import { selectNodePortAddresses } from './config.js';
import {
  backendKey,
  masqueradeRulesOf,
  compareBackends,
  compareFrontends,
  compareHealthChecks,
  compareText,
  decideFrontendClaims,
  duplicateServiceProblem,
  frontendClaimKey,
  frontendsForPort,
  groupsForPort,
  healthCheckConflictProblem,
  localReadyIPs,
  nodeAndConfigProblems,
  toDesiredFrontend,
  toDesiredService,
  type FrontendDraft,
  type GroupDraft,
} from './desired-state.js';
import { collectEndpoints, LABEL_SERVICE_NAME, portKey, serviceKey, type EndpointInfo, type ServiceEndpoints } from './endpoints.js';
import { IdAllocator } from './ids.js';
import { ProblemList, unexpectedProblem, type Problem } from './problems.js';
import { FrontendRefusals } from './refusals.js';
import { isProxied, parseService, serviceNamespace } from './service.js';
import type { DesiredBackend, DesiredFrontend, DesiredHealthCheck, DesiredService, DesiredState, IdState, MasqueradeRules, Protocol } from './types.js';

/** One object's change, as the change trackers report it. */
export interface ObjectChange<T> {
  readonly previous: T | undefined;
  readonly current: T | undefined;
}

export interface ModelChanges {
  readonly services?: Iterable<ObjectChange<V1Service>>;
  readonly endpointSlices?: Iterable<ObjectChange<V1EndpointSlice>>;
}

/** Before and after of one output item; an absent side means it did not (does not) exist. */
export interface ItemChange<T> {
  readonly before: T | undefined;
  readonly after: T | undefined;
}

/** What one batch changed in the desired state, by key. Items listed may be unchanged. */
export interface ModelDelta {
  readonly frontends: ReadonlyMap<string, ItemChange<DesiredFrontend>>;
  readonly services: ReadonlyMap<string, ItemChange<DesiredService>>;
  readonly backends: ReadonlyMap<string, ItemChange<DesiredBackend>>;
  readonly healthChecksChanged: boolean;
  readonly problemsChanged: boolean;
}

/** Counts the agent reports after every sync, without materializing the whole state. */
export interface ModelSummary {
  frontends: number;
  services: number;
  backends: number;
  /** Groups with a Local policy and no local endpoint, by scope. */
  noLocalEndpoints: { internal: number; external: number };
}

/**
 * A Service's claim on a backend: the endpoint itself (what computeDesiredState copies into a
 * BackendDraft; the protocol is the backend key's), so that a fragment adds no object per backend.
 */
type BackendClaim = Pick<EndpointInfo, 'address' | 'port' | 'nodeName' | 'local'>;

/** The protocol of a backend key ("ip:port/PROTOCOL"), as one of the constant strings. */
function protocolOfKey(key: string): Protocol {
  if (key.endsWith('/TCP')) return 'TCP';
  if (key.endsWith('/UDP')) return 'UDP';
  if (key.endsWith('/SCTP')) return 'SCTP';
  throw new RangeError(`not a backend key: ${key}`);
}

interface Fragment {
  readonly problems: readonly Problem[];
  readonly groups: readonly GroupDraft[];
  readonly frontends: readonly FrontendDraft[];
  /** Backend key → this Service's claim (addBackend's rule: a local endpoint wins). */
  readonly backends: ReadonlyMap<string, BackendClaim>;
  readonly healthCheck: DesiredHealthCheck | null;
}

const EMPTY_FRAGMENT: Fragment = { problems: [], groups: [], frontends: [], backends: new Map(), healthCheck: null };

interface SliceEndpoints {
  readonly byPort: ServiceEndpoints;
  readonly problems: readonly Problem[];
}

function sliceId(slice: V1EndpointSlice): string {
  return `${slice.metadata?.namespace || 'default'}/${slice.metadata?.name ?? ''}`;
}

function serviceKeyOf(service: V1Service): string {
  return serviceKey(serviceNamespace(service), service.metadata?.name ?? '');
}

/** The Service a slice's endpoints count for, when they count at all. */
function sliceService(copies: readonly V1EndpointSlice[]): string | undefined {
  if (copies.length !== 1) return undefined;
  const slice = copies[0]!;
  const name = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
  if (name === undefined || name === '') return undefined;
  return serviceKey(slice.metadata?.namespace || 'default', name);
}

function replaceCopy<T>(copies: readonly T[], previous: T | undefined, current: T | undefined): T[] {
  const out = [...copies];
  if (previous !== undefined) {
    const i = out.indexOf(previous);
    if (i >= 0) out.splice(i, 1);
    // A previous copy we never saw (a tracker that replaced without telling): one copy per key.
    else if (out.length === 1 && current !== undefined) out.splice(0, 1);
  }
  if (current !== undefined) out.push(current);
  return out;
}

function isLocalWithoutEndpoints(s: DesiredService): boolean {
  return s.trafficPolicy === 'Local' && s.action === 'drop';
}

/** What one batch touched, step by step: the keys each later step of update() re-decides. */
interface Batch {
  /** Services whose slices changed: their endpoints are collected again. */
  readonly endpointsDirty: Set<string>;
  /** Services whose fragment is computed again. */
  readonly servicesDirty: Set<string>;
  /** Frontend claim keys whose winner is decided again. */
  readonly touchedClaims: Set<string>;
  readonly touchedBackends: Set<string>;
  /** Health check node ports. */
  readonly touchedPorts: Set<number>;
  /** Addresses whose ClusterIP owners may have changed: every claim on them is re-decided. */
  readonly touchedAddresses: Set<string>;
  readonly dirtyGroups: Set<string>;
  problemsChanged: boolean;
  /** Some keys had no id before this batch (the id ranges were full). */
  hadExhausted: boolean;
}

export class IncrementalModel {
  private readonly services = new Map<string, V1Service[]>();
  private readonly slices = new Map<string, V1EndpointSlice[]>();
  /** Service key → ids of the (single, labelled) slices naming it. */
  private readonly slicesOfService = new Map<string, Set<string>>();
  private readonly endpoints = new Map<string, SliceEndpoints>();
  private readonly fragments = new Map<string, Fragment>();
  private readonly groupDrafts = new Map<string, GroupDraft>();

  private readonly frontendClaims = new Map<string, FrontendDraft[]>();
  /** Address → claim keys on it: a ClusterIP coming or going re-decides them all. */
  private readonly claimKeysAt = new Map<string, Set<string>>();
  private readonly refusals: FrontendRefusals;
  private readonly winners = new Map<string, FrontendDraft>();
  private readonly conflictProblems = new Map<string, Problem[]>();
  /** External group key → frontends it wins. */
  private readonly wonFrontends = new Map<string, number>();
  private readonly liveGroups = new Set<string>();

  /**
   * Backend key → the Services claiming it: the one Service's key when there is one (its draft is
   * in its fragment: no Map per backend), else claiming Service key → its claim.
   */
  private readonly backendClaims = new Map<string, string | Map<string, BackendClaim>>();
  private readonly healthClaims = new Map<number, DesiredHealthCheck[]>();
  private readonly healthProblems = new Map<number, Problem[]>();

  private readonly serviceIds: IdAllocator;
  private readonly backendIds: IdAllocator;
  /** Live keys the id ranges had no room for; retried on every batch. */
  private readonly exhaustedServices = new Set<string>();
  private readonly exhaustedBackends = new Set<string>();

  private readonly frontendsOut = new Map<string, DesiredFrontend>();
  /** Frontend claim key → key of the frontend it produced. */
  private readonly frontendKeyOfClaim = new Map<string, string>();
  private readonly servicesOut = new Map<string, DesiredService>();
  private readonly backendsOut = new Map<string, DesiredBackend>();
  private readonly backendKeyById = new Map<number, string>();
  private readonly healthOut = new Map<number, DesiredHealthCheck>();
  private noLocal = { internal: 0, external: 0 };

  private readonly globalProblems: readonly Problem[];
  private readonly nodePortAddresses: readonly string[];
  private readonly masquerade: MasqueradeRules;
  private materialized: DesiredState | undefined;
  private problemCache: readonly Problem[] | undefined;

  private constructor(
    readonly node: NodeInfo,
    readonly config: ProxyConfig,
    previousIds: IdState | undefined,
  ) {
    this.serviceIds = IdAllocator.from(previousIds?.services);
    this.backendIds = IdAllocator.from(previousIds?.backends);
    this.globalProblems = nodeAndConfigProblems(node, config);
    this.nodePortAddresses = selectNodePortAddresses(node, config);
    this.masquerade = masqueradeRulesOf(config);
    this.refusals = new FrontendRefusals(node, config, this.nodePortAddresses);
  }

  /** The model of these objects, as computeDesiredState computes it. */
  static build(input: {
    services: readonly V1Service[];
    endpointSlices: readonly V1EndpointSlice[];
    node: NodeInfo;
    config: ProxyConfig;
    previousIds?: IdState | undefined;
  }): IncrementalModel {
    const model = new IncrementalModel(input.node, input.config, input.previousIds);
    model.update({
      services: input.services.map((current) => ({ previous: undefined, current })),
      endpointSlices: input.endpointSlices.map((current) => ({ previous: undefined, current })),
    });
    return model;
  }

  /**
   * Applies one batch of changes; returns what it changed in the output. Step by step: record the
   * objects, collect the endpoints and fragments of the Services they touch, re-decide the frontend
   * conflicts and ids of what those touch, and emit the items whose outcome may have moved.
   */
  update(changes: ModelChanges): ModelDelta {
    const batch: Batch = {
      endpointsDirty: new Set(),
      servicesDirty: new Set(),
      touchedClaims: new Set(),
      touchedBackends: new Set(),
      touchedPorts: new Set(),
      touchedAddresses: new Set(),
      dirtyGroups: new Set(),
      problemsChanged: false,
      hadExhausted: false,
    };
    this.recordSlices(changes.endpointSlices ?? [], batch);
    this.recordServices(changes.services ?? [], batch);
    this.refreshEndpoints(batch);
    this.refreshFragments(batch);
    this.decideFrontendWinners(batch);
    this.allocateIds(batch);
    return this.emitChanges(batch);
  }

  /** Slices in: which Services' endpoints to collect again. */
  private recordSlices(changes: Iterable<ObjectChange<V1EndpointSlice>>, batch: Batch): void {
    for (const { previous, current } of changes) {
      const obj = current ?? previous;
      if (obj === undefined) continue;
      const id = sliceId(obj);
      const before = this.slices.get(id) ?? [];
      const after = replaceCopy(before, previous, current);
      const ownerBefore = sliceService(before);
      const ownerAfter = sliceService(after);
      if (after.length === 0) this.slices.delete(id);
      else this.slices.set(id, after);
      if (ownerBefore !== undefined) {
        const set = this.slicesOfService.get(ownerBefore)!;
        set.delete(id);
        if (set.size === 0) this.slicesOfService.delete(ownerBefore);
        batch.endpointsDirty.add(ownerBefore);
      }
      if (ownerAfter !== undefined) {
        let set = this.slicesOfService.get(ownerAfter);
        if (set === undefined) this.slicesOfService.set(ownerAfter, (set = new Set()));
        set.add(id);
        batch.endpointsDirty.add(ownerAfter);
      }
      // Problems of slices that count for no Service (duplicates, no label) live with the slice.
      if (before.length > 0 && ownerBefore === undefined) batch.problemsChanged = true;
      if (after.length > 0 && ownerAfter === undefined) batch.problemsChanged = true;
    }
  }

  /** Services in: which fragments to compute again. */
  private recordServices(changes: Iterable<ObjectChange<V1Service>>, batch: Batch): void {
    for (const { previous, current } of changes) {
      const obj = current ?? previous;
      if (obj === undefined) continue;
      const key = serviceKeyOf(obj);
      const after = replaceCopy(this.services.get(key) ?? [], previous, current);
      if (after.length === 0) this.services.delete(key);
      else this.services.set(key, after);
      batch.servicesDirty.add(key);
    }
  }

  /** The endpoints of each Service whose slices changed, collected again (its fragment follows). */
  private refreshEndpoints(batch: Batch): void {
    for (const key of batch.endpointsDirty) {
      const before = this.endpoints.get(key);
      const ids = this.slicesOfService.get(key);
      if (ids === undefined) this.endpoints.delete(key);
      else {
        const problems = new ProblemList();
        const byService = collectEndpoints([...ids].map((id) => this.slices.get(id)![0]!), this.node.name, problems);
        const entry = { byPort: byService.get(key) ?? new Map<string, EndpointInfo[]>(), problems: problems.sorted() };
        this.endpoints.set(key, entry);
        if (entry.problems.length > 0) batch.problemsChanged = true;
      }
      if (before !== undefined && before.problems.length > 0) batch.problemsChanged = true;
      batch.servicesDirty.add(key);
    }
  }

  /** Each dirty Service's fragment computed again, its claims moved in the indexes. */
  private refreshFragments(batch: Batch): void {
    for (const key of batch.servicesDirty) {
      const before = this.fragments.get(key) ?? EMPTY_FRAGMENT;
      const after = this.fragmentOf(key);
      if (after === EMPTY_FRAGMENT) this.fragments.delete(key);
      else this.fragments.set(key, after);
      if (before.problems.length > 0 || after.problems.length > 0) batch.problemsChanged = true;

      for (const f of before.frontends) {
        const claimKey = frontendClaimKey(f);
        const claims = this.frontendClaims.get(claimKey)!;
        claims.splice(claims.indexOf(f), 1);
        if (claims.length === 0) {
          const keys = this.claimKeysAt.get(f.address)!;
          keys.delete(claimKey);
          if (keys.size === 0) this.claimKeysAt.delete(f.address);
        }
        batch.touchedClaims.add(claimKey);
        this.moveRefusals(f, -1, batch);
      }
      for (const f of after.frontends) {
        const claimKey = frontendClaimKey(f);
        let claims = this.frontendClaims.get(claimKey);
        if (claims === undefined) this.frontendClaims.set(claimKey, (claims = []));
        claims.push(f);
        let keys = this.claimKeysAt.get(f.address);
        if (keys === undefined) this.claimKeysAt.set(f.address, (keys = new Set()));
        keys.add(claimKey);
        batch.touchedClaims.add(claimKey);
        this.moveRefusals(f, 1, batch);
      }
      for (const backend of before.backends.keys()) {
        this.dropBackendClaim(backend, key);
        batch.touchedBackends.add(backend);
      }
      for (const [backend, draft] of after.backends) {
        this.addBackendClaim(backend, key, draft);
        batch.touchedBackends.add(backend);
      }
      if (before.healthCheck !== null) {
        const claims = this.healthClaims.get(before.healthCheck.port)!;
        claims.splice(claims.indexOf(before.healthCheck), 1);
        batch.touchedPorts.add(before.healthCheck.port);
        this.refusals.healthCheck(before.healthCheck, -1);
        for (const k of this.refusals.affectedByHealthCheck(before.healthCheck.port)) batch.touchedClaims.add(k);
      }
      if (after.healthCheck !== null) {
        let claims = this.healthClaims.get(after.healthCheck.port);
        if (claims === undefined) this.healthClaims.set(after.healthCheck.port, (claims = []));
        claims.push(after.healthCheck);
        batch.touchedPorts.add(after.healthCheck.port);
        this.refusals.healthCheck(after.healthCheck, 1);
        for (const k of this.refusals.affectedByHealthCheck(after.healthCheck.port)) batch.touchedClaims.add(k);
      }
      for (const g of before.groups) {
        this.groupDrafts.delete(g.key);
        batch.dirtyGroups.add(g.key);
      }
      for (const g of after.groups) {
        this.groupDrafts.set(g.key, g);
        batch.dirtyGroups.add(g.key);
      }
    }
  }

  /** A frontend claim came (1) or went (-1): the refusals it decides, and the claims they touch. */
  private moveRefusals(f: FrontendDraft, by: 1 | -1, batch: Batch): void {
    this.refusals.frontend(f, by);
    const { address, claimKeys } = this.refusals.affected(f);
    if (address !== undefined) batch.touchedAddresses.add(address);
    for (const k of claimKeys) batch.touchedClaims.add(k);
  }

  /** Frontend conflicts, re-decided only where a claim, or what a refusal depends on, came or went. */
  private decideFrontendWinners(batch: Batch): void {
    for (const address of batch.touchedAddresses) for (const k of this.claimKeysAt.get(address) ?? []) batch.touchedClaims.add(k);
    for (const claimKey of batch.touchedClaims) {
      const claims = this.frontendClaims.get(claimKey) ?? [];
      const oldWinner = this.winners.get(claimKey);
      const hadProblems = this.conflictProblems.has(claimKey);
      let newWinner: FrontendDraft | undefined;
      if (claims.length === 0) {
        this.frontendClaims.delete(claimKey);
        this.winners.delete(claimKey);
        this.conflictProblems.delete(claimKey);
      } else {
        const decided = decideFrontendClaims(claimKey, claims, this.refusals);
        newWinner = decided.winner;
        if (newWinner === undefined) this.winners.delete(claimKey);
        else this.winners.set(claimKey, newWinner);
        if (decided.problems.length > 0) this.conflictProblems.set(claimKey, decided.problems);
        else this.conflictProblems.delete(claimKey);
      }
      if (hadProblems || this.conflictProblems.has(claimKey)) batch.problemsChanged = true;
      if (oldWinner === newWinner) continue;
      if (oldWinner !== undefined && oldWinner.group.scope === 'external') this.countWin(oldWinner.group.key, -1);
      if (newWinner !== undefined && newWinner.group.scope === 'external') this.countWin(newWinner.group.key, +1);
      if (oldWinner !== undefined) batch.dirtyGroups.add(oldWinner.group.key);
      if (newWinner !== undefined) batch.dirtyGroups.add(newWinner.group.key);
    }
  }

  /** Which groups and backends are live now, and their ids. */
  private allocateIds(batch: Batch): void {
    const addedGroups: string[] = [...this.exhaustedServices];
    const removedGroups: string[] = [];
    for (const key of batch.dirtyGroups) {
      const draft = this.groupDrafts.get(key);
      const live = draft !== undefined && (draft.scope === 'internal' || (this.wonFrontends.get(key) ?? 0) > 0);
      if (live && !this.liveGroups.has(key)) {
        this.liveGroups.add(key);
        addedGroups.push(key);
      } else if (!live && this.liveGroups.has(key)) {
        this.liveGroups.delete(key);
        removedGroups.push(key);
      }
    }
    const addedBackends: string[] = [...this.exhaustedBackends];
    const removedBackends: string[] = [];
    for (const key of batch.touchedBackends) {
      if (this.backendClaims.has(key)) addedBackends.push(key);
      else removedBackends.push(key);
    }
    batch.hadExhausted = this.exhaustedServices.size + this.exhaustedBackends.size > 0;
    const groupIds = this.serviceIds.update(addedGroups.filter((k) => this.liveGroups.has(k)), removedGroups);
    const backendIdsChanged = this.backendIds.update(
      addedBackends.filter((k) => this.backendClaims.has(k)),
      removedBackends,
    );
    this.exhaustedServices.clear();
    this.exhaustedBackends.clear();
    for (const key of groupIds.exhausted) this.exhaustedServices.add(key);
    for (const key of backendIdsChanged.exhausted) this.exhaustedBackends.add(key);
    if (batch.hadExhausted || groupIds.exhausted.length + backendIdsChanged.exhausted.length > 0) batch.problemsChanged = true;
  }

  /** Outputs of everything touched. */
  private emitChanges(batch: Batch): ModelDelta {
    const backends = new Map<string, ItemChange<DesiredBackend>>();
    for (const key of batch.touchedBackends) backends.set(key, this.emitBackend(key));
    const services = new Map<string, ItemChange<DesiredService>>();
    for (const key of batch.dirtyGroups) services.set(key, this.emitService(key));
    const frontends = new Map<string, ItemChange<DesiredFrontend>>();
    for (const claimKey of batch.touchedClaims) this.emitFrontend(claimKey, frontends);
    // Keys that only now got an id: everything that names them is written again (rare: the id
    // ranges were full). Slow, but exact.
    if (batch.hadExhausted) this.emitAll(frontends, services, backends);
    const health = this.decideHealthChecks(batch.touchedPorts);
    const healthChecksChanged = health.changed;
    let problemsChanged = batch.problemsChanged;
    if (health.problemsChanged) problemsChanged = true;

    if (frontends.size + services.size + backends.size > 0 || healthChecksChanged || problemsChanged) this.materialized = undefined;
    if (problemsChanged) this.problemCache = undefined;
    return { frontends, services, backends, healthChecksChanged, problemsChanged };
  }

  /**
   * The whole desired state, sorted as computeDesiredState sorts it (cached until a change; with
   * `cache: false` an existing cache is used but none is made, for a one-off use such as a full
   * sync, so that the model does not hold a second copy of every output item's list).
   */
  state(opts: { cache?: boolean } = {}): DesiredState {
    if (this.materialized !== undefined) return this.materialized;
    const state: DesiredState = {
      frontends: [...this.frontendsOut.values()].sort(compareFrontends),
      services: [...this.servicesOut.values()].sort((a, b) => compareText(a.key, b.key)),
      backends: [...this.backendsOut.values()].sort(compareBackends),
      healthChecks: [...this.healthOut.values()].sort(compareHealthChecks),
      nodePortAddresses: [...this.nodePortAddresses],
      problems: this.problems(),
      ids: this.ids(),
    };
    if (opts.cache !== false) this.materialized = state;
    return state;
  }

  /** Every current Service group, sorted by key as in state(). */
  serviceList(): readonly DesiredService[] {
    return this.materialized?.services ?? [...this.servicesOut.values()].sort((a, b) => compareText(a.key, b.key));
  }

  problems(): readonly Problem[] {
    if (this.problemCache !== undefined) return this.problemCache;
    const list = new ProblemList();
    const add = (ps: Iterable<Problem>): void => {
      for (const p of ps) list.add(p);
    };
    add(this.globalProblems);
    for (const copies of this.slices.values()) add(this.sliceProblems(copies));
    for (const entry of this.endpoints.values()) add(entry.problems);
    for (const fragment of this.fragments.values()) add(fragment.problems);
    for (const ps of this.conflictProblems.values()) add(ps);
    for (const ps of this.healthProblems.values()) add(ps);
    for (const key of this.exhaustedServices) add([{ kind: 'Config', namespace: '', name: 'service ids', reason: `no service id left for ${key}` }]);
    for (const key of this.exhaustedBackends) add([{ kind: 'Config', namespace: '', name: 'backend ids', reason: `no backend id left for ${key}` }]);
    this.problemCache = list.sorted();
    return this.problemCache;
  }

  ids(): IdState {
    return { services: this.serviceIds.snapshot(), backends: this.backendIds.snapshot() };
  }

  summary(): ModelSummary {
    return {
      frontends: this.frontendsOut.size,
      services: this.servicesOut.size,
      backends: this.backendsOut.size,
      noLocalEndpoints: { ...this.noLocal },
    };
  }

  healthChecks(): DesiredHealthCheck[] {
    return [...this.healthOut.values()].sort(compareHealthChecks);
  }

  getNodePortAddresses(): readonly string[] {
    return this.nodePortAddresses;
  }

  backendId(key: string): number | undefined {
    return this.backendIds.get(key);
  }

  backendById(id: number): DesiredBackend | undefined {
    const key = this.backendKeyById.get(id);
    return key === undefined ? undefined : this.backendsOut.get(key);
  }

  /** Every current Service group by key (the syncer's view for metrics and `services`). */
  service(key: string): DesiredService | undefined {
    return this.servicesOut.get(key);
  }

  // ---- per Service ----

  private fragmentOf(key: string): Fragment {
    const copies = this.services.get(key) ?? [];
    if (copies.length === 0) return EMPTY_FRAGMENT;
    if (copies.length > 1) return { ...EMPTY_FRAGMENT, problems: [duplicateServiceProblem(copies[0]!)] };
    const service = copies[0]!;
    // The second line behind the source's admission check: whatever one Service makes fail is a
    // problem of that Service only, never of the batch.
    try {
      return this.computeFragment(key, service);
    } catch (e) {
      return { ...EMPTY_FRAGMENT, problems: [unexpectedProblem('Service', serviceNamespace(service), service.metadata?.name, e)] };
    }
  }

  private computeFragment(key: string, service: V1Service): Fragment {
    if (!isProxied(service, this.config.proxyName).proxied) return EMPTY_FRAGMENT;
    const problems = new ProblemList();
    const info = parseService(service, problems);
    if (info === undefined) return { ...EMPTY_FRAGMENT, problems: problems.sorted() };
    const serviceEndpoints = this.endpoints.get(key)?.byPort ?? new Map<string, EndpointInfo[]>();
    const groups: GroupDraft[] = [];
    const frontends: FrontendDraft[] = [];
    const backends = new Map<string, BackendClaim>();
    for (const port of info.ports) {
      const endpoints = serviceEndpoints.get(portKey(port.ref.portName, port.ref.protocol)) ?? [];
      for (const ep of endpoints) {
        // addBackend (desired-state.ts), keeping the endpoint rather than a copy of its fields.
        const backend = backendKey(ep.address, ep.port, port.ref.protocol);
        const existing = backends.get(backend);
        if (existing === undefined || (ep.local && !existing.local)) backends.set(backend, ep);
      }
      const drafts = groupsForPort(info, port, endpoints, this.node);
      groups.push(drafts.internal);
      if (drafts.external !== null) groups.push(drafts.external);
      frontends.push(...frontendsForPort(info, port, drafts.internal, drafts.external));
    }
    const healthCheck: DesiredHealthCheck | null =
      info.healthCheckNodePort === null
        ? null
        : { port: info.healthCheckNodePort, namespace: info.namespace, name: info.name, localEndpoints: localReadyIPs(serviceEndpoints) };
    return { problems: problems.sorted(), groups, frontends, backends, healthCheck };
  }

  private sliceProblems(copies: readonly V1EndpointSlice[]): Problem[] {
    const slice = copies[0]!;
    const namespace = slice.metadata?.namespace || 'default';
    const name = slice.metadata?.name ?? '';
    if (copies.length > 1) return [{ kind: 'EndpointSlice', namespace, name, reason: 'EndpointSlice listed more than once; all copies ignored' }];
    if (sliceService(copies) === undefined) return [{ kind: 'EndpointSlice', namespace, name, reason: `no ${LABEL_SERVICE_NAME} label; ignored` }];
    return [];
  }

  private addBackendClaim(backend: string, service: string, draft: BackendClaim): void {
    const claims = this.backendClaims.get(backend);
    if (claims === undefined) this.backendClaims.set(backend, service);
    else if (typeof claims !== 'string') claims.set(service, draft);
    else if (claims === service) return;
    else {
      // A second Service: the first one's draft is in its fragment.
      const many = new Map<string, BackendClaim>([[claims, this.fragments.get(claims)!.backends.get(backend)!]]);
      many.set(service, draft);
      this.backendClaims.set(backend, many);
    }
  }

  private dropBackendClaim(backend: string, service: string): void {
    const claims = this.backendClaims.get(backend)!;
    if (typeof claims === 'string') {
      if (claims === service) this.backendClaims.delete(backend);
      return;
    }
    claims.delete(service);
    if (claims.size === 0) this.backendClaims.delete(backend);
    else if (claims.size === 1) this.backendClaims.set(backend, claims.keys().next().value!);
  }

  private countWin(groupKey: string, by: number): void {
    const n = (this.wonFrontends.get(groupKey) ?? 0) + by;
    if (n === 0) this.wonFrontends.delete(groupKey);
    else this.wonFrontends.set(groupKey, n);
  }

  // ---- outputs ----

  private emitBackend(key: string): ItemChange<DesiredBackend> {
    const before = this.backendsOut.get(key);
    const claims = this.backendClaims.get(key);
    const id = this.backendIds.get(key);
    let after: DesiredBackend | undefined;
    if (claims !== undefined && id !== undefined) {
      let chosen: BackendClaim | undefined;
      if (typeof claims === 'string') chosen = this.fragments.get(claims)!.backends.get(key)!;
      else {
        // In Service key order, the first claim saying "local", else the first: what the full
        // computation's single pass over sorted Services keeps.
        for (const svc of [...claims.keys()].sort(compareText)) {
          const draft = claims.get(svc)!;
          if (chosen === undefined || (draft.local && !chosen.local)) chosen = draft;
        }
      }
      // Spelled out, not spread: a spread gives every backend an out-of-object property array.
      const c = chosen!;
      after = { id, key, address: c.address, port: c.port, protocol: protocolOfKey(key), nodeName: c.nodeName, local: c.local };
    }
    if (before !== undefined) this.backendKeyById.delete(before.id);
    if (after === undefined) this.backendsOut.delete(key);
    else {
      this.backendsOut.set(key, after);
      this.backendKeyById.set(after.id, key);
    }
    return { before, after };
  }

  private emitService(key: string): ItemChange<DesiredService> {
    const before = this.servicesOut.get(key);
    const draft = this.groupDrafts.get(key);
    const after =
      draft !== undefined && this.liveGroups.has(key) && this.serviceIds.get(key) !== undefined
        ? toDesiredService(draft, this.serviceIds, this.backendIds)
        : undefined;
    if (before !== undefined && isLocalWithoutEndpoints(before)) this.noLocal[before.scope]--;
    if (after !== undefined && isLocalWithoutEndpoints(after)) this.noLocal[after.scope]++;
    if (after === undefined) this.servicesOut.delete(key);
    else this.servicesOut.set(key, after);
    return { before, after };
  }

  private emitFrontend(claimKey: string, out: Map<string, ItemChange<DesiredFrontend>>): void {
    const oldKey = this.frontendKeyOfClaim.get(claimKey);
    const before = oldKey === undefined ? undefined : this.frontendsOut.get(oldKey);
    const winner = this.winners.get(claimKey);
    const id = winner === undefined ? undefined : this.serviceIds.get(winner.group.key);
    const after = winner === undefined || id === undefined ? undefined : toDesiredFrontend(winner, id, this.masquerade);
    if (oldKey !== undefined) {
      this.frontendsOut.delete(oldKey);
      this.frontendKeyOfClaim.delete(claimKey);
      // The same claim key can change kind (ClusterIP → ExternalIP winner): two output keys.
      if (after === undefined || after.key !== oldKey) out.set(oldKey, { before, after: undefined });
    }
    if (after !== undefined) {
      this.frontendsOut.set(after.key, after);
      this.frontendKeyOfClaim.set(claimKey, after.key);
      out.set(after.key, { before: after.key === oldKey ? before : undefined, after });
    }
  }

  private emitAll(
    frontends: Map<string, ItemChange<DesiredFrontend>>,
    services: Map<string, ItemChange<DesiredService>>,
    backends: Map<string, ItemChange<DesiredBackend>>,
  ): void {
    for (const key of new Set([...this.backendClaims.keys(), ...this.backendsOut.keys()])) {
      const change = this.emitBackend(key);
      backends.set(key, { before: backends.get(key)?.before ?? change.before, after: change.after });
    }
    for (const key of new Set([...this.groupDrafts.keys(), ...this.servicesOut.keys()])) {
      const change = this.emitService(key);
      services.set(key, { before: services.get(key)?.before ?? change.before, after: change.after });
    }
    const again = new Map<string, ItemChange<DesiredFrontend>>();
    for (const claimKey of new Set([...this.winners.keys(), ...this.frontendKeyOfClaim.keys()])) this.emitFrontend(claimKey, again);
    for (const [key, change] of again) frontends.set(key, { before: frontends.get(key)?.before ?? change.before, after: change.after });
  }

  /** Re-decides health check ports: whether any served check, or any conflict, changed. */
  private decideHealthChecks(ports: Iterable<number>): { changed: boolean; problemsChanged: boolean } {
    let changed = false;
    let problemsChanged = false;
    for (const port of ports) {
      const claims = this.healthClaims.get(port) ?? [];
      const before = this.healthOut.get(port);
      if (this.healthProblems.has(port)) problemsChanged = true;
      if (claims.length === 0) {
        this.healthClaims.delete(port);
        this.healthOut.delete(port);
        this.healthProblems.delete(port);
        changed ||= before !== undefined;
        continue;
      }
      const ordered = [...claims].sort(compareHealthChecks);
      this.healthOut.set(port, ordered[0]!);
      // As the full computation words it: each loser names the claim sorted just before it.
      if (ordered.length > 1) this.healthProblems.set(port, ordered.slice(1).map((check, i) => healthCheckConflictProblem(check, ordered[i]!)));
      else this.healthProblems.delete(port);
      if (this.healthProblems.has(port)) problemsChanged = true;
      changed ||= before !== ordered[0];
    }
    return { changed, problemsChanged };
  }
}

export { backendKey };
