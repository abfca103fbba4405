// The incremental model is the full computation, batch by batch: after any sequence of batches of
// Service and EndpointSlice changes (create, update, delete, re-add), its state is what
// computeDesiredState gives for the objects of that moment and the ids before the batch, and its
// delta names every frontend, group and backend that differs from the state before the batch.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';

import { computeDesiredState, IncrementalModel, type DesiredState, type ModelDelta, type ObjectChange } from '../../ts/model/index.js';
import { arbService, arbSlice, config, node, toService, toSlice } from './_arbitrary-cluster.js';

const serviceKey = (s: V1Service): string => `${s.metadata?.namespace}/${s.metadata?.name}`;
const sliceKey = (s: V1EndpointSlice): string => `${s.metadata?.namespace}/${s.metadata?.name}`;

// Well-formed objects from tiny pools, so that what crosses Services is common: two Services
// claiming one externalIP or node port, one endpoint listed by two Services (local in one slice,
// not in the other), health check ports shared, and what refusals.ts refuses: an externalIP that
// is another Service's ClusterIP, a node address (198.18.0.10) on the agent's port, on a
// health-check node port (32000) or on another Service's NodePort (30080).
const arbDenseService = fc
  .record({
    name: fc.constantFrom('a', 'b', 'c'),
    type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer'),
    clusterIP: fc.constantFrom('10.96.0.1', '10.96.0.2', '10.96.0.3'),
    externalIPs: fc.subarray(['192.0.2.1', '192.0.2.2', '10.96.0.2', '198.18.0.10']),
    etp: fc.constantFrom(undefined, 'Local'),
    itp: fc.constantFrom(undefined, 'Local'),
    lbIPs: fc.subarray(['203.0.113.1', '198.18.0.10']),
    ports: fc.subarray(
      [
        { base: { name: 'http', port: 80, protocol: 'TCP' } as const, nodePort: 30080 as const },
        { base: { name: 'dns', port: 53, protocol: 'UDP' } as const, nodePort: 30053 as const },
        { base: { name: 'np', port: 30080, protocol: 'TCP' } as const, nodePort: 30081 as const },
        { base: { name: 'health', port: 10256, protocol: 'TCP' } as const, nodePort: undefined },
        { base: { name: 'hc', port: 32000, protocol: 'TCP' } as const, nodePort: undefined },
      ],
      { minLength: 1 },
    ),
  })
  .map((s) => toService({ ...s, namespace: 'default' }, 0));
const arbDenseSlice = fc
  .record({
    service: fc.constantFrom('a', 'b', 'c'),
    suffix: fc.constantFrom('1', '2'),
    ports: fc.constantFrom<V1EndpointSlice['ports']>([
      { name: 'http', port: 8080, protocol: 'TCP' },
      { name: 'dns', port: 5353, protocol: 'UDP' },
    ]),
    endpoints: fc.uniqueArray(
      fc.record({
        ip: fc.constantFrom('10.244.1.1', '10.244.1.2', '10.244.1.3'),
        node: fc.constantFrom('node-a', 'node-b'),
        ready: fc.constantFrom(true, true, false),
        serving: fc.constantFrom(true, false),
        terminating: fc.boolean(),
        zones: fc.constantFrom(undefined, ['zone-a']),
      }),
      { maxLength: 3, selector: (e) => e.ip },
    ),
  })
  .map((s) => toSlice({ ...s, namespace: 'default' }));

// One step: put a Service or a slice (create or replace), or delete one of those present.
const arbStep = fc.oneof(
  arbService.map((s) => ({ op: 'put-service' as const, service: toService(s, 0) })),
  arbSlice.map((s) => ({ op: 'put-slice' as const, slice: toSlice(s) })),
  { arbitrary: arbDenseService.map((service) => ({ op: 'put-service' as const, service })), weight: 3 },
  { arbitrary: arbDenseSlice.map((slice) => ({ op: 'put-slice' as const, slice })), weight: 3 },
  fc.nat().map((n) => ({ op: 'delete-service' as const, n })),
  fc.nat().map((n) => ({ op: 'delete-slice' as const, n })),
);
const arbBatches = fc.array(fc.array(arbStep, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 10 });

