#!/usr/bin/env node
// Prints every file the BPF objects are built from (bpf/**/*.c, bpf/**/*.h), for binding.gyp's
// action inputs: a change to any header rebuilds the objects.
import { readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const files = readdirSync(join(root, 'bpf'), { recursive: true })
  .map(String)
  .filter((f) => /\.[ch]$/.test(f))
  .map((f) => relative(root, join(root, 'bpf', f)))
  .sort();
console.log(files.join(' '));
