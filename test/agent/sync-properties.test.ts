// Property: any sequence of Service and EndpointSlice changes (create, update ports, type,
// policies and endpoints, delete, re-add), applied through the agent's sync path (change trackers
// → Syncer → Reconciler) into real BPF maps, leaves the maps equal to what a fresh reconciler
// writes into empty maps from the final state alone. Ids may differ (they are never reused at
// once), so the maps are compared with every id replaced by what it names (canonicalServiceDump).
// Restarts in the middle (a new Syncer adopting the maps) must write nothing and change nothing.
// Along the way, every sync moves the backend generation (begen_v1) exactly when it deleted a
// backend or gave its id another address, since established flows only look at be_v1 then.
import type { ExecutionContext } from 'ava';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import fc from 'fast-check';

import { privilegedSerial } from '../helpers/env.js';
import { scope } from '../helpers/scope.js';

import { Syncer } from '../../ts/agent/syncer.js';
import { backendGeneration } from '../../ts/dataplane/backend-generation.js';
import { canonicalServiceDump, dumpServiceMaps } from '../../ts/dataplane/dump.js';
import { computeEntries } from '../../ts/dataplane/entries.js';
import { loadDatapath, type Datapath } from '../../ts/dataplane/loader.js';
import { Reconciler } from '../../ts/dataplane/reconciler.js';
import { computeDesiredState, resolveProxyConfig } from '../../ts/model/index.js';

const M = 251;
const proxy = resolveProxyConfig({ clusterCIDR: '198.18.128.0/17', maglevTableSize: M, minSyncPeriod: 0 });
const NODE = { name: 'node-1', addresses: ['198.18.0.11'], podCIDRs: ['198.18.129.0/24'] };
const SERVICES = 3;

