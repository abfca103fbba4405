/**
 * The bpfproxy agent: kube-proxy's split, over BPF maps.
 *
 *   source (YAML directory or Kubernetes API) ──events──▶ change trackers (record only)
 *   BoundedFrequencyRunner ──▶ Syncer.sync(): desired state (pure) → entries → Reconciler.apply
 *   HTTP: /healthz /livez (healthz server), /metrics /proxyMode (metrics server), health-check
 *   node ports of ETP Local services; conntrack garbage collection; pod interface attachment.
 *
 * Start adopts what a previous agent left — pinned maps, pinned links, the id bookkeeping — and
 * writes only what differs. Stop releases this process's handles and keeps the pins and links, so
 * traffic keeps flowing while no agent runs; nothing is ever flushed.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { collectDefaultMetrics } from 'prom-client';

import { legacyMapNames, mapSpecs } from '../abi/maps.js';
import { attachDatapath, LOOPBACK, type AttachedDatapath } from '../dataplane/attach.js';
import { collectConntrack } from '../dataplane/conntrack-gc.js';
import { describeMigration, loadDatapath, migrateLegacyMaps, type Datapath } from '../dataplane/loader.js';
import { readOccupancy } from '../dataplane/occupancy.js';
import { Reconciler } from '../dataplane/reconciler.js';
import { ensureBpffs } from '../dataplane/bpffs.js';
import { settleConntrackPins, writeDowngradeSnapshot } from '../dataplane/release-handover.js';
import type { AgentPort, DesiredState, Problem } from '../model/index.js';
import { sourceFromConfig } from '../sources/from-config.js';
import type { ClusterEvents, ClusterSource, ProblemRecorder, ServiceCIDR } from '../sources/source.js';
import { splitBindAddress, type AgentConfig } from './config.js';
import { registerDataplaneMetrics } from './dataplane-metrics.js';
import { datapathConfigFor, loaderMapSizes } from './datapath-config.js';
import { healthServer, listen, metricsServer, ProxierHealth, type Listening } from './health.js';
import { HealthCheckNodePorts, type HealthCheck } from './healthcheck-nodeports.js';
import { defaultRouteInterface, interfaceAddresses, LinkMonitor } from './host-network.js';
import { createLogger, type Logger } from './logger.js';
import { MapPressure, PRESSURE_THRESHOLD } from './map-pressure.js';
import { NodeLock } from './node-lock.js';
import { checkPins } from './pin-watchdog.js';
import { AgentMetrics } from './metrics.js';
import { PodInterfaces } from './pod-interfaces.js';
import { cidrsOfServiceCIDRObjects, desiredServiceRoutes, ensureLoAcceptLocal, ensureServiceDevice, syncServiceRoutes } from './service-device.js';
import { BoundedFrequencyRunner, type SyncReason } from './runner.js';
import { Syncer, type SyncOutcome } from './syncer.js';

/** This process's own network namespace, for attachDatapath's setns (a no-op round trip). */
const OWN_NETNS = '/proc/thread-self/ns/net';
/** Every sync between full ones writes only what changed; kube-proxy's iptables mode: 1 h. */
const FULL_SYNC_PERIOD_MS = 60 * 60 * 1000;

export interface AgentDeps {
  /** The cluster source (default: the one the configuration names). */
  source?: ClusterSource;
  logger?: Logger;
  /** Conntrack garbage collection period (default 60 s). */
  conntrackGcIntervalMs?: number;
  /** Periodic pod interface rescan, on top of link events (default 10 s). */
  interfaceRescanMs?: number;
  /** How often pins are checked (pin-watchdog.ts), beside every sync (default 5 s). */
  pinCheckIntervalMs?: number;
  /** How often map occupancy is checked for pressure warnings (default 5 s). */
  mapPressureIntervalMs?: number;
}

