// The bad-input corpus (_bad-input-cases.ts) through the agent's sync path (source slim copy →
// the agent's admitting change trackers → incremental model → map entries): every bad input gets a
// message naming the object and the field, never throws, and never changes how a good Service in
// the same batch is programmed — neither when everything arrives at once (a first sync) nor when
// the good Service's new endpoint arrives in the same batch as the bad object (a partial sync,
// where a throw used to lose the good change after the trackers were drained).
import test from 'ava';

import { BAD_BASE_SERVICE, BAD_BASE_SLICE, BAD_INPUTS, GOOD_ENDPOINTS, GOOD_ENDPOINTS_AFTER, GOOD_SERVICE, goodSlice, type BadInput } from './_bad-input-cases.js';
import { entriesMissing, entryCount, runFull, runIncremental, type Batch } from './_pipeline.js';

interface Verdict {
  crashed: string | undefined;
  clear: boolean;
  /** Differences in the good Service's entries (first sync, partial sync). */
  disturbed: string[];
  message: string;
}

function batchWith(input: BadInput, goodEndpoints: string[]): Batch {
  // The bad object's valid partner comes along, so that a slice's Service exists and vice versa.
  return input.kind === 'Service'
    ? { services: [GOOD_SERVICE, input.object], slices: [goodSlice(goodEndpoints), BAD_BASE_SLICE] }
    : { services: [GOOD_SERVICE, BAD_BASE_SERVICE], slices: [goodSlice(goodEndpoints), input.object] };
}

function judge(input: BadInput): Verdict {
  try {
    const mixed = runFull(batchWith(input, GOOD_ENDPOINTS));
    // The good Service alone, with the ids the mixed run gave: what it must be programmed as.
    const alone = runFull({ services: [GOOD_SERVICE], slices: [goodSlice(GOOD_ENDPOINTS)] }, mixed.state.ids);
    const disturbed = entriesMissing(alone.entries, mixed.entries).map((d) => `first sync: ${d}`);
    if (entryCount(alone.entries) === 0) disturbed.push('the good Service programmed nothing');

    const partial = runIncremental(
      { services: [GOOD_SERVICE], slices: [goodSlice(GOOD_ENDPOINTS)] },
      { ...batchWith(input, GOOD_ENDPOINTS_AFTER), services: batchWith(input, GOOD_ENDPOINTS_AFTER).services },
    );
    const aloneAfter = runFull({ services: [GOOD_SERVICE], slices: [goodSlice(GOOD_ENDPOINTS_AFTER)] }, partial.state.ids);
    disturbed.push(...entriesMissing(aloneAfter.entries, partial.entries).map((d) => `partial sync: ${d}`));

    const name = input.objectName ?? (input.kind === 'Service' ? 'other' : 'other-xyz');
    const namespace = input.namespace ?? 'team-a';
    const named = mixed.problems.filter((p) => p.kind === input.kind && p.name === name && p.namespace === namespace);
    const clear = named.some((p) => p.reason.includes(`${input.field}:`)) && partial.problems.some((p) => p.kind === input.kind && p.name === name && p.reason.includes(`${input.field}:`));
    const message = named.map((p) => `${p.kind} ${p.namespace}/${p.name}: ${p.reason}`).join(' | ') || `(none; problems: ${mixed.problems.map((p) => `${p.kind} ${p.namespace}/${p.name}: ${p.reason}`).join(' | ')})`;
    return { crashed: undefined, clear, disturbed, message };
  } catch (e) {
    return { crashed: e instanceof Error ? (e.stack ?? e.message) : String(e), clear: false, disturbed: [], message: '' };
  }
}

test('the corpus holds at least 60 distinct bad inputs', (t) => {
  const distinct = new Set(BAD_INPUTS.map((i) => JSON.stringify(i.object)));
  t.true(distinct.size >= 60, `${distinct.size} distinct`);
  t.is(distinct.size, BAD_INPUTS.length, 'no input is listed twice');
  t.is(new Set(BAD_INPUTS.map((i) => i.name)).size, BAD_INPUTS.length);
});

