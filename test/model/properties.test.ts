// Invariants of the model over random small clusters (_arbitrary-cluster.ts).
import test from 'ava';
import fc from 'fast-check';

import { computeDesiredState } from '../../ts/model/index.js';
import { arbCluster, config, node } from './_arbitrary-cluster.js';

test('the output does not depend on input order, and never throws', (t) => {
  fc.assert(
    fc.property(
      arbCluster.chain((c) =>
        fc.tuple(fc.constant(c), fc.shuffledSubarray(c.services, { minLength: c.services.length }), fc.shuffledSubarray(c.slices, { minLength: c.slices.length })),
      ),
      ([cluster, services, slices]) => {
        const a = computeDesiredState({ services: cluster.services, endpointSlices: cluster.slices, node, config });
        const b = computeDesiredState({ services, endpointSlices: slices, node, config });
        t.deepEqual(b, a);
      },
    ),
    { numRuns: 300 },
  );
});

test('references are consistent: frontends → services → backends, endpoints are backends', (t) => {
  fc.assert(
    fc.property(arbCluster, (cluster) => {
      const state = computeDesiredState({ services: cluster.services, endpointSlices: cluster.slices, node, config });
      const serviceIds = new Set(state.services.map((s) => s.id));
      const backendIds = new Set(state.backends.map((b) => b.id));
      const backendKeys = new Set(state.backends.map((b) => b.key));
      t.is(serviceIds.size, state.services.length);
      t.is(new Set(state.frontends.map((f) => f.key)).size, state.frontends.length);
      for (const f of state.frontends) {
        t.true(serviceIds.has(f.serviceId));
        for (const ep of [...f.clusterEndpoints, ...f.localEndpoints]) t.true(backendKeys.has(`${ep}/${f.protocol}`));
        if (f.action === 'forward') t.true((f.trafficPolicy === 'Local' ? f.localEndpoints : f.clusterEndpoints).length > 0);
      }
      for (const s of state.services) {
        for (const id of s.backends) t.true(backendIds.has(id));
        t.is(s.action === 'forward', s.backends.length > 0);
        if (s.shortCircuitServiceId !== null) t.true(serviceIds.has(s.shortCircuitServiceId));
      }
    }),
    { numRuns: 300 },
  );
});

test('recomputing with the previous ids from scratch changes no id', (t) => {
  fc.assert(
    fc.property(arbCluster, arbCluster, (before, after) => {
      const first = computeDesiredState({ services: before.services, endpointSlices: before.slices, node, config });
      const second = computeDesiredState({ services: after.services, endpointSlices: after.slices, node, config, previousIds: first.ids });
      const firstIds = new Map(first.services.map((s) => [s.key, s.id]));
      for (const s of second.services) {
        if (firstIds.has(s.key)) t.is(s.id, firstIds.get(s.key)!);
        else t.false([...firstIds.values()].includes(s.id), 'a new group never takes a live or just-freed id');
      }
      const again = computeDesiredState({ services: after.services, endpointSlices: after.slices, node, config, previousIds: second.ids });
      t.deepEqual(again.services, second.services, 'a sync without changes is a fixed point');
      t.deepEqual(again.backends, second.backends);
    }),
    { numRuns: 200 },
  );
});