/** A socket the agent bound, as the model's refusals know it ('0.0.0.0': every node address). */
function agentPort(host: string, port: number, what: string): AgentPort {
  return { address: ['', '0.0.0.0', '::', '[::]'].includes(host) ? '0.0.0.0' : host, port, what };
}

export class AgentStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentStartError';
  }
}

/** A sync that wrote everything except some entries (reported); the runner retries it. */
class PartialSyncError extends Error {}

export class Agent {
  readonly metrics = new AgentMetrics();
  readonly health: ProxierHealth;
  /** Resolves once the first sync after the source synced has been written. */
  readonly ready: Promise<void>;
  private markReady!: () => void;
  private isReady = false;
  private lastFullSyncAt = 0;
  private wantedHealthChecks: HealthCheck[] = [];
  private sourceSynced = false;
  private readonly log: Logger;
  private source!: ClusterSource;
  private dp!: Datapath;
  private attached!: AttachedDatapath;
  private reconciler!: Reconciler;
  private syncer!: Syncer;
  private runner!: BoundedFrequencyRunner;
  private pods!: PodInterfaces;
  private linkMonitor: LinkMonitor | undefined;
  private healthChecks!: HealthCheckNodePorts;
  private servers: Listening[] = [];
  private timers: NodeJS.Timeout[] = [];
  private readonly mapPressure = new MapPressure();
  private problems = new Set<string>();
  /** Problems as Kubernetes Events (a source with an API only). */
  private recorder: ProblemRecorder | undefined;
  /** ServiceCIDR objects by name (recorded by the source's handler, read by the sync loop). */
  private serviceCIDRObjects = new Map<string, ServiceCIDR>();
  /** The service device's routes may be out of date (a Service, ServiceCIDR or node address changed). */
  private routesDirty = true;
  private routedFor = '';
  private nodeDeleting: string | undefined;
  private stopping: Promise<void> | undefined;
  private readonly startedAt = Date.now();
  uplink = '';
  nodeIp: string | undefined;

  private constructor(
    readonly config: AgentConfig,
    private readonly deps: AgentDeps,
  ) {
    this.log = deps.logger ?? createLogger();
    this.health = new ProxierHealth(config.proxy.syncPeriod);
    this.ready = new Promise((r) => (this.markReady = r));
  }

  static async start(config: AgentConfig, deps: AgentDeps = {}): Promise<Agent> {
    const agent = new Agent(config, deps);
    try {
      await agent.startInner();
    } catch (e) {
      agent.log.error({ err: e }, 'agent failed to start');
      await agent.stop().catch(() => undefined);
      throw e;
    }
    return agent;
  }

  /** The desired state of the last sync (for tests and status). */
  get lastState(): DesiredState | undefined {
    return this.syncer?.lastState;
  }

  get datapath(): Datapath {
    return this.dp;
  }

  /** The HTTP servers' ports (a bind address with port 0 gets a free one). */
  get ports(): { healthz?: number; metrics?: number } {
    return { ...(this.healthzListening ? { healthz: this.healthzListening.port } : {}), ...(this.metricsListening ? { metrics: this.metricsListening.port } : {}) };
  }
  private lock: NodeLock | undefined;
  /** The datapath was uninstalled under us (pin-watchdog.ts): pins are left alone from then on. */
  private uninstalled = false;
  private healthzListening: Listening | undefined;
  private metricsListening: Listening | undefined;