test('the good objects and the bases the corpus breaks are valid: no problem at all', (t) => {
  const r = runFull({ services: [GOOD_SERVICE, BAD_BASE_SERVICE], slices: [goodSlice(GOOD_ENDPOINTS), BAD_BASE_SLICE] });
  t.deepEqual(r.problems, []);
  // Every kind of frontend of the base is programmed, so that breaking a field has something to lose.
  t.deepEqual([...new Set(r.state.frontends.map((f) => f.kind))].sort(), ['ClusterIP', 'ExternalIP', 'LoadBalancer', 'NodePort']);
});

for (const input of BAD_INPUTS) {
  test(`bad input: ${input.name}`, (t) => {
    const v = judge(input);
    t.is(v.crashed, undefined);
    t.true(v.clear, `a message naming ${input.kind} ${input.objectName ?? ''} and ${input.field}; got ${v.message}`);
    t.deepEqual(v.disturbed, []);
    t.log(v.message);
  });
}

test('figures: inputs tried / clear message / disturbed others / crashed', (t) => {
  const verdicts = BAD_INPUTS.map(judge);
  const figures = {
    tried: verdicts.length,
    clear: verdicts.filter((v) => v.clear).length,
    disturbed: verdicts.filter((v) => v.disturbed.length > 0).length,
    crashed: verdicts.filter((v) => v.crashed !== undefined).length,
  };
  t.log(`object inputs: ${JSON.stringify(figures)}`);
  t.deepEqual(figures, { tried: BAD_INPUTS.length, clear: BAD_INPUTS.length, disturbed: 0, crashed: 0 });
});

test('ready: "false" (a string) never counts as ready: the slice is set aside, not its endpoint served', (t) => {
  const input = BAD_INPUTS.find((i) => i.name === 'EndpointSlice ready is the string "false"')!;
  const r = runFull(batchWith(input, GOOD_ENDPOINTS));
  t.false(r.state.backends.some((b) => b.address === '198.18.129.9'));
});

test('IPv6-only loadBalancerSourceRanges fail closed: no IPv4 LoadBalancer frontend open to everyone', (t) => {
  const ipv6Only = { ...BAD_BASE_SERVICE, spec: { ...BAD_BASE_SERVICE.spec, loadBalancerSourceRanges: ['2001:db8::/64'] } };
  const r = runFull({ services: [GOOD_SERVICE, ipv6Only], slices: [goodSlice(GOOD_ENDPOINTS), BAD_BASE_SLICE] });
  const lb = r.state.frontends.filter((f) => f.kind === 'LoadBalancer');
  t.deepEqual(lb, [], 'no LoadBalancer frontend (it would admit every IPv4 client)');
  t.true(r.problems.some((p) => p.name === 'other' && /no IPv4 client/.test(p.reason)));
  // Mixed families keep the IPv4 ranges, and only those.
  const mixed = { ...BAD_BASE_SERVICE, spec: { ...BAD_BASE_SERVICE.spec, loadBalancerSourceRanges: ['2001:db8::/64', '198.18.0.0/16'] } };
  const m = runFull({ services: [mixed], slices: [BAD_BASE_SLICE] });
  const lbm = m.state.frontends.filter((f) => f.kind === 'LoadBalancer');
  t.true(lbm.length > 0);
  t.true(lbm.every((f) => f.loadBalancerSourceRanges.join() === '198.18.0.0/16'));
});

test('a bad object that becomes valid is programmed; a valid one that turns bad is removed and reported', (t) => {
  const bad = BAD_INPUTS.find((i) => i.name === 'Service ports is a string')!;
  const fixed = runIncremental({ services: [bad.object], slices: [BAD_BASE_SLICE] }, { services: [BAD_BASE_SERVICE], slices: [] });
  t.true(fixed.state.frontends.some((f) => f.service.name === 'other'));
  t.false(fixed.problems.some((p) => p.name === 'other'));
  const broken = runIncremental({ services: [BAD_BASE_SERVICE], slices: [BAD_BASE_SLICE] }, { services: [bad.object], slices: [] });
  t.false(broken.state.frontends.some((f) => f.service.name === 'other'));
  t.true(broken.problems.some((p) => p.name === 'other' && p.reason.includes('spec.ports:')));
});
