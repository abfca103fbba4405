/**
 * Something in the input the model could not use. Problems never stop a sync: the offending
 * object (or only its port) is left out and everything else is computed.
 */
export interface Problem {
  readonly kind: 'Service' | 'EndpointSlice' | 'Node' | 'Config';
  readonly namespace: string;
  readonly name: string;
  /** Service port name (or number when unnamed) when only that port is affected. */
  readonly port?: string;
  readonly reason: string;
}

export class ProblemList {
  private readonly items = new Map<string, Problem>();

  add(problem: Problem): void {
    // Several ports or slices can report the same fact; keep one.
    this.items.set(problemKey(problem), problem);
  }

  sorted(): Problem[] {
    return [...this.items]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, problem]) => problem);
  }
}

function problemKey(p: Problem): string {
  return [p.kind, p.namespace, p.name, p.port ?? '', p.reason].join('\u0000');
}

/**
 * An exception while computing one object, as that object's problem: the model's per-object guard
 * (input the source's admission check should have refused, or a bug) costs only that object.
 */
export function unexpectedProblem(kind: 'Service' | 'EndpointSlice', namespace: string, name: unknown, e: unknown): Problem {
  const message = e instanceof Error ? e.message : String(e);
  return { kind, namespace, name: typeof name === 'string' ? name : String(name ?? ''), reason: `could not be used (${message}); left out` };
}