  private async startInner(): Promise<void> {
    const c = this.config;
    // 1. Where the node is: its uplink and the address masqueraded traffic leaves with.
    const uplink = c.uplinkInterfaces[0] || (await defaultRouteInterface());
    if (!uplink) throw new AgentStartError('no uplink: this network namespace has no IPv4 default route; set uplinkInterface (--uplink-interface)');
    this.uplink = uplink;
    // Every uplink gets the uplink programs (NodePorts answer on each); the first is the primary.
    const uplinks = [uplink, ...c.uplinkInterfaces.slice(1)];
    const uplinkAddresses: string[] = [];
    for (const u of uplinks) {
      try {
        uplinkAddresses.push(...(await interfaceAddresses(u)));
      } catch (e) {
        throw new AgentStartError(`uplink ${u}: ${(e as Error).message}`);
      }
    }
    this.nodeIp = uplinkAddresses[0];
    let podPattern: RegExp;
    try {
      podPattern = new RegExp(c.podInterfacePattern);
    } catch (e) {
      throw new AgentStartError(`podInterfacePattern: ${(e as Error).message}`);
    }

    // 2. What can fail without touching the node goes first: the health and metrics ports (a port
    //    taken, say by kube-proxy, must not cost a load and an attach first) and the source (no
    //    kubeconfig and no cluster: a clear exit, not a retry loop). /healthz answers 503 until
    //    the first sync.
    const agentPorts: AgentPort[] = [];
    if (c.healthzBindAddress) {
      const { host, port } = splitBindAddress(c.healthzBindAddress, 'healthzBindAddress');
      this.healthzListening = await listen(healthServer(this.health, this.metrics), host, port);
      this.servers.push(this.healthzListening);
      agentPorts.push(agentPort(host, this.healthzListening.port, 'healthz'));
    }
    if (c.metricsBindAddress) {
      const { host, port } = splitBindAddress(c.metricsBindAddress, 'metricsBindAddress');
      this.metricsListening = await listen(metricsServer(this.metrics), host, port);
      this.servers.push(this.metricsListening);
      agentPorts.push(agentPort(host, this.metricsListening.port, 'metrics'));
    }
    this.source =
      this.deps.source ??
      (await sourceFromConfig(c.source, { nodeName: c.hostnameOverride, log: (msg, fields) => this.log.warn({ source: c.source.kind, ...fields }, msg) }));

    this.recorder = this.source.problemRecorder?.({
      nodeName: c.hostnameOverride,
      log: (msg, fields) => this.log.warn({ source: c.source.kind, ...fields }, msg),
      onResult: (result) => this.metrics.events.inc({ result }),
    });

    // 3. The datapath: load (adopting pinned maps), attach (adopting pinned links), adopt state;
    //    only once no other agent holds this node (node-lock.ts).
    await ensureBpffs(c.bpffsDir);
    this.lock = NodeLock.acquire(c.bpffsDir);
    if (c.serviceInterface) {
      // Before the attach, which needs the device; its routes follow the Services (syncRoutes).
      const dev = await ensureServiceDevice(c.serviceInterface);
      this.log.info({ serviceInterface: c.serviceInterface, kind: dev.kind, created: dev.created }, dev.created ? 'service device created' : 'service device adopted');
    }
    // Node-sourced packets the datapath delivers to the node come in through lo (bpf/lib/local.h).
    const acceptLocal = ensureLoAcceptLocal();
    if (acceptLocal) this.log.warn(acceptLocal);
    const { config: dpConfig, notes } = datapathConfigFor(c, this.nodeIp);
    for (const note of notes) this.log.warn({ uplink }, note);
    if (c.mapSizes.snat !== undefined) this.log.warn('mapSizes.snat is ignored: SNAT ports are conntrack reply entries, sized by mapSizes.conntrack');
    // Another release's conntrack, or our own stale one (release-handover.ts): decided by what runs.
    const settled = settleConntrackPins(c.bpffsDir);
    if (settled.unpinned.length > 0) this.log.info(settled, settled.live === mapSpecs.ct4.name ? 'our downgrade snapshot was not taken over: unpinned' : `an older release ran since (its programs use ${settled.live}): our conntrack pin is stale, unpinned`);
    this.dp = await loadDatapath({ pinDir: c.bpffsDir, config: dpConfig, mapSizes: loaderMapSizes(c.mapSizes), deferMigration: true });
    // An older agent's conntrack (a map whose layout changed since), copied before our programs
    // take the hooks, so that none of its established flows meets an empty table, and again once
    // they hold every hook, the pods' too (what its programs made meanwhile; loader.ts
    // migrateLegacyMaps).
    try {
      const before = migrateLegacyMaps(c.bpffsDir, this.dp.maps, { keepSource: true });
      if (before) this.log.info({ migration: before }, describeMigration(before));
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'an older agent\'s conntrack could not be migrated: its flows are not carried over');
    }
    this.attached = attachDatapath(this.dp, {
      netnsPath: OWN_NETNS,
      uplink: uplinks,
      podInterfaces: [],
      xdpMode: c.xdpMode,
      ...(c.serviceInterface ? { serviceDevice: c.serviceInterface } : {}),
    });
    this.reconciler = new Reconciler(this.dp);
    this.reconciler.adopt();
    const adopted = this.reconciler.entryCounts();
    this.log.info({ bpffsDir: c.bpffsDir, uplink, ...(uplinks.length > 1 && { uplinks }), serviceInterface: c.serviceInterface || undefined, nodeIp: this.nodeIp, xdpMode: c.xdpMode, adopted }, 'datapath loaded');

