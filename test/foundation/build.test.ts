// The build is one source list, and what the addon carries is what bpf/ compiles to.
import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { native } from '../../ts/addon/index.js';

const root = new URL('../..', import.meta.url).pathname;
const sources = JSON.parse(readFileSync(join(root, 'native/sources.json'), 'utf8')) as {
  addon: string[];
  libbpf: string[];
  bpfPrograms: string[];
};

test('every file of the source list exists', (t) => {
  const missing = [...sources.addon, ...sources.libbpf, ...sources.bpfPrograms].filter((f) => !existsSync(join(root, f)));
  t.deepEqual(missing, []);
});

test('the source list names every addon source and every BPF program', (t) => {
  const cc = readdirSync(join(root, 'native/src')).filter((f) => f.endsWith('.cc')).map((f) => `native/src/${f}`);
  t.deepEqual([...sources.addon].sort(), cc.sort());
  const progs = readdirSync(join(root, 'bpf')).filter((f) => f.endsWith('.bpf.c')).map((f) => `bpf/${f}`);
  t.deepEqual([...sources.bpfPrograms].sort(), progs.sort());
});

test('binding.gyp and CMakeLists.txt take their sources from native/sources.json only', (t) => {
  const gyp = readFileSync(join(root, 'binding.gyp'), 'utf8');
  const gypJson = JSON.parse(gyp.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n')) as {
    targets: { target_name: string; sources?: string[] }[];
  };
  for (const target of gypJson.targets) {
    for (const src of target.sources ?? []) {
      t.true(src.includes("native/sources.json") || src.startsWith('<(SHARED_INTERMEDIATE_DIR)'), `${target.target_name}: ${src}`);
    }
  }
  const cmake = readFileSync(join(root, 'CMakeLists.txt'), 'utf8');
  t.notRegex(cmake, /native\/(src|vendor)\/\S+\.(c|cc)\b/, 'CMakeLists.txt names no source file itself');
  t.regex(cmake, /native\/sources\.json/);
});

test('vendored libbpf: the recorded version is the one built into the addon', (t) => {
  const dir = join(root, 'native/vendor/libbpf');
  const version = readFileSync(join(dir, 'VERSION'), 'utf8').trim();
  const header = readFileSync(join(dir, 'src/libbpf_version.h'), 'utf8');
  const major = /LIBBPF_MAJOR_VERSION (\d+)/.exec(header)?.[1];
  const minor = /LIBBPF_MINOR_VERSION (\d+)/.exec(header)?.[1];
  t.true(version.startsWith(`${major}.${minor}.`));
  t.is(native.libbpfVersion(), `v${major}.${minor}`);
  t.regex(readFileSync(join(dir, 'SHA256SUMS'), 'utf8'), new RegExp(`^[0-9a-f]{64}  libbpf_${version.replace(/\./g, '\\.')}\\.orig\\.tar\\.gz\\n$`));
  t.true(existsSync(join(dir, 'LICENSE.BSD-2-Clause')) && existsSync(join(dir, 'LICENSE.LGPL-2.1')));
});

test('the addon embeds one object per BPF program, intact', (t) => {
  const embedded = native.embeddedObjects();
  const names = sources.bpfPrograms.map((p) => p.replace(/^bpf\//, '').replace(/\.bpf\.c$/, ''));
  t.deepEqual(Object.keys(embedded).sort(), names.sort());
  for (const [name, { elf, sha256 }] of Object.entries(embedded)) {
    t.is(createHash('sha256').update(elf).digest('hex'), sha256, name);
    t.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `${name} is an ELF image`);
  }
});

// CI builds the addon with node-gyp as well (npm run build:gyp); both builds must embed the same
// BPF objects and load the same way.
const gypAddon = join(root, 'build/Release/bpfproxy.node');
(existsSync(gypAddon) || process.env.CI === 'true' ? test : test.skip)('the node-gyp build is the same addon as the cmake-js build', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const script = `const a = require(${JSON.stringify(gypAddon)}); const o = a.embeddedObjects();
    console.log(JSON.stringify({ libbpf: a.libbpfVersion(), objects: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v.sha256])) }));`;
  const gyp = JSON.parse(execFileSync(process.execPath, ['-e', script]).toString()) as { libbpf: string; objects: Record<string, string> };
  t.is(gyp.libbpf, native.libbpfVersion());
  t.deepEqual(gyp.objects, Object.fromEntries(Object.entries(native.embeddedObjects()).map(([k, v]) => [k, v.sha256])));
});
