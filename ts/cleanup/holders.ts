/**
 * Is an agent still using this datapath? Processes holding its maps, links or programs (found in
 * /proc/PID/fdinfo, by kernel object id), and the agent's metrics address asked for /proxyMode.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';

import { splitBindAddress } from '../agent/config.js';

/** Where the agent's objects are: the agent's own configuration (ts/agent/config.ts) decides. */
export interface CleanupTarget {
  /** The agent's bpffsDir. */
  pinDir: string;
  /** The agent's serviceInterface ('' = none). */
  serviceInterface: string;
  /** The agent's metricsBindAddress ('' = off): asked for /proxyMode to spot a live agent. */
  metricsBindAddress: string;
}

export interface Holder {
  pid: number;
  command: string;
  maps: number;
  links: number;
  programs: number;
}

export interface AgentEvidence {
  running: boolean;
  /** Why we think an agent runs (empty when none does). */
  reasons: string[];
  /** Processes holding this datapath's maps, links or programs. */
  holders: Holder[];
}

export class AgentRunningError extends Error {
  constructor(
    readonly evidence: AgentEvidence,
    pinDir: string,
  ) {
    super(`a bpfproxy agent is running for ${pinDir}: ${evidence.reasons.join('; ')}. Stop it first (or pass --force)`);
    this.name = 'AgentRunningError';
  }
}

function fdinfoId(text: string, key: string): number | undefined {
  const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Processes (of this PID namespace, but ourselves) holding fds of these maps, links or programs. */
export function findHolders(mapIds: Set<number>, linkIds: Set<number>, progIds: Set<number>): Holder[] {
  const holders: Holder[] = [];
  if (mapIds.size + linkIds.size + progIds.size === 0) return holders;
  for (const pidName of readdirSync('/proc')) {
    if (!/^\d+$/.test(pidName) || Number(pidName) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pidName}/fd`);
    } catch {
      continue; // gone, or a kernel thread
    }
    const h: Holder = { pid: Number(pidName), command: '', maps: 0, links: 0, programs: 0 };
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pidName}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!target.startsWith('anon_inode:bpf')) continue;
      let info: string;
      try {
        info = readFileSync(`/proc/${pidName}/fdinfo/${fd}`, 'utf8');
      } catch {
        continue;
      }
      if (target === 'anon_inode:bpf-map' && mapIds.has(fdinfoId(info, 'map_id') ?? -1)) h.maps++;
      // The kernel names link files bpf_link (maps and programs: bpf-map, bpf-prog).
      else if ((target === 'anon_inode:bpf_link' || target === 'anon_inode:bpf-link') && (linkIds.has(fdinfoId(info, 'link_id') ?? -1) || progIds.has(fdinfoId(info, 'prog_id') ?? -1))) h.links++;
      else if (target === 'anon_inode:bpf-prog' && progIds.has(fdinfoId(info, 'prog_id') ?? -1)) h.programs++;
    }
    if (h.maps + h.links + h.programs === 0) continue;
    try {
      h.command = readFileSync(`/proc/${pidName}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    } catch {
      h.command = '?';
    }
    holders.push(h);
  }
  return holders;
}

/** GET /proxyMode on the agent's metrics address: bpfproxy answers 'bpfproxy', kube-proxy its mode. */
function askProxyMode(bindAddress: string): Promise<string | undefined> {
  let parsed: { host: string; port: number };
  try {
    parsed = splitBindAddress(bindAddress, 'metricsBindAddress'); // the agent's own parse ('' = off)
  } catch {
    return Promise.resolve(undefined);
  }
  const port = parsed.port;
  if (port <= 0) return Promise.resolve(undefined);
  let host = parsed.host.replace(/^\[|\]$/g, '');
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/proxyMode', timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/**
 * Is an agent using this datapath? Two signs, either is enough:
 *
 *   1. A process holds one of its links or programs (found through /proc/PID/fdinfo, matched by
 *      kernel object id). Only a process that attaches holds those — the agent — while `bpfproxy
 *      services`/`explain` or bpftool hold maps only (reported, not refused). This is the reliable
 *      sign: it names this very datapath whatever ports, namespaces or config the agent runs with,
 *      and it cannot be stale the way a pid or lock file can. Its limit: processes of other PID
 *      namespaces are not in our /proc (run cleanup with the host's PID namespace).
 *   2. The metrics address of the configuration answers /proxyMode with 'bpfproxy': an agent in
 *      another PID namespace (a container), in this network namespace. The healthz port would not
 *      do: kube-proxy answers it the same way, and it may already be back on the node.
 */
export async function findLiveAgent(target: CleanupTarget, inv: { mapIds: Map<string, number>; linkIds: Set<number>; programIds: Set<number> }): Promise<AgentEvidence> {
  const holders = findHolders(new Set(inv.mapIds.values()), inv.linkIds, inv.programIds);
  const reasons: string[] = [];
  for (const h of holders.filter((x) => x.links + x.programs > 0)) {
    reasons.push(`pid ${h.pid} (${h.command.slice(0, 120)}) holds ${h.links} of its links and ${h.programs} of its programs`);
  }
  const mode = await askProxyMode(target.metricsBindAddress);
  if (mode === 'bpfproxy') reasons.push(`${target.metricsBindAddress} answers /proxyMode with '${mode}'`);
  return { running: reasons.length > 0, reasons, holders };
}