    // 4. Pod interfaces: attach to those present, then follow link events.
    this.pods = new PodInterfaces(this.attached, {
      pattern: podPattern,
      uplink,
      // The node's own devices: their links are never a pod's (nor stale when no pod matches).
      nodeDevices: [LOOPBACK, ...uplinks.slice(1), ...(c.serviceInterface ? [c.serviceInterface] : [])],
      onAttach: (ifname) => this.log.info({ ifname }, 'pod interface attached'),
      onDetach: (ifname) => this.log.info({ ifname }, 'pod interface detached'),
      onError: (ifname, err) => {
        this.metrics.attachErrors.inc();
        this.log.warn({ ifname, err }, 'cannot attach to pod interface');
      },
    });
    await this.rescanPods();
    // Now that every hook runs our programs: the flows the older agent's made since the first copy.
    try {
      const migration = migrateLegacyMaps(c.bpffsDir, this.dp.maps);
      if (migration) this.log.info({ migration }, describeMigration(migration));
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'an older agent\'s conntrack could not be migrated: its flows are not carried over');
    }
    this.linkMonitor = new LinkMonitor(
      () => void this.rescanPods(),
      (m) => this.log.warn(m),
    );
    this.linkMonitor.start();
    this.every(this.deps.interfaceRescanMs ?? 10_000, () => void this.rescanPods());
    this.every(this.deps.pinCheckIntervalMs ?? 5_000, () => this.checkPins());

    // 5. Metrics of the datapath; health-check node ports.
    collectDefaultMetrics({ register: this.metrics.registry });
    registerDataplaneMetrics(this.metrics.registry, {
      dp: this.dp,
      services: () => this.syncer.serviceList(),
      occupancy: () => readOccupancy(this.dp, this.reconciler.entryCounts()),
    });
    if (this.dp.countProblem) {
      this.log.warn({ err: this.dp.countProblem }, 'this kernel cannot count map entries (map_count.bpf.c needs BTF and Linux 6.6): occupancy of conntrack, affinity and fragment maps is not reported');
    }
    this.metrics.sourceHealthy.set(1);
    this.healthChecks = new HealthCheckNodePorts(
      () => this.health.status(true).healthy,
      '0.0.0.0',
      (port, err) => this.log.error({ port, err }, 'cannot serve health-check node port'),
    );

    // 6. The sync loop, started once the source has listed everything.
    this.syncer = new Syncer(this.dp, this.reconciler, {
      // The sockets bound above: no Service may shadow them (ts/model/refusals.ts).
      proxy: { ...c.proxy, agentPorts },
      nodeName: c.hostnameOverride,
      fallbackAddresses: () => uplinkAddresses,
    });
    this.runner = new BoundedFrequencyRunner((reason) => this.syncOnce(reason), {
      minIntervalMs: c.proxy.minSyncPeriod,
      maxIntervalMs: c.proxy.syncPeriod,
      retryIntervalMs: Math.max(c.proxy.minSyncPeriod, 1000),
      retryMaxIntervalMs: c.proxy.syncPeriod,
    });

    // 7. The source starts: events only reach the trackers.
    this.log.info({ source: this.source.description, node: c.hostnameOverride }, 'starting source');
    await this.source.start(this.events());

    // 8. Conntrack garbage collection, and map pressure (which hastens it when conntrack fills).
    this.every(this.deps.conntrackGcIntervalMs ?? 60_000, () => this.collectConntrack());
    this.every(this.deps.mapPressureIntervalMs ?? 5_000, () => this.checkMapPressure());
  }

  /**
   * Warns as a map passes 80 % or fills, once per crossing (map-pressure.ts). Conntrack past 80 %
   * is collected at once, closed flows included (conntrack-gc.ts reclaimClosed), instead of at the
   * next period: a full table drops new flows until room is made.
   */
  private checkMapPressure(): void {
    if (this.stopping || !this.dp || !this.reconciler) return;
    try {
      const occupancy = readOccupancy(this.dp, this.reconciler.entryCounts());
      for (const c of this.mapPressure.update(occupancy)) {
        const fields = { map: c.map, entries: c.entries, capacity: c.capacity, level: c.level };
        if (c.level === 'ok') this.log.info(fields, c.message);
        else {
          this.metrics.mapPressureWarnings.inc({ map: c.map, level: c.level });
          this.log.warn(fields, c.message);
        }
      }
      const ct = occupancy.find((o) => o.key === 'ct4');
      if (ct && ct.entries >= PRESSURE_THRESHOLD * ct.capacity) this.collectConntrack(true);
    } catch (e) {
      this.log.error({ err: e }, 'cannot read map occupancy');
    }
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }

  /** pin-watchdog.ts: missing pins come back from our handles, before a restart needs them. */
  private checkPins(): void {
    if (this.stopping || !this.dp || !this.attached) return;
    if (this.uninstalled) return;
    const { restored, problems, uninstalled } = checkPins(this.dp, this.attached);
    if (uninstalled) {
      this.uninstalled = true;
      this.log.error({ bpffsDir: this.config.bpffsDir }, 'the datapath was uninstalled under the running agent (every link detached: bpfproxy cleanup --force?); its pins are not restored: restart the agent to install it again');
      return;
    }
    if (restored.length > 0) {
      this.metrics.pinsRestored.inc(restored.length);
      this.log.warn({ restored }, 'pins were removed under the running agent: pinned again from its handles, so that a restart adopts them');
    }
    for (const p of problems) this.log.error(p, 'a pin of the datapath is not ours');
  }

  private async rescanPods(): Promise<void> {
    if (this.stopping) return;
    try {
      await this.pods.rescan();
      this.metrics.podInterfaces.set(this.pods.names().length);
    } catch (e) {
      this.log.warn({ err: e }, 'pod interface rescan failed');
    }
  }

  private events(): ClusterEvents {
    const changed = () => {
      this.health.queued();
      this.metrics.lastQueued.setToCurrentTime();
      this.metrics.serviceChangesPending.set(this.syncer.services.pendingCount);
      this.metrics.endpointChangesPending.set(this.syncer.endpointSlices.pendingCount);
      if (this.sourceSynced) this.runner.run();
    };
    return {
      service: (p, c) => {
        this.syncer.services.record(p, c);
        this.routesDirty = true;
        this.metrics.serviceChangesTotal.inc();
        changed();
      },
      ...(this.config.serviceInterface && this.config.serviceCIDRs === undefined
        ? {
            serviceCIDR: (p: ServiceCIDR | undefined, c: ServiceCIDR | undefined) => {
              const name = (c ?? p)?.metadata?.name ?? '';
              if (c) this.serviceCIDRObjects.set(name, c);
              else this.serviceCIDRObjects.delete(name);
              this.routesDirty = true;
              if (this.sourceSynced) this.runner.run();
            },
          }
        : {}),
      endpointSlice: (p, c) => {
        this.syncer.endpointSlices.record(p, c);
        this.metrics.endpointChangesTotal.inc();
        changed();
      },
      node: (p, c) => {
        if ((c ?? p)?.metadata?.name !== this.config.hostnameOverride) return;
        this.syncer.nodes.record(p, c);
        this.checkNodeDeletion();
        if (this.sourceSynced) this.runner.run();
      },
      synced: () => {
        if (this.sourceSynced) return;
        this.sourceSynced = true;
        this.log.info({ source: this.source.description, services: this.syncer.services.current().length, endpointSlices: this.syncer.endpointSlices.current().length }, 'source synced');
        this.runner.start();
      },
      health: (healthy, reason) => {
        this.metrics.sourceHealthy.set(healthy ? 1 : 0);
        this.health.setSourceDegraded(healthy ? undefined : `source ${this.source.description}: ${reason ?? 'unhealthy'}`);
        if (healthy) this.log.info({ source: this.source.description }, 'source healthy again');
        else this.log.warn({ source: this.source.description, reason }, 'source unhealthy: serving the last known state');
      },
    };
  }

  private checkNodeDeletion(): void {
    const reason = this.syncer.nodeDeletion();
    if (reason === this.nodeDeleting) return;
    this.nodeDeleting = reason;
    this.health.setNodeDeleting(reason !== undefined);
    if (reason) this.log.warn({ node: this.config.hostnameOverride, reason }, 'node is being deleted: /healthz fails from now on');
  }

  private async syncOnce(reason: SyncReason): Promise<void> {
    if (!this.sourceSynced || this.stopping) return;
    const startedAt = Date.now();
    let outcome: SyncOutcome;
    try {
      const full = Date.now() - this.lastFullSyncAt >= FULL_SYNC_PERIOD_MS;
      outcome = this.syncer.sync({ full });
      if (outcome.full) this.lastFullSyncAt = Date.now();
    } catch (e) {
      this.metrics.syncErrors.inc({ stage: 'sync' });
      this.metrics.syncs.inc({ reason, result: 'error' });
      this.log.error({ err: e, reason }, 'sync failed');
      throw e;
    }
    const { result, summary } = outcome;
    const m = this.metrics;
    m.syncDuration.observe(outcome.durationMs / 1000);
    m.serviceChangesPending.set(this.syncer.services.pendingCount);
    m.endpointChangesPending.set(this.syncer.endpointSlices.pendingCount);
    m.mapWrites.inc({ op: 'update' }, result.written);
    m.mapWrites.inc({ op: 'delete' }, result.deleted);
    for (const f of result.failures) {
      m.mapWriteErrors.inc({ map: f.map, code: f.code });
      this.log.error(
        { map: f.map, code: f.code, frontend: f.frontend, error: f.message },
        f.frontend ? `cannot write service ${f.frontend}: left as it was, retrying` : `cannot write ${f.map}: retrying`,
      );
    }
    if (result.failures.length > 0) m.syncErrors.inc({ stage: 'apply' });
    this.checkPins();
    m.staleEntriesDeleted.inc({ kind: 'flow' }, outcome.stale.flows);
    m.staleEntriesDeleted.inc({ kind: 'affinity' }, outcome.stale.affinities);
    if (outcome.stale.flows + outcome.stale.affinities > 0) this.log.info(outcome.stale, 'endpoints left their Services: their UDP flows and affinities deleted');
    if (outcome.problemsChanged) this.reportProblems(outcome.problems);
    m.noLocalEndpoints.set({ traffic_policy: 'internal' }, summary.noLocalEndpoints.internal);
    m.noLocalEndpoints.set({ traffic_policy: 'external' }, summary.noLocalEndpoints.external);

    // Up to date unless a write failed for another reason than room (health.ts, synced).
    this.health.synced(startedAt, result.failures);
    m.lastSync.setToCurrentTime();
    const now = Date.now();
    for (const t of outcome.triggerTimes) if (t <= now) m.networkProgrammingDuration.observe((now - t) / 1000);
    if (outcome.healthChecks !== undefined) {
      this.wantedHealthChecks = outcome.healthChecks.map((h) => ({ port: h.port, namespace: h.namespace, name: h.name, localEndpoints: h.localEndpoints }));
    }
    await this.syncRoutes(outcome.node.info.addresses);
    // Every sync: a port that could not be bound last time is tried again.
    await this.healthChecks.sync(this.wantedHealthChecks);
    m.healthCheckNodePorts.set(this.healthChecks.ports().length);

    const fields = {
      reason,
      full: outcome.full,
      frontends: summary.frontends,
      backends: summary.backends,
      written: result.written,
      deleted: result.deleted,
      failures: result.failures.length,
      ms: Math.round(outcome.durationMs * 10) / 10,
      ...(outcome.recoveredIds ? { recoveredIds: true } : {}),
    };
    m.syncs.inc({ reason, result: result.failures.length > 0 ? 'partial' : 'ok' });
    if (!this.isReady) {
      this.isReady = true;
      this.log.info(
        {
          node: this.config.hostnameOverride,
          nodeAddresses: outcome.node.info.addresses,
          nodeObject: outcome.node.fromNodeObject,
          source: this.source.description,
          uplink: this.uplink,
          podInterfaces: this.pods.names().length,
          healthz: this.ports.healthz,
          metrics: this.ports.metrics,
          startupMs: Date.now() - this.startedAt,
          ...fields,
        },
        'agent ready',
      );
      this.markReady();
      void this.collectConntrack();
    } else if (result.written + result.deleted > 0 || result.failures.length > 0) {
      this.log.info(fields, 'synced');
    } else {
      this.log.debug(fields, 'synced, nothing to write');
    }
    if (result.failures.length > 0) throw new PartialSyncError(`${result.failures.length} map writes failed`);
  }

  /**
   * The service device's routes (ts/agent/service-device.ts), when something they depend on changed.
   * A failure is logged and retried at the next sync; the maps are written either way.
   */
  private async syncRoutes(nodeAddresses: readonly string[]): Promise<void> {
    const c = this.config;
    if (!c.serviceInterface) return;
    const own = [...new Set([...nodeAddresses, ...(this.nodeIp ? [this.nodeIp] : [])])].sort();
    const key = own.join(',');
    if (!this.routesDirty && key === this.routedFor) return;
    const cidrs = c.serviceCIDRs ?? cidrsOfServiceCIDRObjects(this.serviceCIDRObjects.values());
    const routes = desiredServiceRoutes(this.syncer.services.current(), cidrs, own);
    this.routesDirty = false;
    try {
      const { added, deleted } = await syncServiceRoutes(c.serviceInterface, routes, this.nodeIp);
      this.routedFor = key;
      if (added + deleted > 0) this.log.info({ serviceInterface: c.serviceInterface, serviceCIDRs: cidrs, routes: routes.length, added, deleted }, 'service device routes synced');
    } catch (e) {
      this.routesDirty = true;
      this.metrics.syncErrors.inc({ stage: 'routes' });
      this.log.error({ err: e, serviceInterface: c.serviceInterface }, 'cannot sync the service device\'s routes: retrying at the next sync');
    }
  }

  private reportProblems(problems: readonly Problem[]): void {
    const byKind = new Map<string, number>();
    const now = new Set<string>();
    for (const p of problems) {
      byKind.set(p.kind, (byKind.get(p.kind) ?? 0) + 1);
      const key = JSON.stringify(p);
      now.add(key);
      if (!this.problems.has(key)) this.log.warn({ kind: p.kind, namespace: p.namespace, name: p.name, ...(p.port ? { port: p.port } : {}), reason: p.reason }, `${p.kind} ${p.namespace ? `${p.namespace}/` : ''}${p.name}: ${p.reason}`);
    }
    for (const key of this.problems) {
      if (!now.has(key)) {
        const p = JSON.parse(key) as Problem;
        this.log.info({ kind: p.kind, namespace: p.namespace, name: p.name }, `resolved: ${p.kind} ${p.namespace ? `${p.namespace}/` : ''}${p.name}: ${p.reason}`);
      }
    }
    this.problems = now;
    this.recorder?.observe(problems);
    this.metrics.serviceProblems.reset();
    for (const [kind, n] of byKind) this.metrics.serviceProblems.set({ kind }, n);
  }

  private collectConntrack(underPressure = false): void {
    if (this.stopping || !this.dp) return;
    const end = this.metrics.conntrackGcDuration.startTimer();
    try {
      const r = collectConntrack(this.dp.maps.ct4.raw, { reclaimClosed: underPressure });
      end();
      const m = this.metrics;
      m.conntrackGcRuns.inc({ result: 'ok' });
      m.conntrackGcScanned.inc(r.scanned);
      m.conntrackGcDeleted.inc({ direction: 'forward' }, r.flows);
      m.conntrackGcDeleted.inc({ direction: 'reply' }, r.deleted - r.flows);
      m.conntrackGcSnatReleased.inc(r.snatReleased);
      m.conntrackEntries.set(r.live);
      m.conntrackGcClosed.inc(r.closed);
      if (r.closed > 0) this.log.info({ ...r, durationMs: Math.round(r.durationMs) }, 'conntrack under pressure: closed flows reclaimed before their deadline');
      else if (r.deleted > 0) this.log.debug({ ...r, durationMs: Math.round(r.durationMs) }, 'conntrack garbage collected');
    } catch (e) {
      end();
      this.metrics.conntrackGcRuns.inc({ result: 'error' });
      this.log.error({ err: e }, 'conntrack garbage collection failed');
    }
  }

  /** Stops syncing and serving; keeps pinned maps and links, so traffic keeps flowing. */
  stop(): Promise<void> {
    this.stopping ??= this.stopInner();
    return this.stopping;
  }

  /** release-handover.ts: our flows in the layout an older release reads, in case one comes next. */
  private leaveDowngradeSnapshot(): void {
    // Not after an uninstall, nor where our conntrack is no longer pinned: the node is not ours to leave state on.
    if (!this.dp || !this.lock || this.uninstalled || !existsSync(join(this.config.bpffsDir, mapSpecs.ct4.name))) return;
    const flows = writeDowngradeSnapshot(this.config.bpffsDir, this.dp.maps);
    this.log.info({ entries: flows, pin: legacyMapNames.ct4V2 }, 'conntrack left in the previous layout too, for a downgrade');
  }

  private async stopInner(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.linkMonitor?.stop();
    const steps: [string, () => unknown][] = [
      ['sync loop', () => this.runner?.stop()],
      ['source', () => this.source?.stop()],
      ['events', () => this.recorder?.stop()],
      ['health-check node ports', () => this.healthChecks?.close()],
      ['servers', () => Promise.all(this.servers.map((s) => s.close()))],
      ['downgrade snapshot', () => this.leaveDowngradeSnapshot()],
      ['links', () => this.attached?.close()],
      ['datapath', () => this.dp?.close()],
      ['node lock', () => this.lock?.release()],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (e) {
        this.log.warn({ err: e }, `stopping ${what} failed`);
      }
    }
    this.log.info({ bpffsDir: this.config.bpffsDir }, 'agent stopped; pinned maps and links stay, traffic keeps flowing');
  }
}

