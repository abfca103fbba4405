/**
 * How much a run measures: `--quick` (a smoke run under 3 minutes: small N, 1-second points) and
 * the full run (the sizes, under 30 minutes). Both write the same files.
 */
export const SCENARIOS = ['connections', 'nodeport', 'testrun', 'programming', 'maglev', 'memory'] as const;
export type ScenarioId = (typeof SCENARIOS)[number];

export interface Profile {
  quick: boolean;
  /** Longest a baseline tool may take to load one point's rules (then it is stopped: a lower bound). */
  applyBudgetMs: number;
  /** Scenario 1: Services loaded. */
  connServices: number[];
  /** Seconds per load-generator run. */
  pointSeconds: number;
  /** Scenario 1: runs per point; the best is kept (other load on the machine only slows runs down). */
  rounds: number;
  /** Parallel connect loops. */
  parallel: number;
  /** Endpoints of the target Service (one backend pod with a sink each). */
  targetEndpoints: number;
  /** Scenario 2: flows of the UDP flood. */
  udpFlows: number;
  /** Scenario 3: Services loaded and BPF_PROG_TEST_RUN repeat. */
  testRunServices: number[];
  testRunRepeat: number;
  /** Scenario 4: Services × endpoints. */
  programmingServices: number[];
  programmingEndpoints: number;
  /** Scenario 5. */
  maglevSizes: number[];
  maglevBackends: number[];
  maglevRuns: number;
  /** Scenario 6. */
  memoryServices: number[];
  memoryEndpoints: number;
}

export function profile(quick: boolean): Profile {
  const common = { targetEndpoints: 2, parallel: 8, udpFlows: 16, maglevSizes: [16381, 65537], maglevBackends: [10, 100, 1000], programmingEndpoints: 10, memoryEndpoints: 10 };
  return quick
    ? {
        ...common,
        quick,
        applyBudgetMs: 15_000,
        connServices: [1, 1000],
        pointSeconds: 1,
        rounds: 1,
        testRunServices: [1, 10_000],
        testRunRepeat: 100_000,
        programmingServices: [300],
        maglevRuns: 3,
        memoryServices: [1000],
      }
    : {
        ...common,
        quick,
        applyBudgetMs: 60_000,
        connServices: [1, 1000, 10_000, 30_000],
        pointSeconds: 3,
        rounds: 2,
        testRunServices: [1, 10_000],
        testRunRepeat: 1_000_000,
        programmingServices: [1000, 10_000, 30_000],
        maglevRuns: 20,
        memoryServices: [10_000, 30_000],
      };
}
