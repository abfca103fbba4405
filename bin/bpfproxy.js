#!/usr/bin/env node
// The `bpfproxy` command. In a checkout it runs the TypeScript sources through tsx; the container
// image runs the compiled dist/ts/cli/main.js directly.
import { register } from 'tsx/esm/api';

register();
await import('../ts/cli/main.ts');
