/**
 * Which cluster the end-to-end specs run against: BPFPROXY_E2E_KUBECONFIG names an existing cluster
 * (kind, via hack/kind-e2e.sh), otherwise a lab in --api kube mode is brought up in this process.
 * Lab runs need root and the Kubernetes test binaries: under CI=true they always run (building the
 * binaries if missing), elsewhere they skip, saying why, when either is missing.
 */
import test, { type ExecutionContext } from 'ava';

import { findAssets } from '../../ts/kube/binaries.js';
import { isCI, isRoot } from '../helpers/env.js';
import type { Answer, ClusterDriver } from './_driver.js';
import { KubeconfigDriver } from './_kubeconfig-driver.js';
import { LabDriver } from './_lab-driver.js';

const kubeconfig = process.env.BPFPROXY_E2E_KUBECONFIG;
const runnable = kubeconfig !== undefined || isCI || (isRoot && findAssets() !== undefined);
if (!runnable) console.warn('test/e2e: skipped: needs root and the Kubernetes test binaries (hack/k8s-test-binaries.sh), or BPFPROXY_E2E_KUBECONFIG');

export const e2eTest = runnable ? test.serial : test.serial.skip;
export const e2eBefore = runnable ? test.before : test.before.skip;
export const e2eAfterAlways = runnable ? test.after.always : test.after.always.skip;

export async function startDriver(t: ExecutionContext): Promise<ClusterDriver> {
  if (kubeconfig) return KubeconfigDriver.start(kubeconfig);
  t.timeout(findAssets() ? 5 * 60_000 : 45 * 60_000, 'lab, control plane and agents (and maybe building the Kubernetes binaries)');
  return LabDriver.start((l) => t.log(l));
}

export function tally(answers: Answer[]): { byAnswer: Record<string, number>; byError: Record<string, number> } {
  const byAnswer: Record<string, number> = {};
  const byError: Record<string, number> = {};
  for (const a of answers) {
    if (a.ok) byAnswer[a.answer] = (byAnswer[a.answer] ?? 0) + 1;
    else byError[a.error] = (byError[a.error] ?? 0) + 1;
  }
  return { byAnswer, byError };
}

/** The distinct failure details (for messages). */
export function failures(answers: Answer[]): string[] {
  return [...new Set(answers.flatMap((a) => (a.ok ? [] : [`${a.error}${a.detail ? `: ${a.detail}` : ''}`])))];
}

/** All answered, each from one of `pods`: true, or what was wrong. */
export function allFrom(answers: Answer[], pods: readonly string[]): true | string {
  const t = tally(answers);
  const stray = Object.keys(t.byAnswer).filter((a) => !pods.includes(a));
  if (Object.keys(t.byError).length > 0 || stray.length > 0) return `${JSON.stringify(t)} ${failures(answers).join('; ')}`;
  return true;
}

/** None answered: every request failed (dropped or refused). */
export function noneAnswered(answers: Answer[]): true | string {
  return answers.every((a) => !a.ok) ? true : JSON.stringify(tally(answers));
}
