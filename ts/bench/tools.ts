/**
 * The bench's native tools (bench/*.c), compiled with the system compiler into build/bench/ on
 * first use and again whenever a source is newer than its binary: the load generator and the sink
 * (cc -O2), and the empty BPF programs that are the floor of the per-packet figures (clang -target
 * bpf). One command line each, printed in the report, so a figure can be reproduced by hand.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { run } from '../util/exec.js';

/** The checkout's root (this file is ts/bench/tools.ts). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface BenchTools {
  loadgen: string;
  sink: string;
  /** ELF with `empty_tc` (SEC tc) and `empty_xdp` (SEC xdp). */
  emptyBpf: string;
  /** The commands that built them. */
  commands: string[];
}

interface ToolSpec {
  source: string;
  output: string;
  cmd: string;
  args: (src: string, out: string) => string[];
}

const specs = (outDir: string): Record<'loadgen' | 'sink' | 'emptyBpf', ToolSpec> => ({
  loadgen: { source: 'bench/loadgen.c', output: join(outDir, 'loadgen'), cmd: 'cc', args: (s, o) => ['-O2', '-Wall', '-Wextra', '-o', o, s] },
  sink: { source: 'bench/sink.c', output: join(outDir, 'sink'), cmd: 'cc', args: (s, o) => ['-O2', '-Wall', '-Wextra', '-o', o, s] },
  emptyBpf: { source: 'bench/empty.bpf.c', output: join(outDir, 'empty.bpf.o'), cmd: 'clang', args: (s, o) => ['-target', 'bpf', '-O2', '-c', s, '-o', o] },
});

function fresh(source: string, output: string): boolean {
  return existsSync(output) && statSync(output).mtimeMs >= statSync(source).mtimeMs;
}

/** Builds what is missing or stale; resolves with the paths. */
export async function buildTools(outDir = join(repoRoot, 'build', 'bench')): Promise<BenchTools> {
  mkdirSync(outDir, { recursive: true });
  const commands: string[] = [];
  const paths = {} as Record<'loadgen' | 'sink' | 'emptyBpf', string>;
  for (const [name, spec] of Object.entries(specs(outDir)) as [keyof typeof paths, ToolSpec][]) {
    const source = join(repoRoot, spec.source);
    const args = spec.args(source, spec.output);
    commands.push(`${spec.cmd} ${args.join(' ').replaceAll(repoRoot + '/', '')}`);
    if (!fresh(source, spec.output)) {
      try {
        await run(spec.cmd, args, { timeoutMs: 60_000 });
      } catch (e) {
        throw new Error(`building the bench tool ${spec.source} failed (is ${spec.cmd} installed? hack/system-packages.txt): ${(e as Error).message}`);
      }
    }
    paths[name] = spec.output;
  }
  return { ...paths, commands };
}

export function readEmptyBpf(tools: BenchTools): Buffer {
  return readFileSync(tools.emptyBpf);
}
