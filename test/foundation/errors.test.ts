// What goes wrong says what is wrong, and leaves nothing behind.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { privileged } from '../helpers/env.js';
import { scope } from '../helpers/scope.js';

import { BpfError, native } from '../../ts/addon/index.js';
import { PROBE_COUNTERS_MAP, Probe } from '../fixtures/probe.js';

const root = new URL('../..', import.meta.url).pathname;

privileged('a compatible pinned map is reused across loads', async (t) => {
  const s = scope(t);
  const pinDir = await s.bpffs();
  const first = await Probe.load({ pinDir });
  s.cleanup.add('first', () => first.close());
  const second = await Probe.load({ pinDir });
  s.cleanup.add('second', () => second.close());
  t.is(second.counters.info.id, first.counters.info.id);
});

privileged('an incompatible pinned map is refused by name and field, and nothing is left behind', async (t) => {
  const s = scope(t);
  const pinDir = await s.bpffs();
  const path = join(pinDir, PROBE_COUNTERS_MAP);
  // An older layout of the same map: same name, an 8-byte value.
  const old = native.BpfMap.create({ type: 'percpu_hash', name: 'probe_counters', keySize: 8, valueSize: 8, maxEntries: 1024 });
  old.pin(path);
  s.cleanup.add('old map', () => old.close());

  const err = await t.throwsAsync(Probe.load({ pinDir }), { instanceOf: BpfError });
  t.is(err!.code, 'EEXIST');
  t.is(err!.call, 'bpf_object__load');
  t.regex(err!.message, new RegExp(`pinned map ${path} is incompatible: its value size is 8, this program's map '${PROBE_COUNTERS_MAP}' has 16`));
  t.deepEqual(readdirSync(pinDir).filter((f) => !f.endsWith('.debug')), [PROBE_COUNTERS_MAP], 'only the old pin remains');
  t.is(native.BpfMap.fromPin(path).info.valueSize, 8, 'the old map is untouched');
});

privileged('a missing interface is named in the error', (t) => {
  const err = t.throws(() => native.ifNameToIndex('bpt-missing0'), { instanceOf: BpfError });
  t.is(err!.code, 'ENODEV');
  t.regex(err!.message, /interface 'bpt-missing0'/);
});

privileged('attaching to an interface index that does not exist fails clearly', async (t) => {
  const s = scope(t);
  const ns = await s.netns('m');
  const probe = await Probe.load();
  s.cleanup.add('probe', () => probe.close());
  const err = t.throws(() => native.netnsRun(ns.path, () => probe.attachXdp(4242)), { instanceOf: BpfError });
  t.is(err!.code, 'ENODEV');
  t.regex(err!.message, /no interface with ifindex 4242 in this network namespace/);
});

// To the kernel, a non-root user is a process without capabilities. Dropping them all (and the
// bounding set, so nothing can regain them) while keeping uid 0 lets the child still read the
// checkout wherever CI cloned it, however private its parent directory is.
privileged('a process without root privileges is told which privileges are missing', (t) => {
  const out = execFileSync(
    'setpriv',
    ['--inh-caps=-all', '--bounding-set=-all', process.execPath, '--import', 'tsx', 'test/fixtures/load-probe.ts'],
    { cwd: root },
  ).toString();
  const result = JSON.parse(out.trim().split('\n').pop()!) as { ok: boolean; name: string; code: string; message: string };
  t.false(result.ok);
  t.is(result.name, 'BpfError');
  t.true(['EPERM', 'EACCES'].includes(result.code), result.code);
  t.regex(result.message, /needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON/);
});
