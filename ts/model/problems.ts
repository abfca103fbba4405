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

/**
 * A stable CamelCase name for what kind of problem this is: the `reason` of the Kubernetes Event
 * that reports it (ts/sources/kube-events.ts), which users filter on and alert on. The texts are
 * made in this package; test/model/problem-reasons.test.ts pins every kind to its name.
 */
export type ProblemReason =
  | 'Rejected'
  | 'FrontendRefused'
  | 'FrontendConflict'
  | 'HealthCheckNodePortConflict'
  | 'Duplicate'
  | 'Unsupported'
  | 'Unusable'
  | 'CapacityExceeded'
  | 'InvalidConfiguration'
  | 'Invalid';

const REASON_RULES: readonly [RegExp, ProblemReason][] = [
  [/^rejected: /, 'Rejected'],
  [/^could not be used /, 'Unusable'],
  [/ frontend \S+ refused: /, 'FrontendRefused'],
  [/ frontend \S+ is already used by /, 'FrontendConflict'],
  [/^healthCheckNodePort \d+ is already used by /, 'HealthCheckNodePortConflict'],
  [/listed more than once/, 'Duplicate'],
  [/not supported yet|not served by bpfproxy/, 'Unsupported'],
  [/^no (service|backend) id left/, 'CapacityExceeded'],
];

export function problemReason(p: Problem): ProblemReason {
  for (const [re, reason] of REASON_RULES) if (re.test(p.reason)) return reason;
  return p.kind === 'Config' ? 'InvalidConfiguration' : 'Invalid';
}
