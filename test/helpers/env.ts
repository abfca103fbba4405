/**
 * Which tests can run here. Tests that need root and BPF run whenever we are root, and always
 * under CI=true (where a missing privilege is a failure, never a skip).
 */
import test from 'ava';

export const isRoot = process.getuid?.() === 0;
export const isCI = process.env.CI === 'true';

/** `test` for tests that need root, BPF and network namespaces. */
export const privileged = isRoot || isCI ? test : test.skip;
export const privilegedSerial = isRoot || isCI ? test.serial : test.skip;
