// The probe's TypeScript layouts match what the compiler produced (BTF of the embedded object).
import test from 'ava';

import { embeddedObject, native } from '../../ts/addon/index.js';
import { probeKeyLayout, probeValueLayout } from '../fixtures/probe.js';

test('probe_key and probe_value layouts have not drifted from bpf/include/bpfproxy/probe.h', (t) => {
  const obj = new native.BpfObject(embeddedObject('probe'), 'probe');
  try {
    for (const [type, layout] of [['probe_key', probeKeyLayout], ['probe_value', probeValueLayout]] as const) {
      const btf = obj.typeLayout(type);
      t.truthy(btf, `${type} is in BTF`);
      t.is(btf!.size, layout.size, `${type} size`);
      t.deepEqual(Object.fromEntries(btf!.members.map((m) => [m.name, m.offset])), layout.fields, `${type} fields`);
    }
  } finally {
    obj.close();
  }
});

test('an object opens without privileges and describes its maps, programs and rodata', (t) => {
  const obj = new native.BpfObject(embeddedObject('probe'), 'probe', { maps: { probe_counters_v1: { maxEntries: 77 } } });
  try {
    t.like(obj.maps().find((m) => m.name === 'probe_counters_v1'), { type: 'percpu_hash', keySize: 8, valueSize: 16, maxEntries: 77 });
    t.deepEqual(obj.programs().map((p) => [p.name, p.type]), [
      ['probe_xdp', 'xdp'],
      ['probe_tc_ingress', 'sched_cls'],
      ['probe_tc_egress', 'sched_cls'],
    ]);
    t.deepEqual(obj.rodataVariables(), [{ name: 'cfg_drop_proto', offset: 0, size: 1 }]);
    t.throws(() => new native.BpfObject(embeddedObject('probe'), 'probe', { rodata: { cfg_drop_proto: 300 } }), { message: /does not fit in 1 bytes/ });
    t.throws(() => new native.BpfObject(embeddedObject('probe'), 'probe', { rodata: { cfg_nope: 1 } }), { message: /no rodata variable 'cfg_nope'/ });
    t.throws(() => new native.BpfObject(embeddedObject('probe'), 'probe', { maps: { nope: { maxEntries: 1 } } }), { message: /no map 'nope'/ });
  } finally {
    obj.close();
  }
});
