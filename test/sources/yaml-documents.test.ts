// readYamlDocuments (one document at a time, JSON documents by JSON.parse) reads every stream as
// yaml's parseAllDocuments reads it whole, and rejects what it rejects.
import test from 'ava';
import { parseAllDocuments, stringify } from 'yaml';

import { readYamlDocuments } from '../../ts/sources/yaml-documents.js';

function both(text: string): { ours: unknown[]; theirs: unknown[]; errors: string[]; theirErrors: string[] } {
  const ours: unknown[] = [];
  const errors = readYamlDocuments(text, (v) => ours.push(v));
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  return { ours, theirs: list.map((d) => d.toJS() as unknown), errors, theirErrors: list.flatMap((d) => d.errors.map((e) => e.message)) };
}

const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', labels: { a: 'b' } }, spec: { clusterIP: '198.19.0.10', ports: [{ port: 80, name: 'http' }] } };
const streams: Record<string, string> = {
  'JSON documents (kubectl -o json, the bench)': [svc, { ...svc, metadata: { name: 'b' } }].map((o) => JSON.stringify(o)).join('\n---\n') + '\n',
  'a leading marker and JSON on the marker line': `--- ${JSON.stringify(svc)}\n--- ${JSON.stringify({ kind: 'List', items: [svc] })}\n`,
  'block YAML, comments, an empty document': `# leading comment\n${stringify(svc)}---\n# only a comment\n---\n${stringify({ ...svc, metadata: { name: 'c' } })}`,
  'document end markers without a start marker': `${stringify(svc)}...\n${stringify({ kind: 'Node', metadata: { name: 'n' } })}...\n`,
  'YAML flow style that is not JSON': `--- {kind: Service, metadata: {name: d}, spec: {ports: [{port: 80}]}}\n---\n[1, 2, three]\n`,
  'a block scalar, and dashes that are not markers': `kind: Service\nmetadata:\n  name: e\n  annotations:\n    note: |\n      ----- not a marker\n       --- indented, not a marker\n---x: 1\n`,
  'directives: read whole': `%YAML 1.2\n---\n${stringify(svc)}---\nkind: Node\n`,
  'CRLF line ends': `${JSON.stringify(svc)}\r\n---\r\nkind: Node\r\nmetadata: { name: n }\r\n`,
  'no documents at all': '',
};

for (const [name, text] of Object.entries(streams)) {
  test(`the same values as parseAllDocuments: ${name}`, (t) => {
    const r = both(text);
    t.deepEqual(r.theirErrors, [], 'the stream is valid YAML');
    t.deepEqual(r.errors, []);
    t.deepEqual(r.ours, r.theirs);
  });
}

test('a broken document is an error, with the line where its document starts', (t) => {
  const text = `${JSON.stringify(svc)}\n---\nkind: Service\nmetadata: { name: web\n---\n${JSON.stringify(svc)}\n`;
  const r = both(text);
  t.true(r.theirErrors.length > 0);
  t.true(r.errors.length > 0);
  t.true(r.errors.every((e) => e.startsWith('document 2 (from line 2): ')), r.errors.join('\n'));
  // Broken JSON goes to the YAML parser, which explains what is wrong.
  const broken = both(`{"kind": "Service", "metadata": {"name": "x"}\n`);
  t.true(broken.errors.length > 0 && broken.theirErrors.length > 0);
});

test('duplicate keys are an error in YAML documents, as before', (t) => {
  const r = both(`kind: Service\nkind: Node\n`);
  t.true(r.theirErrors.length > 0);
  t.true(r.errors.length > 0);
});
