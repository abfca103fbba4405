/**
 * For the cleanup tests: an agent node (test/agent/_fixture.ts: its own namespace, private bpffs,
 * the real `bpfproxy agent` process) with pods and a service device routed to; `bpfproxy cleanup`
 * run as the real command inside the node's namespace; and the kernel's view of what is attached,
 * read with the tools an operator would use (ip, tc, bpftool) — never through cleanup's own code.
 */
import type { ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { AgentNode } from '../agent/_fixture.js';

import { native } from '../../ts/addon/index.js';
import type { CleanupReport } from '../../ts/cleanup/remove.js';
import { run } from '../../ts/util/exec.js';

const BIN = resolve('bin/bpfproxy.js');
export const SERVICE_ROUTE = '198.19.0.0/17';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `bpfproxy cleanup ARGS` inside the node's namespace, as an operator would run it on the node. */
export function cleanupCli(node: AgentNode, args: string[]): Promise<CliResult> {
  return new Promise((res) => {
    execFile('ip', ['netns', 'exec', node.ns.name, process.execPath, BIN, 'cleanup', '--config', node.configPath, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

/** Runs cleanup with --json, expects exit 0, returns the report. */
export async function cleanupJson(t: ExecutionContext, node: AgentNode, args: string[] = []): Promise<CleanupReport> {
  const r = await cleanupCli(node, ['--json', ...args]);
  t.is(r.code, 0, `cleanup ${args.join(' ')} failed:\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout) as CleanupReport;
}

/** A node with the agent's config naming svc0 as its service device, which the agent creates and routes the service range to. */
export async function nodeWithServiceDevice(t: ExecutionContext, pods: string[], config: Record<string, unknown> = {}): Promise<AgentNode> {
  const node = await AgentNode.create(t, { pods, config: { serviceInterface: 'svc0', serviceCIDRs: [SERVICE_ROUTE], ...config } });
  // Whatever a test leaves pinned goes before the bpffs is unmounted (cleanups run in reverse).
  node.s.cleanup.add('pins', () => rmSync(node.bpffsDir, { recursive: true, force: true }));
  return node;
}

/** The agent's links, read from its pins: id → program id, by pin name. */
export function pinnedLinks(bpffsDir: string): Map<string, { id: number; progId: number }> {
  const out = new Map<string, { id: number; progId: number }>();
  const dir = join(bpffsDir, 'links');
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const l = native.BpfLink.fromPin(join(dir, name));
    out.set(name, { id: l.info.id, progId: l.info.progId });
    l.close();
  }
  return out;
}

interface IpLink {
  ifname: string;
  ifindex: number;
  xdp?: { prog?: { id: number; name?: string }; attached?: { prog?: { id: number; name?: string } }[] };
}

export async function links(node: AgentNode): Promise<IpLink[]> {
  return JSON.parse(await node.ns.exec('ip', ['-j', '-d', 'link', 'show'])) as IpLink[];
}

/** The XDP program on an interface, as `ip link` shows it. */
export async function xdpProgram(node: AgentNode, ifname: string): Promise<{ id: number; name?: string } | undefined> {
  const l = (await links(node)).find((x) => x.ifname === ifname);
  return l?.xdp?.prog ?? l?.xdp?.attached?.[0]?.prog;
}

/** `tc filter show` of one hook, as text. */
export function tcFilters(node: AgentNode, dev: string, dir: 'ingress' | 'egress'): Promise<string> {
  return node.ns.exec('tc', ['filter', 'show', 'dev', dev, dir]);
}

/**
 * Where a link (by id) is attached now: iproute2 and bpftool here predate tcx, so the link is
 * pinned for a moment by id (bpftool) and its info read (ifindex 0: detached). Undefined when the
 * link no longer exists at all.
 */
export async function linkAttachment(bpffsRoot: string, id: number): Promise<{ ifindex: number; progId: number } | undefined> {
  const pin = join(bpffsRoot, `test_inspect_${id}`);
  try {
    await run('bpftool', ['link', 'pin', 'id', String(id), pin]);
  } catch {
    return undefined;
  }
  try {
    const l = native.BpfLink.fromPin(pin);
    const r = { ifindex: l.info.ifindex ?? 0, progId: l.info.progId };
    l.close();
    return r;
  } finally {
    rmSync(pin, { force: true });
  }
}

/** Ids of every BPF link on the machine whose program is one of these. */
export async function linksOfPrograms(progIds: Set<number>): Promise<number[]> {
  const all = JSON.parse(await run('bpftool', ['-j', 'link', 'show'])) as { id: number; prog_id: number }[];
  return all.filter((l) => progIds.has(l.prog_id)).map((l) => l.id);
}

/** Programs by id that still exist (the kernel frees a program once nothing holds it). */
export async function existingPrograms(ids: Set<number>): Promise<number[]> {
  const all = JSON.parse(await run('bpftool', ['-j', 'prog', 'show'])) as { id: number }[];
  return all.filter((p) => ids.has(p.id)).map((p) => p.id);
}

