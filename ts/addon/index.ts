/**
 * Loads the native addon once and gives it types. Everything that touches the kernel goes
 * through here: BpfObject (load), BpfMap, BpfProgram (test runs), BpfLink (XDP, tcx), tc filters
 * and network namespaces.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BpfError } from './errors.js';
import type { NativeAddon } from './native.js';

export { BpfError } from './errors.js';
export type * from './native.js';

/** The package root: the nearest folder above this file with a package.json (source or dist). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

const root = packageRoot();
// cmake-js builds into build/native/Release, node-gyp into build/Release; a packaged
// agent may say where with BPFPROXY_ADDON.
const candidates = [
  process.env.BPFPROXY_ADDON,
  join(root, 'build/native/Release/bpfproxy.node'),
  join(root, 'build/Release/bpfproxy.node'),
].filter((p): p is string => !!p);

function load(): NativeAddon {
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new Error(`bpfproxy's native addon is not built (looked in ${candidates.join(', ')}): run \`npm run build\``);
  }
  const addon = createRequire(import.meta.url)(path) as NativeAddon;
  addon.setErrorClass(BpfError);
  return addon;
}

export const native: NativeAddon = load();

/** The BPF objects compiled from bpf/ into the addon, by name (the .bpf.c file's base name). */
export function embeddedObject(name: string): Buffer {
  const obj = native.embeddedObjects()[name];
  if (!obj) throw new Error(`no embedded BPF object '${name}' (have: ${Object.keys(native.embeddedObjects()).join(', ')})`);
  return obj.elf;
}
