/**
 * The agent's Prometheus metrics. Names are kube-proxy's where the meaning is the same, so that
 * dashboards and alerts written for kube-proxy keep working; ours are prefixed bpfproxy_.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

// kube-proxy's buckets for sync durations: exponential from 1 ms.
const syncBuckets = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];
const programmingBuckets = [0.25, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 75, 90, 105, 120, 135, 150, 165, 180, 195, 210, 225, 240, 255, 270, 285, 300];

export class AgentMetrics {
  readonly registry = new Registry();

  readonly syncDuration = new Histogram({
    name: 'kubeproxy_sync_proxy_rules_duration_seconds',
    help: 'SyncProxyRules latency in seconds',
    buckets: syncBuckets,
    registers: [this.registry],
  });
  readonly networkProgrammingDuration = new Histogram({
    name: 'kubeproxy_network_programming_duration_seconds',
    help: 'In Cluster Network Programming Latency in seconds',
    buckets: programmingBuckets,
    registers: [this.registry],
  });
  readonly lastSync = new Gauge({
    name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
    help: 'The last time proxy rules were successfully synced',
    registers: [this.registry],
  });
  readonly lastQueued = new Gauge({
    name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds',
    help: 'The last time a sync of proxy rules was queued',
    registers: [this.registry],
  });
  readonly serviceChangesPending = new Gauge({
    name: 'kubeproxy_sync_proxy_rules_service_changes_pending',
    help: 'Pending proxy rules Service changes',
    registers: [this.registry],
  });
  readonly serviceChangesTotal = new Counter({
    name: 'kubeproxy_sync_proxy_rules_service_changes_total',
    help: 'Cumulative proxy rules Service changes',
    registers: [this.registry],
  });
  readonly endpointChangesPending = new Gauge({
    name: 'kubeproxy_sync_proxy_rules_endpoint_changes_pending',
    help: 'Pending proxy rules Endpoint changes',
    registers: [this.registry],
  });
  readonly endpointChangesTotal = new Counter({
    name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total',
    help: 'Cumulative proxy rules Endpoint changes',
    registers: [this.registry],
  });
  readonly noLocalEndpoints = new Gauge({
    name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
    help: 'Number of services with a Local traffic policy and no endpoints',
    labelNames: ['traffic_policy'] as const,
    registers: [this.registry],
  });
  readonly healthz = new Counter({
    name: 'proxy_healthz_total',
    help: 'Cumulative proxy healthz HTTP status',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly livez = new Counter({
    name: 'proxy_livez_total',
    help: 'Cumulative proxy livez HTTP status',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly syncErrors = new Counter({
    name: 'bpfproxy_sync_errors_total',
    help: 'Syncs that failed, by the stage that failed',
    labelNames: ['stage'] as const,
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'bpfproxy_events_total',
    help: 'Problems posted as Kubernetes Events, by result (created, patched: a series count raised, failed, dropped: too many waiting)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly serviceProblems = new Gauge({
    name: 'bpfproxy_service_problems',
    help: 'Objects (or parts of them) left out of the dataplane because of invalid or unsupported input, by object kind (details in the logs)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly sourceHealthy = new Gauge({
    name: 'bpfproxy_source_healthy',
    help: '1 while the cluster source (API server or directory) is reachable and watched',
    registers: [this.registry],
  });
  readonly syncs = new Counter({
    name: 'bpfproxy_syncs_total',
    help: 'Syncs run, by why they ran (requested, periodic, retry) and result (ok, partial, error)',
    labelNames: ['reason', 'result'] as const,
    registers: [this.registry],
  });
  readonly mapWrites = new Counter({
    name: 'bpfproxy_map_writes_total',
    help: 'Map entries written (op=update) or deleted (op=delete) by syncs',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  readonly podInterfaces = new Gauge({
    name: 'bpfproxy_pod_interfaces',
    help: 'Pod interfaces with the datapath attached',
    registers: [this.registry],
  });
  readonly attachErrors = new Counter({
    name: 'bpfproxy_attach_errors_total',
    help: 'Failures to attach the datapath to a pod interface',
    registers: [this.registry],
  });
  readonly healthCheckNodePorts = new Gauge({
    name: 'bpfproxy_health_check_node_ports',
    help: 'Health-check node ports served (externalTrafficPolicy: Local services)',
    registers: [this.registry],
  });
  readonly conntrackGcRuns = new Counter({
    name: 'bpfproxy_conntrack_gc_runs_total',
    help: 'Conntrack garbage collection runs, by result (ok, error)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly conntrackGcScanned = new Counter({
    name: 'bpfproxy_conntrack_gc_scanned_total',
    help: 'Conntrack entries looked at by garbage collection',
    registers: [this.registry],
  });
  readonly conntrackGcDeleted = new Counter({
    name: 'bpfproxy_conntrack_gc_deleted_total',
    help: 'Expired conntrack entries deleted, by direction (forward, reply)',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly conntrackGcSnatReleased = new Counter({
    name: 'bpfproxy_conntrack_gc_snat_released_total',
    help: 'SNAT port reservations (reply entries) released by garbage collection',
    registers: [this.registry],
  });
  readonly conntrackGcClosed = new Counter({
    name: 'bpfproxy_conntrack_gc_closed_total',
    help: 'Entries of closed flows (TIME_WAIT, CLOSE) deleted before their deadline because conntrack was past 80 % full',
    registers: [this.registry],
  });
  readonly conntrackEntries = new Gauge({
    name: 'bpfproxy_conntrack_entries',
    help: 'Live conntrack entries at the last garbage collection',
    registers: [this.registry],
  });
  readonly conntrackGcDuration = new Histogram({
    name: 'bpfproxy_conntrack_gc_duration_seconds',
    help: 'Duration of one conntrack garbage collection',
    buckets: syncBuckets,
    registers: [this.registry],
  });
  readonly mapPressureWarnings = new Counter({
    name: 'bpfproxy_map_pressure_warnings_total',
    help: 'Warnings that a BPF map passed 80 % of its capacity (level high) or filled (level full), by map',
    labelNames: ['map', 'level'] as const,
    registers: [this.registry],
  });
  readonly pinsRestored = new Counter({
    name: 'bpfproxy_pins_restored_total',
    help: 'Pins of maps and links found removed under the running agent and pinned again from its handles',
    registers: [this.registry],
  });
  readonly staleEntriesDeleted = new Counter({
    name: 'bpfproxy_stale_entries_deleted_total',
    help: 'Entries deleted because their endpoint left the Service: UDP flows (flow) and ClientIP affinities (affinity), kube-proxy\'s conntrack cleanup',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly mapWriteErrors = new Counter({
    name: 'bpfproxy_map_write_errors_total',
    help: 'Failed BPF map writes, by map and errno code (E2BIG/ENOSPC: the map is full)',
    labelNames: ['map', 'code'] as const,
    registers: [this.registry],
  });
}
