/**
 * The TypeScript ABI against the compiled datapath: every codec against BTF (size, and each
 * member's name, offset and size), every map's name, type and key/value sizes, the rodata
 * variables, and the enums (drop reasons, flags, kinds) against the C header text. Any drift fails.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { embeddedObject, native, type BpfObjectNative } from '../../ts/addon/index.js';
import {
  allStructs, cEnums, DropReason, DROP_REASON_SLOTS, FRAG_STAT_SLOTS, fieldSize, mapCounts, mapSpecs, rodataVariables,
} from '../../ts/abi/index.js';
import { countedMaps, datapathObjects } from '../../ts/dataplane/loader.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const header = (name: string) => readFileSync(join(root, 'bpf/include/bpfproxy', name), 'utf8');

/** enum NAME { A = expr, B, ... } of a C header: numbers, `1 << n`, and implicit increments. */
export function parseCEnum(text: string, name: string): Map<string, number> {
  const m = new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`, 's').exec(text);
  if (!m) throw new Error(`enum ${name} not found`);
  const body = m[1]!.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const out = new Map<string, number>();
  let next = 0;
  for (const item of body.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [ident, expr] = item.split('=').map((s) => s.trim());
    let value = next;
    if (expr !== undefined) {
      const shift = /^(\d+)\s*<<\s*(\d+)$/.exec(expr);
      if (shift) value = Number(shift[1]) << Number(shift[2]);
      else if (/^(0x[0-9a-f]+|\d+)$/i.test(expr)) value = Number(expr);
      else throw new Error(`enum ${name}: cannot evaluate '${expr}'`);
    }
    out.set(ident!, value);
    next = value + 1;
  }
  return out;
}

const objects: Record<string, BpfObjectNative> = {};
test.before(() => {
  // Opening (not loading) is enough for BTF and map definitions: no root needed.
  for (const name of datapathObjects) objects[name] = new native.BpfObject(embeddedObject(name), name);
});
test.after.always(() => {
  for (const o of Object.values(objects)) o.close();
});

for (const codec of allStructs) {
  test(`struct ${codec.cName}: codec matches BTF`, (t) => {
    for (const [name, obj] of Object.entries(objects)) {
      const layout = obj.typeLayout(codec.cName);
      if (!layout) t.fail(`${name} has no struct ${codec.cName} in BTF`);
      else {
        t.is(codec.size, layout.size, `${name}: sizeof(struct ${codec.cName})`);
        t.deepEqual(
          codec.fields.map((f) => ({ name: f.name, offset: f.offset, size: fieldSize[f.type] })),
          layout.members.map((m) => ({ name: m.name, offset: m.offset, size: m.size })),
          `${name}: members of struct ${codec.cName}`,
        );
        t.true(layout.members.every((m) => m.bitSize === 0), 'no bitfields in the ABI');
      }
    }
  });
}

test('maps: names, types, key and value sizes match the objects', (t) => {
  for (const [name, obj] of Object.entries(objects)) {
    const have = new Map(obj.maps().filter((m) => !m.internal).map((m) => [m.name, m]));
    const want = Object.values(mapSpecs);
    t.deepEqual([...have.keys()].sort(), want.map((s) => s.name).sort(), `${name}: the set of maps`);
    for (const spec of want) {
      const m = have.get(spec.name);
      t.truthy(m, `${name}: map ${spec.name}`);
      if (!m) continue;
      t.true(spec.name.length <= 15, `${spec.name} fits the kernel's 15 characters`);
      t.is(m.type, spec.type, `${name}: ${spec.name} type`);
      t.is(m.keySize, spec.key.size, `${name}: ${spec.name} key size`);
      t.is(m.valueSize, spec.value.size, `${name}: ${spec.name} value size`);
    }
    t.is(have.get(mapSpecs.drops.name)?.maxEntries, DROP_REASON_SLOTS, 'drops_v1 size');
    t.is(have.get(mapSpecs.fragstat.name)?.maxEntries, FRAG_STAT_SLOTS, 'fragstat_v1 size');
  }
});

test('map_count: the counter shares every map, counts every hash map by its key in mapSpecs, and its context matches BTF', (t) => {
  const obj = new native.BpfObject(embeddedObject('map_count'), 'map_count');
  t.teardown(() => obj.close());
  const have = new Map(obj.maps().filter((m) => !m.internal).map((m) => [m.name, m]));
  for (const spec of Object.values(mapSpecs)) t.like(have.get(spec.name), { type: spec.type, keySize: spec.key.size, valueSize: spec.value.size }, spec.name);
  const hashes = (Object.entries(mapSpecs) as [string, { type: string }][]).filter(([, s]) => /hash/.test(s.type)).map(([k]) => k);
  t.deepEqual([...countedMaps].sort(), hashes.sort(), 'one count per hash map');
  const layout = obj.typeLayout(mapCounts.cName);
  t.is(layout?.size, mapCounts.size);
  t.deepEqual(
    mapCounts.fields.map((f) => ({ name: f.name, offset: f.offset, size: fieldSize[f.type] })),
    layout?.members.map((m) => ({ name: m.name, offset: m.offset, size: m.size })),
  );
  t.deepEqual(obj.programs().map((p) => ({ name: p.name, section: p.section })), [{ name: 'map_count', section: 'syscall' }]);
});

test('rodata: the configuration variables match', (t) => {
  for (const [name, obj] of Object.entries(objects)) {
    t.deepEqual(
      obj.rodataVariables().map((v) => ({ cName: v.name, size: v.size })).sort((a, b) => a.cName.localeCompare(b.cName)),
      rodataVariables.map((v) => ({ cName: v.cName, size: v.size })).sort((a, b) => a.cName.localeCompare(b.cName)),
      `${name}: .rodata variables`,
    );
  }
});

test('enum drop_reason: TypeScript and C agree, value by value', (t) => {
  const c = parseCEnum(header('drop_reason.h'), 'drop_reason');
  const max = c.get('DROP_REASON_MAX');
  c.delete('DROP_REASON_MAX');
  const ts = Object.entries(DropReason).filter(([, v]) => typeof v === 'number').map(([k, v]): [string, number] => [`DROP_${k}`, v as number]);
  t.deepEqual(new Map(ts), c);
  t.is(max, ts.length, 'DROP_REASON_MAX follows the last reason');
  t.true(ts.length <= DROP_REASON_SLOTS);
});

test('flags and kinds: TypeScript and C agree', (t) => {
  const text = ['service.h', 'conntrack.h', 'frag.h'].map(header).join('\n');
  for (const [cName, { prefix, values }] of Object.entries(cEnums)) {
    const c = parseCEnum(text, cName);
    // A counter count, not a value: FRAG_STAT_MAX follows the last counter.
    if (c.has(`${prefix}MAX`)) {
      t.is(c.get(`${prefix}MAX`), Object.keys(values).length, `${cName}: ${prefix}MAX follows the last value`);
      c.delete(`${prefix}MAX`);
    }
    t.deepEqual(new Map(Object.entries(values).map(([k, v]) => [prefix + k, v])), c, `enum ${cName}`);
  }
});

test('the enum parser sees through comments, shifts and implicit values', (t) => {
  const parsed = parseCEnum('enum x { A = 1 << 3, /* c, d */ B, C = 0x10, D };', 'x');
  t.deepEqual([...parsed], [['A', 8], ['B', 9], ['C', 16], ['D', 17]]);
});
