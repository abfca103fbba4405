// Bad YAML files through the file source and the agent's sync path: each bad document is reported
// with the file and the document's number, costs only itself (the file's other documents and the
// other files count), and never throws out of the source (one file with an alias bomb used to stop
// every agent reading the directory).
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { stringify } from 'yaml';

import { sourceTrackers } from '../../ts/agent/syncer.js';
import { FileSource } from '../../ts/sources/file-source.js';
import type { ClusterEvents } from '../../ts/sources/source.js';
import { MAX_YAML_DOCUMENT_CHARS } from '../../ts/sources/yaml-documents.js';
import { GOOD_ENDPOINTS, GOOD_SERVICE, goodSlice } from './_bad-input-cases.js';
import { entriesMissing, entryCount, runFull, runTrackers } from './_pipeline.js';

const ALSO_GOOD = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'also-good', namespace: 'default' },
  spec: { clusterIP: '198.19.0.30', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
};

function aliasChain(levels: number, width: number): string {
  const lines = ['kind: Service', 'metadata: { name: bomb }', 'x0: &a0 [lol, lol]'];
  for (let i = 1; i <= levels; i++) lines.push(`x${i}: &a${i} [${Array(width).fill(`*a${i - 1}`).join(', ')}]`);
  return lines.join('\n') + '\n';
}

interface BadYaml {
  readonly name: string;
  /** The second document of bad.yaml (the first is ALSO_GOOD). */
  readonly document: string;
  /** A stream with directives is read whole: the document comes after `%YAML 1.2`. */
  readonly directives?: boolean;
}

const BAD_YAML: readonly BadYaml[] = [
  { name: 'an alias bomb (billion laughs)', document: aliasChain(9, 12) },
  { name: 'more than 100 aliases of one scalar', document: `kind: Service\nmetadata: { name: many }\nv: &v x\nl: [${Array(150).fill('*v').join(', ')}]\n` },
  { name: 'an alias bomb after a directive', document: aliasChain(9, 12), directives: true },
  { name: 'an unclosed flow map', document: 'kind: Service\nmetadata: { name: web\n' },
  { name: 'duplicate keys', document: 'kind: Service\nkind: Node\n' },
  { name: 'a tab in the indentation', document: 'kind: Service\nmetadata:\n\tname: tabbed\n' },
  { name: 'an undefined alias', document: 'kind: Service\nmetadata: { name: *nope }\n' },
  { name: 'an unterminated quoted string', document: 'kind: Service\nmetadata: { name: "abc }\n' },
  { name: 'a List whose items is a number', document: 'kind: List\nitems: 5\n' },
  { name: 'a YAML document over the size limit', document: `kind: Service\nmetadata: { name: big }\n# ${'x'.repeat(MAX_YAML_DOCUMENT_CHARS)}\n` },
  { name: 'broken JSON', document: '{"kind": "Service", "metadata": {"name": "x"}\n' },
  { name: 'deep unclosed nesting', document: `${'['.repeat(20000)}\n` },
  { name: 'a mapping where a sequence entry was meant', document: 'kind: Service\nmetadata:\n  name: x\n - y\n' },
];

async function run(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-badyaml-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const trackers = sourceTrackers();
    const fileProblems: string[] = [];
    const events: ClusterEvents = {
      service: (p, c) => trackers.services.record(p, c),
      endpointSlice: (p, c) => trackers.endpointSlices.record(p, c),
      node: (p, c) => trackers.nodes.record(p, c),
      synced: () => undefined,
    };
    const source = new FileSource(dir, { rescanMs: 60_000, onProblem: (file, reason) => fileProblems.push(`${file}: ${reason}`) });
    await source.start(events);
    await source.stop();
    return { outcome: runTrackers(trackers), fileProblems };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const GOOD_FILE = [GOOD_SERVICE, goodSlice(GOOD_ENDPOINTS)].map((o) => stringify(o)).join('---\n');

interface Verdict {
  crashed?: string;
  clear: boolean;
  disturbed: string[];
  message: string;
}

async function judge(bad: BadYaml): Promise<Verdict> {
  try {
    const text = `${bad.directives ? '%YAML 1.2\n---\n' : ''}${stringify(ALSO_GOOD)}---\n${bad.document}`;
    const { outcome, fileProblems } = await run({ 'good.yaml': GOOD_FILE, 'bad.yaml': text });
    const alone = runFull({ services: [GOOD_SERVICE, ALSO_GOOD], slices: [goodSlice(GOOD_ENDPOINTS)] }, outcome.state.ids);
    const disturbed = entriesMissing(alone.entries, outcome.entries);
    if (entryCount(alone.entries) === 0) disturbed.push('nothing programmed');
    const message = fileProblems.join(' | ');
    const clear = fileProblems.some((p) => p.startsWith('bad.yaml: ') && p.includes('document 2 ('));
    return { clear, disturbed, message };
  } catch (e) {
    return { crashed: e instanceof Error ? (e.stack ?? e.message) : String(e), clear: false, disturbed: [], message: '' };
  }
}

for (const bad of BAD_YAML) {
  test(`bad YAML: ${bad.name}`, async (t) => {
    const v = await judge(bad);
    t.is(v.crashed, undefined);
    t.true(v.clear, `bad.yaml and its document 2 named; got ${v.message}`);
    t.deepEqual(v.disturbed, [], 'the other documents and files are programmed as without the bad document');
    t.log(v.message.slice(0, 300));
  });
}

test('figures: YAML inputs tried / clear message / disturbed others / crashed', async (t) => {
  const verdicts: Verdict[] = [];
  for (const bad of BAD_YAML) verdicts.push(await judge(bad));
  const figures = {
    tried: verdicts.length,
    clear: verdicts.filter((v) => v.clear).length,
    disturbed: verdicts.filter((v) => v.disturbed.length > 0).length,
    crashed: verdicts.filter((v) => v.crashed !== undefined).length,
  };
  t.log(`YAML inputs: ${JSON.stringify(figures)}`);
  t.deepEqual(figures, { tried: BAD_YAML.length, clear: BAD_YAML.length, disturbed: 0, crashed: 0 });
});

test('an object broken in a YAML file is set aside by name and field; the file\'s other objects count', async (t) => {
  const broken = { ...ALSO_GOOD, metadata: { name: 'broken', namespace: 'default' }, spec: { ...ALSO_GOOD.spec, clusterIP: '198.19.0.31', ports: '80' } };
  const { outcome, fileProblems } = await run({ 'good.yaml': GOOD_FILE, 'mixed.yaml': [ALSO_GOOD, broken].map((o) => stringify(o)).join('---\n') });
  t.deepEqual(fileProblems, []);
  t.true(outcome.problems.some((p) => p.kind === 'Service' && p.namespace === 'default' && p.name === 'broken' && p.reason.includes('spec.ports:')));
  t.true(outcome.state.frontends.some((f) => f.service.name === 'also-good'));
  t.false(outcome.state.frontends.some((f) => f.service.name === 'broken'));
});