interface PortSpec {
  name: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  targetPort: number;
}
const PORTS: PortSpec[] = [
  { name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 },
  { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
  { name: 'alt', port: 8080, protocol: 'TCP', targetPort: 8080 },
];

const serviceArb = (i: number) =>
  fc.record({
    type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer'),
    ports: fc.subarray(PORTS, { minLength: 1 }),
    etpLocal: fc.boolean(),
    itpLocal: fc.boolean(),
    affinity: fc.boolean(),
    sourceRange: fc.boolean(),
    externalIP: fc.boolean(),
  }).map((s): V1Service => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${i}`, namespace: 'default' },
    spec: {
      type: s.type,
      clusterIP: `198.19.0.${10 + i}`,
      clusterIPs: [`198.19.0.${10 + i}`],
      ports: s.ports.map((p, k) => ({
        name: p.name,
        port: p.port,
        protocol: p.protocol,
        targetPort: p.targetPort as never,
        ...(s.type !== 'ClusterIP' ? { nodePort: 30000 + i * 10 + k } : {}),
      })),
      ...(s.type !== 'ClusterIP' ? { externalTrafficPolicy: s.etpLocal ? 'Local' : 'Cluster' } : {}),
      ...(s.type === 'LoadBalancer' && s.etpLocal ? { healthCheckNodePort: 32000 + i } : {}),
      internalTrafficPolicy: s.itpLocal ? 'Local' : 'Cluster',
      ...(s.affinity ? { sessionAffinity: 'ClientIP' } : {}),
      ...(s.type === 'LoadBalancer' && s.sourceRange ? { loadBalancerSourceRanges: ['198.18.0.100/30'] } : {}),
      ...(s.externalIP ? { externalIPs: [`198.19.255.${100 + i}`] } : {}),
    },
    ...(s.type === 'LoadBalancer' ? { status: { loadBalancer: { ingress: [{ ip: `198.19.255.${1 + i}` }] } } } : {}),
  }));

const ENDPOINT_IPS = ['198.18.129.5', '198.18.129.6', '198.18.130.5', '198.18.130.6', '198.18.130.7'];
const sliceArb = (i: number) =>
  fc.record({
    endpoints: fc.subarray(ENDPOINT_IPS),
    conditions: fc.array(fc.constantFrom('ready', 'terminating', 'notReady'), { minLength: 5, maxLength: 5 }),
    ports: fc.subarray(PORTS, { minLength: 1 }),
  }).map((s): V1EndpointSlice => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `svc-${i}-abc`, namespace: 'default', labels: { 'kubernetes.io/service-name': `svc-${i}` } },
    addressType: 'IPv4',
    ports: s.ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: p.protocol })),
    endpoints: s.endpoints.map((ip, k) => ({
      addresses: [ip],
      nodeName: ip.startsWith('198.18.129.') ? 'node-1' : 'node-2',
      conditions:
        s.conditions[k] === 'ready'
          ? { ready: true, serving: true, terminating: false }
          : s.conditions[k] === 'terminating'
            ? { ready: false, serving: true, terminating: true }
            : { ready: false, serving: false, terminating: false },
    })),
  }));

type Command =
  | { op: 'service'; i: number; obj: V1Service }
  | { op: 'deleteService'; i: number }
  | { op: 'slice'; i: number; obj: V1EndpointSlice }
  | { op: 'deleteSlice'; i: number }
  | { op: 'sync' }
  | { op: 'restart' };

const index = fc.integer({ min: 0, max: SERVICES - 1 });
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: index.chain((i) => serviceArb(i).map((obj): Command => ({ op: 'service', i, obj }))) },
  { weight: 1, arbitrary: index.map((i): Command => ({ op: 'deleteService', i })) },
  { weight: 4, arbitrary: index.chain((i) => sliceArb(i).map((obj): Command => ({ op: 'slice', i, obj }))) },
  { weight: 1, arbitrary: index.map((i): Command => ({ op: 'deleteSlice', i })) },
  { weight: 3, arbitrary: fc.constant<Command>({ op: 'sync' }) },
  { weight: 1, arbitrary: fc.constant<Command>({ op: 'restart' }) },
);

async function datapaths(t: ExecutionContext): Promise<[Datapath, Datapath]> {
  const s = scope(t);
  const bpffs = await s.bpffs();
  const load = async (name: string) => {
    const dp = await loadDatapath({
      pinDir: `${bpffs}/${name}`,
      config: { nodeIp: '198.18.0.11', clusterCidrs: ['198.18.128.0/17'], maglevM: M },
      mapSizes: { svc4: 4096, backends: 1024, ct4: 1024, aff4: 256 },
    });
    s.cleanup.add(`datapath ${name}`, () => dp.close());
    return dp;
  };
  return [await load('incremental'), await load('scratch')];
}

/** Empties a datapath's maps through a reconciler (the only writer), as a fresh node would have them. */
function clear(dp: Datapath): void {
  const r = new Reconciler(dp);
  r.adopt();
  r.apply(computeEntries(computeDesiredState({ services: [], endpointSlices: [], node: NODE, config: proxy }), M));
}

privilegedSerial('random change sequences through the sync path end where a from-scratch sync of the final state does', async (t) => {
  t.timeout(5 * 60_000);
  const [dp, scratch] = await datapaths(t);
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 25 }), async (commands) => {
      runs++;
      clear(dp);
      if (dumpServiceMaps(dp).length !== 0) throw new Error('maps not empty at the start of a run');
      const services = new Map<number, V1Service>();
      const slices = new Map<number, V1EndpointSlice>();
      const newSyncer = (recoverIds: boolean) => {
        const reconciler = new Reconciler(dp);
        reconciler.adopt();
        return new Syncer(dp, reconciler, { proxy, nodeName: NODE.name, fallbackAddresses: () => NODE.addresses, recoverIds });
      };
      let syncer = newSyncer(false);
      const backendAddresses = () => new Map(dp.maps.backends.entries().map(([id, b]) => [id, b.addr]));
      const sync = () => {
        const before = backendAddresses();
        const generation = backendGeneration(dp);
        const { result } = syncer.sync();
        if (result.failures.length > 0) throw new Error(`write failures: ${JSON.stringify(result.failures)}`);
        const after = backendAddresses();
        const goneOrMoved = [...before].some(([id, addr]) => after.get(id) !== addr);
        if (goneOrMoved !== (backendGeneration(dp) !== generation)) {
          throw new Error(`backend generation ${generation} → ${backendGeneration(dp)}, yet a backend was ${goneOrMoved ? '' : 'not '}deleted or re-addressed`);
        }
      };
      for (const c of commands) {
        switch (c.op) {
          case 'service':
            syncer.services.record(services.get(c.i), c.obj);
            services.set(c.i, c.obj);
            break;
          case 'deleteService':
            if (services.has(c.i)) syncer.services.record(services.get(c.i), undefined);
            services.delete(c.i);
            break;
          case 'slice':
            syncer.endpointSlices.record(slices.get(c.i), c.obj);
            slices.set(c.i, c.obj);
            break;
          case 'deleteSlice':
            if (slices.has(c.i)) syncer.endpointSlices.record(slices.get(c.i), undefined);
            slices.delete(c.i);
            break;
          case 'sync':
            sync();
            break;
          case 'restart': {
            // Everything pending is applied, then a new agent adopts the maps and relists.
            sync();
            const before = dumpServiceMaps(dp);
            syncer = newSyncer(true);
            for (const s of services.values()) syncer.services.record(undefined, s);
            for (const s of slices.values()) syncer.endpointSlices.record(undefined, s);
            const generation = backendGeneration(dp);
            const outcome = syncer.sync();
            if (backendGeneration(dp) !== generation) throw new Error('a restart over unchanged state moved the backend generation');
            if (outcome.result.written + outcome.result.deleted !== 0 || outcome.result.failures.length > 0) {
              throw new Error(`a restart over unchanged state wrote ${JSON.stringify(outcome.result)}`);
            }
            if (JSON.stringify(dumpServiceMaps(dp)) !== JSON.stringify(before)) throw new Error('a restart changed the maps');
            break;
          }
        }
      }
      sync();
      const incremental = canonicalServiceDump(dp);

      clear(scratch);
      const fresh = new Reconciler(scratch);
      fresh.adopt();
      const state = computeDesiredState({ services: [...services.values()], endpointSlices: [...slices.values()], node: NODE, config: proxy });
      const result = fresh.apply(computeEntries(state, M));
      if (result.failures.length > 0) throw new Error(`scratch write failures: ${JSON.stringify(result.failures)}`);
      const expected = canonicalServiceDump(scratch);
      if (JSON.stringify(incremental) !== JSON.stringify(expected)) {
        throw new Error(`maps differ:\nincremental:\n  ${incremental.join('\n  ')}\nfrom scratch:\n  ${expected.join('\n  ')}`);
      }
    }),
    { numRuns: 60 },
  );
  t.is(runs >= 60, true);
});
