// Property: arbitrary JSON shapes, and arbitrary field mutations of valid Services and EndpointSlices,
// fed through the agent's sync path (slim copy → admitting change trackers → incremental model →
// map entries) never throw, and never change how the good Service in the same batch is programmed,
// whether the batch is a first sync or a partial one carrying the good Service's own change.
//
// Short by default (CI); long with BPFPROXY_FUZZ_RUNS (npm run fuzz:bad-input). Inputs that once
// failed are kept in bad-input-regressions.json and always run first.
import test from 'ava';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';

import { BAD_BASE_SERVICE, BAD_BASE_SLICE, DELETE, GOOD_ENDPOINTS, GOOD_ENDPOINTS_AFTER, GOOD_SERVICE, goodSlice, mutate } from './_bad-input-cases.js';
import { entriesMissing, runFull, runIncremental, type Batch } from './_pipeline.js';

const RUNS = Number(process.env.BPFPROXY_FUZZ_RUNS ?? 300);
const SEED = process.env.BPFPROXY_FUZZ_SEED === undefined ? undefined : Number(process.env.BPFPROXY_FUZZ_SEED);

interface Regression {
  readonly why: string;
  readonly services: unknown[];
  readonly slices: unknown[];
}
const REGRESSIONS = JSON.parse(readFileSync(new URL('./bad-input-regressions.json', import.meta.url), 'utf8')) as Regression[];

type Path = (string | number)[];

/** Every path in a value, and for objects one new key beside the existing ones. */
function paths(value: unknown, at: Path = []): Path[] {
  const out: Path[] = at.length > 0 ? [at] : [];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...at, i])));
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, k]));
    out.push([...at, 'unexpected']);
  }
  return out;
}

/** Values users and programs put where they do not belong, and arbitrary JSON. */
const strangeValue = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 3 },
  {
    arbitrary: fc.constantFrom<unknown>(
      DELETE, null, '', '80', 'false', 'true', 0, -1, 1.5, 65536, 1e300, [], {}, [null], [''], ['x'],
      '0.0.0.0', '127.0.0.1', '2001:db8::1', '198.18.0.0/16', '2001:db8::/64', '198.18.0.0/33', 'TCP', 'tcp', 'Local', 'None',
      '__proto__', { __proto__: null }, 'a'.repeat(300),
    ),
    weight: 3,
  },
  { arbitrary: fc.string(), weight: 1 },
  { arbitrary: fc.integer(), weight: 1 },
);

function mutated(base: object): fc.Arbitrary<unknown> {
  const all = paths(base);
  return fc
    .array(fc.tuple(fc.constantFrom(...all), strangeValue), { minLength: 1, maxLength: 3 })
    .map((mutations) => {
      let o: unknown = base;
      for (const [path, value] of mutations) {
        try {
          o = mutate(o, path, value);
        } catch {
          // an earlier mutation removed the path's parent: nothing to do
        }
      }
      return o;
    });
}

/** Whole arbitrary JSON, with or without a name to key it by. */
const arbitraryShape = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.record({ metadata: fc.record({ name: fc.constantFrom('fuzz', 'other', 'other-xyz'), namespace: fc.constantFrom('team-a', 'fuzz') }) }, { requiredKeys: ['metadata'] }).chain((head) =>
    fc.dictionary(fc.constantFrom('spec', 'status', 'ports', 'endpoints', 'addressType', 'kind'), fc.jsonValue({ maxDepth: 3 })).map((rest) => ({ ...rest, ...head })),
  ),
);

const badBatch = fc.record({
  services: fc.array(fc.oneof(mutated(BAD_BASE_SERVICE), arbitraryShape), { maxLength: 2 }),
  slices: fc.array(fc.oneof(mutated(BAD_BASE_SLICE), arbitraryShape), { maxLength: 2 }),
});

/** What is wrong in the good Service's programming next to `bad`, or nothing. */
function check(bad: Batch): string[] {
  // The bases come along unless the batch brings its own version of them.
  const mixed = runFull({ services: [GOOD_SERVICE, ...bad.services], slices: [goodSlice(GOOD_ENDPOINTS), ...bad.slices] });
  // A bad object that is valid after all may claim the good Service's frontends, or make one of them
  // refused (its ClusterIP, its health-check node port): that is the conflict rules' business (by
  // allocation order, ts/model/refusals.ts), not this property's.
  if (mixed.problems.some((p) => /already used by default\/good|default\/good.*already used/.test(p.reason) || (p.name === 'good' && /already used| refused: /.test(p.reason)))) return [];
  const alone = runFull({ services: [GOOD_SERVICE], slices: [goodSlice(GOOD_ENDPOINTS)] }, mixed.state.ids);
  const out = entriesMissing(alone.entries, mixed.entries).map((d) => `first sync: ${d}`);
  const partial = runIncremental(
    { services: [GOOD_SERVICE, BAD_BASE_SERVICE], slices: [goodSlice(GOOD_ENDPOINTS), BAD_BASE_SLICE] },
    { services: bad.services, slices: [goodSlice(GOOD_ENDPOINTS_AFTER), ...bad.slices] },
  );
  if (partial.problems.some((p) => p.name === 'good' && /already used| refused: /.test(p.reason))) return out;
  const aloneAfter = runFull({ services: [GOOD_SERVICE], slices: [goodSlice(GOOD_ENDPOINTS_AFTER)] }, partial.state.ids);
  out.push(...entriesMissing(aloneAfter.entries, partial.entries).map((d) => `partial sync: ${d}`));
  // Every object set aside is named.
  for (const p of [...mixed.problems, ...partial.problems]) if (p.kind !== 'Config' && p.reason === '') out.push(`a problem without a reason: ${JSON.stringify(p)}`);
  return out;
}

test('regressions: inputs that once failed', (t) => {
  t.true(REGRESSIONS.length > 0);
  for (const r of REGRESSIONS) t.deepEqual(check(r), [], r.why);
});

test(`fuzz: bad shapes and mutations never throw nor disturb a good Service (${RUNS} runs)`, (t) => {
  let runs = 0;
  let rejected = 0;
  fc.assert(
    fc.property(badBatch, (bad) => {
      runs++;
      const r = runFull({ services: bad.services, slices: bad.slices });
      rejected += r.problems.filter((p) => p.reason.startsWith('rejected:')).length;
      const wrong = check(bad);
      if (wrong.length > 0) throw new Error(wrong.join('\n'));
    }),
    { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) },
  );
  t.log(`fuzz iterations: ${runs}; objects rejected at the source boundary: ${rejected}`);
  t.true(rejected > runs / 2, 'most inputs are bad ones: the fuzz explores rejection');
});
