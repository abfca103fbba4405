/**
 * The datapath's own counters as Prometheus metrics, read from the maps when /metrics is scraped
 * (collect callbacks), never copied on a timer: per service group (svcstat_v1, by svc_id:
 * packets, bytes and new flows in the forward direction), per drop reason (drops_v1, named as
 * the shared DropReason enum), what became of IPv4 fragments (fragstat_v1), plus how full each map is
 * (exact: dataplane/occupancy.ts).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

import { FragStat } from '../abi/constants.js';
import { sumPerCpu } from '../dataplane/typed-map.js';
import type { Datapath } from '../dataplane/loader.js';
import { DROP_REASONS } from '../abi/drop-reason.js';
import type { MapOccupancy } from '../dataplane/occupancy.js';
import type { DesiredService } from '../model/index.js';
import { PRESSURE_THRESHOLD } from './map-pressure.js';

export interface DataplaneMetricsSource {
  dp: Datapath;
  /** The service groups of the last sync: which svc_ids to read and how to label them. */
  services(): readonly DesiredService[];
  /** How full each map that can fill is, now (readOccupancy). */
  occupancy(): readonly MapOccupancy[];
}

const SERVICE_LABELS = ['namespace', 'service', 'port', 'protocol', 'scope'] as const;

function serviceLabels(s: DesiredService) {
  return { namespace: s.service.namespace, service: s.service.name, port: s.service.portName, protocol: s.service.protocol, scope: s.scope };
}


export function registerDataplaneMetrics(registry: Registry, src: DataplaneMetricsSource): void {
  const svcStat = (id: number) => sumPerCpu(src.dp.maps.svcstat.getPerCpu(id));
  const perService = (name: string, help: string, field: 'packets' | 'bytes' | 'new_flows') =>
    new Counter({
      name,
      help,
      labelNames: SERVICE_LABELS,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of src.services()) {
          const stat = svcStat(s.id);
          if (stat) this.inc(serviceLabels(s), Number(stat[field]));
        }
      },
    });
  perService('bpfproxy_service_packets_total', 'Packets translated to a backend, per service port and scope (internal: ClusterIP; external: NodePort, LoadBalancer, externalIPs)', 'packets');
  perService('bpfproxy_service_bytes_total', 'Bytes translated to a backend, per service port and scope', 'bytes');
  perService('bpfproxy_service_new_flows_total', 'New flows given a backend, per service port and scope', 'new_flows');

  const perDrop = (name: string, help: string, field: 'packets' | 'bytes') =>
    new Counter({
      name,
      help,
      labelNames: ['reason'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const r of DROP_REASONS) {
          const stat = sumPerCpu(src.dp.maps.drops.getPerCpu(r.value));
          this.inc({ reason: r.name }, stat ? Number(stat[field]) : 0);
        }
      },
    });
  perDrop('bpfproxy_drop_packets_total', 'Packets dropped or rejected by the datapath, by reason (docs/datapath.md)', 'packets');
  perDrop('bpfproxy_drop_bytes_total', 'Bytes dropped or rejected by the datapath, by reason', 'bytes');

  new Counter({
    name: 'bpfproxy_fragment_packets_total',
    help: 'IPv4 fragments of TCP and UDP seen on tc, by result: FIRST (its ports recorded), LATER (translated as its datagram), NO_FIRST (its first fragment not seen: passed untouched)',
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [result, index] of Object.entries(FragStat)) {
        const stat = sumPerCpu(src.dp.maps.fragstat.getPerCpu(index));
        this.inc({ result }, stat ? Number(stat.packets) : 0);
      }
    },
  });

  // One read of the counts per scrape, shared by the two gauges that need it (prom-client collects
  // the metrics of a scrape one after the other, within one tick).
  let occupancy: { at: number; value: readonly MapOccupancy[] } | undefined;
  const occupancyNow = () => {
    const at = performance.now();
    if (!occupancy || at - occupancy.at > 100) occupancy = { at, value: src.occupancy() };
    return occupancy.value;
  };
  new Gauge({
    name: 'bpfproxy_map_entries',
    help: 'Entries in each BPF map that can fill, exact: hash maps as the kernel counts them (conntrack, affinity and fragments included), LPM tries as the agent wrote them; arrays are left out (never short of room)',
    labelNames: ['map'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const o of occupancyNow()) this.set({ map: o.map }, o.entries);
    },
  });
  new Gauge({
    name: 'bpfproxy_map_pressure',
    help: `1 while a BPF map holds ${Math.round(PRESSURE_THRESHOLD * 100)} % of its capacity or more (a warning is logged as it passes), else 0`,
    labelNames: ['map'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const o of occupancyNow()) this.set({ map: o.map }, o.entries >= PRESSURE_THRESHOLD * o.capacity ? 1 : 0);
    },
  });
  new Gauge({
    name: 'bpfproxy_map_capacity',
    help: 'max_entries of each BPF map',
    labelNames: ['map'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const m of Object.values(src.dp.maps)) this.set({ map: m.spec.name }, m.raw.info.maxEntries);
    },
  });
}
