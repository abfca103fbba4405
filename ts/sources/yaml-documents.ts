/**
 * The documents of a YAML stream, handed over one at a time as plain values, so that a caller that
 * keeps only part of each (the slim objects) never holds more than one document's syntax tree:
 * yaml's parseAllDocuments on a 16 MiB file of 20 000 documents builds every tree first, about
 * 480 MiB of heap at once, which the process keeps as resident memory long after.
 *
 * The stream is cut at document start markers: a line starting with `---` followed by a space, a
 * tab or the line's end can only be a marker in YAML (such a line is forbidden inside content), so
 * each piece parses alone as it would in the whole stream. A piece that is a JSON value (what
 * `kubectl get -o json` writes) is read with JSON.parse, which is a hundred times faster than the
 * YAML parser and gives the same value (JSON is YAML); anything else goes through the YAML parser.
 * A stream with directives (`%YAML`, `%TAG`) is parsed whole, document by document, since a
 * directive belongs to the marker after it.
 *
 * Each document is read on its own, bounded: a YAML document larger than MAX_YAML_DOCUMENT_CHARS
 * is refused unparsed, aliases are limited (yaml's toJS limit, against "billion laughs"), and
 * whatever goes wrong while reading one document or handing it over (an exception of the parser or
 * of `each`, a stack overflow on deep nesting) is that document's error, named by its number and
 * line; the other documents are still read.
 */
import { Composer, Parser, parseAllDocuments, type Document } from 'yaml';

/** Twice etcd's request limit (1.5 MiB): no API object is larger. JSON documents are not bounded. */
export const MAX_YAML_DOCUMENT_CHARS = 3 * 1024 * 1024;
/** Aliases one document may expand (yaml's default, said out loud: its limit is what stops a bomb). */
export const MAX_YAML_ALIASES = 100;

/** A document that could not be read: its number in the stream (from 1), its first line, why. */
export interface YamlDocumentError {
  readonly document: number;
  readonly line: number;
  readonly message: string;
}

export function formatYamlError(e: YamlDocumentError): string {
  return `document ${e.document} (from line ${e.line}): ${e.message}`;
}

/**
 * Calls `each` with every document's value, in order, and its number (from 1); returns the
 * documents that could not be read (none: all read).
 */
export function readYamlDocumentsDetailed(text: string, each: (value: unknown, document: number) => void): YamlDocumentError[] {
  if (/^%/m.test(text)) return readWhole(text, each);
  const errors: YamlDocumentError[] = [];
  const starts = [0];
  const marker = /^---(?:[ \t\r]|$)/gm;
  for (let m = marker.exec(text); m !== null; m = marker.exec(text)) if (m.index > 0) starts.push(m.index);
  let line = 1;
  let lineAt = 0;
  let document = 0;
  for (let i = 0; i < starts.length; i++) {
    const start = starts[i]!;
    const piece = text.slice(start, starts[i + 1] ?? text.length);
    // Line numbers in yaml's messages count from the piece's start.
    for (; lineAt < start; lineAt++) if (text.charCodeAt(lineAt) === 10) line++;
    const fail = (message: string): void => void errors.push({ document, line, message });
    const json = asJson(piece);
    if (json !== undefined) {
      document++;
      guarded(() => each(json.value, document), fail);
      continue;
    }
    if (piece.length > MAX_YAML_DOCUMENT_CHARS) {
      document++;
      fail(`a YAML document of ${piece.length} characters is larger than the limit of ${MAX_YAML_DOCUMENT_CHARS}; not read`);
      continue;
    }
    let docs: Document.Parsed[];
    try {
      const parsed = parseAllDocuments(piece);
      docs = Array.isArray(parsed) ? parsed : [parsed as unknown as Document.Parsed];
    } catch (e) {
      document++;
      fail(describe(e));
      continue;
    }
    for (const doc of docs) {
      document++;
      if (doc.errors.length > 0) fail(doc.errors.map((e) => e.message).join('; '));
      else guarded(() => each(toValue(doc), document), fail);
    }
  }
  return errors;
}

/** As readYamlDocumentsDetailed, the errors as text ("document 2 (from line 5): …"). */
export function readYamlDocuments(text: string, each: (value: unknown, document: number) => void): string[] {
  return readYamlDocumentsDetailed(text, each).map(formatYamlError);
}

function toValue(doc: Document.Parsed): unknown {
  return doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as unknown;
}

function guarded(fn: () => void, fail: (message: string) => void): void {
  try {
    fn();
  } catch (e) {
    fail(describe(e));
  }
}

function describe(e: unknown): string {
  if (e instanceof RangeError && /call stack/i.test(e.message)) return 'nested too deeply to read';
  return e instanceof Error ? e.message : String(e);
}

/** A piece that is a marker line then one JSON object or list, as JSON.parse reads it. */
function asJson(piece: string): { value: unknown } | undefined {
  let body = piece.startsWith('---') ? piece.slice(3) : piece;
  body = body.trim();
  const first = body.charCodeAt(0);
  if (first !== 0x7b /* { */ && first !== 0x5b /* [ */) return undefined;
  try {
    return { value: JSON.parse(body) as unknown };
  } catch {
    return undefined; // YAML flow style, or broken: the YAML parser decides and explains
  }
}

function readWhole(text: string, each: (value: unknown, document: number) => void): YamlDocumentError[] {
  const errors: YamlDocumentError[] = [];
  if (text.length > MAX_YAML_DOCUMENT_CHARS) {
    return [{ document: 1, line: 1, message: `a YAML stream with directives of ${text.length} characters is larger than the limit of ${MAX_YAML_DOCUMENT_CHARS}; not read` }];
  }
  let document = 0;
  try {
    for (const doc of new Composer().compose(new Parser().parse(text), true)) {
      document++;
      const line = lineOf(text, doc.range?.[0] ?? 0);
      const fail = (message: string): void => void errors.push({ document, line, message });
      if (doc.errors.length > 0) fail(doc.errors.map((e) => e.message).join('; '));
      else guarded(() => each(toValue(doc), document), fail);
    }
  } catch (e) {
    errors.push({ document: document + 1, line: 1, message: describe(e) });
  }
  return errors;
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
