/**
 * shellcheck on every shell script of the repository (hack/*.sh, .ci/run, and any other file with a
 * sh/bash shebang or a .sh name), all findings, style included. Under CI=true a missing shellcheck
 * fails (it is in hack/system-packages.txt); elsewhere the test says it skips.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';

import { isCI } from '../helpers/env.js';
import { REPO } from './_layout.js';

const exec = promisify(execFile);
/** Not ours, or not sources: vendored code, dependencies, build output. */
const SKIP = new Set(['.git', 'node_modules', 'build', 'dist', 'vendor']);

function scripts(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      const st = statSync(path);
      if (st.isDirectory()) return SKIP.has(name) ? [] : scripts(path);
      if (!st.isFile() || st.size > 1 << 20) return [];
      if (name.endsWith('.sh')) return [path];
      const head = readFileSync(path, 'utf8').slice(0, 100);
      return /^#!\s*(\/usr\/bin\/env\s+(bash|sh)|\/bin\/(ba)?sh)\b/.test(head) ? [path] : [];
    });
}

async function haveShellcheck(): Promise<string | undefined> {
  try {
    return (await exec('shellcheck', ['--version'])).stdout.match(/version: (\S+)/)?.[1] ?? 'unknown';
  } catch {
    return undefined;
  }
}

const version = await haveShellcheck();
if (!version && !isCI) console.warn('test/deploy: shellcheck skipped: shellcheck is not installed (apt-get install shellcheck)');
const shellcheckTest = version || isCI ? test : test.skip;

shellcheckTest('shellcheck finds nothing in any shell script', async (t) => {
  t.truthy(version, 'shellcheck is installed (hack/system-packages.txt)');
  const files = scripts(REPO).map((f) => relative(REPO, f));
  for (const expected of ['.ci/run', 'hack/build-base-image.sh', 'hack/docker-smoke.sh', 'hack/kind-e2e.sh', 'hack/k8s-test-binaries.sh']) {
    t.true(files.includes(expected), `${expected} is checked`);
  }
  t.log(`shellcheck ${version} on ${files.length} scripts: ${files.join(', ')}`);
  // -x follows `source`d files; gcc format gives file:line:col per finding.
  const result = await exec('shellcheck', ['-x', '--format=gcc', ...files], { cwd: REPO }).then(
    () => '',
    (e: { stdout?: string; message: string }) => e.stdout || e.message,
  );
  t.is(result, '', 'shellcheck findings');
});
