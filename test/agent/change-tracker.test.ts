import test from 'ava';

import { ChangeTracker } from '../../ts/agent/change-tracker.js';

type Obj = { metadata: { namespace: string; name: string }; v: number };
const obj = (name: string, v: number): Obj => ({ metadata: { namespace: 'default', name }, v });
const tracker = () => new ChangeTracker<Obj>((o) => `${o.metadata.namespace}/${o.metadata.name}`);

test('several events on one object drain as one net change from the last synced state', (t) => {
  const tr = tracker();
  tr.record(undefined, obj('a', 1));
  tr.drain();
  tr.record(obj('a', 1), obj('a', 2));
  tr.record(obj('a', 2), obj('a', 3));
  t.is(tr.pendingCount, 1);
  t.deepEqual(tr.drain(), [{ key: 'default/a', previous: obj('a', 1), current: obj('a', 3) }]);
  t.is(tr.pendingCount, 0);
  t.is(tr.totalCount, 3);
});

test('an object added and deleted between two syncs is no change', (t) => {
  const tr = tracker();
  tr.record(undefined, obj('b', 1));
  tr.record(obj('b', 1), undefined);
  t.deepEqual(tr.drain(), []);
  t.deepEqual(tr.current(), []);
});

test('a deletion is recorded with the state the last sync saw', (t) => {
  const tr = tracker();
  tr.record(undefined, obj('c', 1));
  tr.drain();
  tr.record(obj('c', 1), undefined);
  t.deepEqual(tr.drain(), [{ key: 'default/c', previous: obj('c', 1), current: undefined }]);
  t.deepEqual(tr.current(), []);
});

test('current() holds every live object', (t) => {
  const tr = tracker();
  for (const n of ['x', 'y', 'z']) tr.record(undefined, obj(n, 0));
  tr.record(obj('y', 0), undefined);
  t.deepEqual(tr.current().map((o) => o.metadata.name).sort(), ['x', 'z']);
});

test('with an admission check: a rejected object is recorded as absent and as a rejection until fixed or deleted', (t) => {
  const admit = (o: Obj) => (o.v >= 0 ? { ok: true as const, object: o } : { ok: false as const, problem: { kind: 'Service' as const, namespace: 'default', name: o.metadata.name, reason: `v ${o.v} is negative` } });
  const tr = new ChangeTracker<Obj>((o) => `${o.metadata.namespace}/${o.metadata.name}`, admit);
  tr.record(undefined, obj('a', 1));
  tr.record(undefined, obj('bad', -1));
  t.deepEqual(tr.drain(), [{ key: 'default/a', previous: undefined, current: obj('a', 1) }], 'the rejected object is no change at all');
  t.deepEqual(tr.rejected().map((p) => p.reason), ['v -1 is negative']);
  t.true(tr.takeRejectionsChanged());
  t.false(tr.takeRejectionsChanged());

  // A valid object that turns bad is removed, and reported.
  tr.record(obj('a', 1), obj('a', -2));
  t.deepEqual(tr.drain(), [{ key: 'default/a', previous: obj('a', 1), current: undefined }]);
  t.deepEqual(tr.current(), []);
  t.deepEqual(tr.rejected().map((p) => p.name).sort(), ['a', 'bad']);
  t.true(tr.takeRejectionsChanged());

  // Fixed, and deleted: the rejections go.
  tr.record(obj('a', -2), obj('a', 3));
  tr.record(obj('bad', -1), undefined);
  t.deepEqual(tr.drain(), [{ key: 'default/a', previous: undefined, current: obj('a', 3) }]);
  t.deepEqual(tr.rejected(), []);
  t.true(tr.takeRejectionsChanged());
});

test('the key of any value never throws (objectKey runs before an object is checked)', async (t) => {
  const { objectKey } = await import('../../ts/sources/source.js');
  const weird = [{ metadata: { name: Object.create(null) as object } }, { metadata: { name: { toString: 5 } } }, { metadata: 'x' }, { metadata: null }, null, 5];
  for (const o of weird) t.notThrows(() => objectKey(o as never));
  t.is(objectKey({ metadata: { namespace: 'ns', name: 'n' } }), 'ns/n');
});
