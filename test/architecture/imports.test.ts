/**
 * Imports point one way (docs/architecture.md, "Layers"): every import of every file under ts/ is
 * read with TypeScript's own pre-processor (static, type-only, re-exports and dynamic `import()`),
 * and one that points up a layer, or sideways without being listed, fails here. So do import cycles
 * between files, a folder of ts/ that no layer holds, and a folder the architecture doc leaves out.
 */
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = resolve('ts');

/** Higher may import lower; the same layer only along SIDEWAYS. Keep in step with docs/architecture.md. */
const LAYERS: Record<string, number> = {
  cli: 5,
  agent: 4, explain: 4, lab: 4, bench: 4, cleanup: 4,
  dataplane: 3, sources: 3, kube: 3, baselines: 3,
  model: 2, maglev: 2,
  abi: 1, addon: 1, packet: 1,
  util: 0,
};

/** Allowed arrows within a layer, each with its reason. */
const SIDEWAYS: Record<string, string> = {
  'bench -> lab': 'benchmarks run in the lab',
  'cleanup -> agent': 'cleanup undoes what the agent installs: it reads the agent\'s configuration and sysctl names',
  'model -> maglev': 'the model builds the Maglev tables',
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.(ts|mts|mjs)$/.test(e) ? [p] : [];
  });
}

/** file (relative to ts/) → the ts/ files it imports (relative to ts/). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(ROOT)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = info.importedFiles
      .map((f) => f.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => relative(ROOT, resolve(dirname(file), spec)).replace(/\.js$/, '.ts'));
    graph.set(relative(ROOT, file), targets);
  }
  return graph;
}

const folderOf = (file: string): string => file.split('/')[0]!.replace(/\.\w+$/, '');

const graph = importGraph();

test('the import graph is read: every file, every kind of import', (t) => {
  // A check that reads nothing passes everything: make sure it sees what it is meant to.
  t.true(graph.size > 150, `${graph.size} files`);
  t.true(graph.get('cli/agent.ts')!.some((f) => f.startsWith('agent/')), 'static imports');
  t.true(graph.get('sources/from-config.ts')!.includes('sources/kube-source.ts'), 'dynamic import()');
  t.true(graph.get('agent/config.ts')!.includes('sources/from-config.ts'), 'type-only imports');
});

test('every folder of ts/ has a layer, and docs/architecture.md covers it', (t) => {
  const doc = readFileSync('docs/architecture.md', 'utf8');
  for (const e of readdirSync(ROOT)) {
    if (!statSync(join(ROOT, e)).isDirectory()) continue;
    t.true(e in LAYERS, `ts/${e}/ has no layer in this test's LAYERS`);
    t.true(doc.includes(`\`ts/${e}/\``), `docs/architecture.md does not mention \`ts/${e}/\``);
  }
});

test('imports point down the layers (cli → agent/explain/lab/bench/cleanup → dataplane/sources/kube/baselines → model/maglev → abi/addon/packet → util)', (t) => {
  const wrong: string[] = [];
  for (const [file, targets] of graph) {
    for (const target of targets) {
      const from = folderOf(file);
      const to = folderOf(target);
      if (from === to) continue;
      const [a, b] = [LAYERS[from], LAYERS[to]];
      if (a === undefined || b === undefined) continue; // the test above names it
      if (a > b || (a === b && `${from} -> ${to}` in SIDEWAYS)) continue;
      wrong.push(`${file} -> ${target} (${from}, layer ${a}, may not import ${to}, layer ${b})`);
    }
  }
  t.deepEqual(wrong, []);
});

test('within the lab: net/ needs nothing of the lab but the state\'s types; the two API modes do not import each other', (t) => {
  const wrong: string[] = [];
  for (const [file, targets] of graph) {
    for (const target of targets) {
      if (!target.startsWith('lab/')) continue;
      if (file.startsWith('lab/net/') && !target.startsWith('lab/net/') && target !== 'lab/lab-state.ts') wrong.push(`${file} -> ${target}`);
      if (file.startsWith('lab/file-api/') && target.startsWith('lab/kube-api/')) wrong.push(`${file} -> ${target}`);
      if (file.startsWith('lab/kube-api/') && target.startsWith('lab/file-api/')) wrong.push(`${file} -> ${target}`);
    }
  }
  t.deepEqual(wrong, []);
});

test('no import cycles between files', (t) => {
  // Tarjan's strongly connected components; a component of more than one file is a cycle.
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) cycles.push(component.sort().join(' '));
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  t.deepEqual(cycles, []);
});
