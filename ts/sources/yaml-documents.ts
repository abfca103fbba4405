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
 */
import { Composer, Parser, parseAllDocuments } from 'yaml';

/** Calls `each` with every document's value, in order; returns the parse errors (none: all read). */
export function readYamlDocuments(text: string, each: (value: unknown) => void): string[] {
  if (/^%/m.test(text)) return readWhole(text, each);
  const errors: string[] = [];
  const starts = [0];
  const marker = /^---(?:[ \t\r]|$)/gm;
  for (let m = marker.exec(text); m !== null; m = marker.exec(text)) if (m.index > 0) starts.push(m.index);
  let line = 1;
  let lineAt = 0;
  for (let i = 0; i < starts.length; i++) {
    const start = starts[i]!;
    const piece = text.slice(start, starts[i + 1] ?? text.length);
    const json = asJson(piece);
    if (json !== undefined) {
      each(json.value);
      continue;
    }
    const docs = parseAllDocuments(piece);
    const pieceErrors = (Array.isArray(docs) ? docs : [docs]).flatMap((d) => d.errors.map((e) => e.message));
    if (pieceErrors.length > 0) {
      // Line numbers in yaml's messages count from the piece's start.
      for (; lineAt < start; lineAt++) if (text.charCodeAt(lineAt) === 10) line++;
      errors.push(...pieceErrors.map((e) => (starts.length > 1 ? `in the document at line ${line}: ${e}` : e)));
      continue;
    }
    for (const doc of Array.isArray(docs) ? docs : [docs]) each(doc.toJS());
  }
  return errors;
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

function readWhole(text: string, each: (value: unknown) => void): string[] {
  const errors: string[] = [];
  for (const doc of new Composer().compose(new Parser().parse(text), true)) {
    if (doc.errors.length > 0) errors.push(...doc.errors.map((e) => e.message));
    else each(doc.toJS());
  }
  return errors;
}
