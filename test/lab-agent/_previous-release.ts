/**
 * The previous release (hack/previous-release.txt), built by hack/previous-release.sh into a cache
 * outside the clone, as an AgentRelease the lab can run on a node.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import type { AgentRelease } from '../../ts/lab/agents.js';

const script = fileURLToPath(new URL('../../hack/previous-release.sh', import.meta.url));

/**
 * The config fields that release reads (its ts/agent/config.ts KNOWN_KEYS); it refuses others.
 * Since then: `uplinkInterfaces` (it has the one `uplinkInterface`), `serviceCIDRs`, and
 * `serviceInterface` as the device the agent makes (the old lab made its own and gave none).
 */
const KNOWN_FIELDS = new Set([
  'apiVersion', 'kind', 'clusterCIDR', 'nodePortAddresses', 'masqueradeAll', 'syncPeriod', 'minSyncPeriod', 'conntrack',
  'hostnameOverride', 'healthzBindAddress', 'metricsBindAddress', 'clientConnection', 'apiServer', 'sourceDir', 'bpffsDir',
  'uplinkInterface', 'podInterfacePattern', 'xdpMode', 'maglevTableSize', 'snatPortRange', 'mapSizes',
]);

/** Builds it if the cache is cold (a `npm ci`: a minute or two) and says how to run it. */
export async function previousRelease(): Promise<AgentRelease & { dir: string }> {
  const { stdout } = await promisify(execFile)('bash', [script], { timeout: 900_000, maxBuffer: 64 << 20 });
  const dir = stdout.trim().split('\n').at(-1)!;
  return {
    name: 'previous',
    dir,
    cli: [join(dir, 'bin/bpfproxy.js')],
    config(ours) {
      const uplinks = ours.uplinkInterfaces as string[] | undefined;
      const theirs: Record<string, unknown> = { ...ours, ...(uplinks ? { uplinkInterface: uplinks[0] } : {}) };
      for (const k of Object.keys(theirs)) if (!KNOWN_FIELDS.has(k)) delete theirs[k];
      return theirs;
    },
  };
}