/** Applies a batch to the object maps the way change trackers net it: one change per object. */
function applyBatch(
  services: Map<string, V1Service>,
  slices: Map<string, V1EndpointSlice>,
  batch: readonly Step[],
): { services: ObjectChange<V1Service>[]; endpointSlices: ObjectChange<V1EndpointSlice>[] } {
  const serviceBefore = new Map<string, V1Service | undefined>();
  const sliceBefore = new Map<string, V1EndpointSlice | undefined>();
  for (const step of batch) {
    if (step.op === 'put-service' || step.op === 'delete-service') {
      const keys = [...services.keys()].sort();
      const key = step.op === 'put-service' ? serviceKey(step.service) : keys[step.n % Math.max(keys.length, 1)];
      if (key === undefined) continue;
      if (!serviceBefore.has(key)) serviceBefore.set(key, services.get(key));
      if (step.op === 'put-service') services.set(key, step.service);
      else services.delete(key);
    } else {
      const keys = [...slices.keys()].sort();
      const key = step.op === 'put-slice' ? sliceKey(step.slice) : keys[step.n % Math.max(keys.length, 1)];
      if (key === undefined) continue;
      if (!sliceBefore.has(key)) sliceBefore.set(key, slices.get(key));
      if (step.op === 'put-slice') slices.set(key, step.slice);
      else slices.delete(key);
    }
  }
  return {
    services: [...serviceBefore].map(([key, previous]) => ({ previous, current: services.get(key) })),
    endpointSlices: [...sliceBefore].map(([key, previous]) => ({ previous, current: slices.get(key) })),
  };
}
type Step = typeof arbStep extends fc.Arbitrary<infer T> ? T : never;

/** Every item that differs between two states is in the delta, with its before and after. */
function checkDelta(t: ExecutionContext, before: DesiredState, after: DesiredState, delta: ModelDelta): void {
  const pairs = [
    ['frontends', before.frontends, after.frontends, delta.frontends],
    ['services', before.services, after.services, delta.services],
    ['backends', before.backends, after.backends, delta.backends],
  ] as const;
  for (const [what, was, is, changes] of pairs) {
    const wasByKey = new Map<string, unknown>(was.map((x) => [x.key, x]));
    const isByKey = new Map<string, unknown>(is.map((x) => [x.key, x]));
    for (const key of new Set([...wasByKey.keys(), ...isByKey.keys()])) {
      const change = (changes as ReadonlyMap<string, { before: unknown; after: unknown }>).get(key);
      if (change === undefined) {
        t.deepEqual(wasByKey.get(key), isByKey.get(key), `${what} ${key} changed but is not in the delta`);
        continue;
      }
      t.deepEqual(change.before, wasByKey.get(key), `${what} ${key}: before`);
      t.deepEqual(change.after, isByKey.get(key), `${what} ${key}: after`);
    }
  }
  if (JSON.stringify(before.healthChecks) !== JSON.stringify(after.healthChecks)) t.true(delta.healthChecksChanged, 'health checks changed');
  if (JSON.stringify(before.problems) !== JSON.stringify(after.problems)) t.true(delta.problemsChanged, 'problems changed');
}

test('any sequence of batches gives the state computed from scratch, and a delta naming every difference', (t) => {
  fc.assert(
    fc.property(arbBatches, (batches) => {
      const services = new Map<string, V1Service>();
      const slices = new Map<string, V1EndpointSlice>();
      const model = IncrementalModel.build({ services: [], endpointSlices: [], node, config });
      for (const batch of batches) {
        const ids = model.ids();
        const before = model.state();
        const delta = model.update(applyBatch(services, slices, batch));
        const expected = computeDesiredState({ services: [...services.values()], endpointSlices: [...slices.values()], node, config, previousIds: ids });
        const state = model.state();
        t.deepEqual(state, expected);
        checkDelta(t, before, state, delta);
        t.deepEqual(model.summary().frontends, expected.frontends.length);
        t.deepEqual(model.summary().backends, expected.backends.length);
      }
    }),
    { numRuns: 300 },
  );
});

test('built at once from any objects, duplicates included, it is the full computation', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(arbService.map((s) => toService(s, 0)), arbDenseService), { maxLength: 6 }),
      fc.array(fc.oneof(arbSlice.map(toSlice), arbDenseSlice), { maxLength: 6 }),
      (services, endpointSlices) => {
      const model = IncrementalModel.build({ services, endpointSlices, node, config });
      t.deepEqual(model.state(), computeDesiredState({ services, endpointSlices, node, config }));
      },
    ),
    { numRuns: 300 },
  );
});

test('a batch that changes nothing changes nothing', (t) => {
  const service = toService(
    { name: 'a', namespace: 'default', type: 'NodePort', clusterIP: '10.96.0.1', externalIPs: [], etp: 'Local', itp: undefined, lbIPs: [], ports: [{ base: { name: 'http', port: 80, protocol: 'TCP' }, nodePort: 30080 }] },
    0,
  );
  const model = IncrementalModel.build({ services: [service], endpointSlices: [], node, config });
  const state = model.state();
  const delta = model.update({ services: [{ previous: service, current: service }] });
  t.false(delta.problemsChanged);
  for (const changes of [delta.frontends, delta.services, delta.backends]) {
    for (const [key, { before, after }] of changes) t.deepEqual(before, after, `${key} is as it was`);
  }
  t.deepEqual(model.state(), computeDesiredState({ services: [service], endpointSlices: [], node, config, previousIds: state.ids }));
});
