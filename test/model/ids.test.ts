import test from 'ava';

import { IdAllocator } from '../../ts/model/index.js';
import { model, service, slice } from './_fixture.js';

test('new keys get ids in key order, starting at 1 (0 means "none" in map values)', (t) => {
  const ids = IdAllocator.empty();
  t.deepEqual(ids.sync(['b', 'a', 'c']), { added: ['a', 'b', 'c'], removed: [], exhausted: [] });
  t.deepEqual([ids.get('a'), ids.get('b'), ids.get('c')], [1, 2, 3]);
});

test('live keys keep their ids; removed ids are not handed out in the same sync', (t) => {
  const ids = IdAllocator.empty();
  ids.sync(['a', 'b', 'c']);
  t.deepEqual(ids.sync(['a', 'c', 'd']), { added: ['d'], removed: ['b'], exhausted: [] });
  t.deepEqual([ids.get('a'), ids.get('b'), ids.get('c'), ids.get('d')], [1, undefined, 3, 4]);
});

test('freed ids are reused oldest first once the range is exhausted', (t) => {
  const ids = IdAllocator.empty({ first: 1, last: 3 });
  ids.sync(['a', 'b', 'c']);
  ids.sync(['c']); // frees 1 (a) then 2 (b)
  ids.sync(['c', 'd']);
  t.is(ids.get('d'), 1);
  ids.sync(['c', 'd', 'e', 'f']);
  t.is(ids.get('e'), 2);
  t.deepEqual(ids.sync(['c', 'd', 'e', 'f', 'g']).exhausted, ['f', 'g']);
});

test('snapshots round-trip and are plain sorted data', (t) => {
  const ids = IdAllocator.empty();
  ids.sync(['z', 'y']);
  ids.sync(['z', 'x']);
  const snapshot = ids.snapshot();
  t.deepEqual(snapshot, { assigned: [['x', 3], ['z', 2]], released: [1], next: 4, first: 1, last: 0xffffffff });
  t.deepEqual(IdAllocator.from(JSON.parse(JSON.stringify(snapshot))).snapshot(), snapshot);
});

test('invalid ranges are rejected', (t) => {
  t.throws(() => IdAllocator.empty({ first: 0 }), { instanceOf: RangeError });
  t.throws(() => IdAllocator.empty({ first: 5, last: 4 }), { instanceOf: RangeError });
  t.throws(() => IdAllocator.empty({ last: 2 ** 32 }), { instanceOf: RangeError });
});

test('the model keeps service and backend ids across syncs, and does not mutate the previous ids', (t) => {
  const first = model(
    service('a', '198.19.0.1') + service('c', '198.19.0.3') + slice('a', 'a-1', [{ ip: '198.18.129.1' }, { ip: '198.18.129.2' }]),
  );
  const frozen = JSON.stringify(first.ids);
  const second = model(
    service('a', '198.19.0.1') +
      service('b', '198.19.0.2') +
      service('c', '198.19.0.3') +
      slice('a', 'a-1', [{ ip: '198.18.129.2' }, { ip: '198.18.129.3' }]),
    { previousIds: first.ids },
  );
  t.is(JSON.stringify(first.ids), frozen);
  const idOf = (state: typeof first, key: string) => state.services.find((s) => s.key === key)?.id;
  t.is(idOf(second, 'default/a:http/TCP#internal'), idOf(first, 'default/a:http/TCP#internal'));
  t.is(idOf(second, 'default/c:http/TCP#internal'), idOf(first, 'default/c:http/TCP#internal'));
  t.is(idOf(second, 'default/b:http/TCP#internal'), 3, 'a new service takes a fresh id, not a renumbering');
  const backendId = (state: typeof first, key: string) => state.backends.find((b) => b.key === key)?.id;
  t.is(backendId(second, '198.18.129.2:8080/TCP'), backendId(first, '198.18.129.2:8080/TCP'));
  t.is(backendId(second, '198.18.129.3:8080/TCP'), 3);
  t.deepEqual(second.ids.backends.released, [1]);
});

test('the same history gives the same ids', (t) => {
  const yaml = service('a', '198.19.0.1') + service('b', '198.19.0.2') + slice('b', 'b-1', [{ ip: '198.18.129.1' }]);
  const one = model(yaml, { previousIds: model(service('b', '198.19.0.2')).ids });
  const two = model(yaml, { previousIds: model(service('b', '198.19.0.2')).ids });
  t.deepEqual(one, two);
});
