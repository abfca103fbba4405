// The model's second line: objects that never passed the source's admission check (the bad-input
// corpus, fed straight in) never make computeDesiredState or the incremental model throw, an
// exception inside one Service or slice becomes that object's problem only, the good Service is
// programmed as without them, and the incremental model still agrees with the full computation.
import test from 'ava';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import { computeEntries } from '../../ts/dataplane/entries.js';
import { computeDesiredState, IncrementalModel } from '../../ts/model/index.js';
import { BAD_BASE_SERVICE, BAD_BASE_SLICE, BAD_INPUTS, GOOD_ENDPOINTS, GOOD_ENDPOINTS_AFTER, GOOD_SERVICE, goodSlice } from '../sources/_bad-input-cases.js';
import { entriesMissing, NODE, PROXY } from '../sources/_pipeline.js';

const M = PROXY.maglevTableSize;

test('the corpus fed straight to the model: no throw, the good Service untouched, incremental = full', (t) => {
  let guarded = 0;
  for (const input of BAD_INPUTS) {
    const services = (input.kind === 'Service' ? [GOOD_SERVICE, input.object] : [GOOD_SERVICE, BAD_BASE_SERVICE]) as V1Service[];
    const slices = (input.kind === 'EndpointSlice' ? [goodSlice(GOOD_ENDPOINTS_AFTER), input.object] : [goodSlice(GOOD_ENDPOINTS_AFTER), BAD_BASE_SLICE]) as V1EndpointSlice[];
    const full = computeDesiredState({ services, endpointSlices: slices, node: NODE, config: PROXY });
    if (full.problems.some((p) => p.reason.startsWith('could not be used'))) guarded++;

    // Built from the good objects, then the bad one and the good Service's change in one batch.
    const model = IncrementalModel.build({ services: [GOOD_SERVICE as V1Service], endpointSlices: [goodSlice(GOOD_ENDPOINTS) as V1EndpointSlice], node: NODE, config: PROXY });
    model.update({
      services: services.slice(1).map((current) => ({ previous: undefined, current })),
      endpointSlices: [
        { previous: undefined, current: slices[1]! },
        { previous: goodSlice(GOOD_ENDPOINTS) as V1EndpointSlice, current: slices[0]! },
      ],
    });
    const incremental = model.state();
    const again = computeDesiredState({ services, endpointSlices: slices, node: NODE, config: PROXY, previousIds: incremental.ids });
    t.deepEqual({ ...incremental, ids: undefined }, { ...again, ids: undefined }, `${input.name}: incremental = full`);

    const alone = computeDesiredState({ services: [GOOD_SERVICE as V1Service], endpointSlices: [slices[0]!], node: NODE, config: PROXY, previousIds: incremental.ids });
    t.deepEqual(entriesMissing(computeEntries(alone, M), computeEntries(incremental, M)), [], `${input.name}: the good Service as without it`);
  }
  t.log(`inputs that needed the per-object guard (an exception turned into a problem): ${guarded} of ${BAD_INPUTS.length}`);
  t.true(guarded > 0, 'some corpus inputs reach code that throws without the guard');
});
