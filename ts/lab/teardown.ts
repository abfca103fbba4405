/**
 * Removing a lab, from its state alone (so `bpfproxy lab down` works from any process, and a
 * half-built lab goes the same way as a whole one): stop the agents and the pods' servers, stop any
 * other process still inside one of the lab's namespaces (a `lab exec`, a streaming client), unpin
 * everything on the lab's bpffs and unmount it, delete every namespace whose name carries the lab's
 * run id, then forget the state. Every step runs even when an earlier one fails.
 */
import { run } from '../util/exec.js';
import { removeLabBpffs } from './net/lab-bpffs.js';
import { processStartTime, stopProcess } from './hostname-process.js';
import type { LabState } from './lab-state.js';
import { removeLabState } from './lab-state.js';
import { netnsPrefix } from './net/naming.js';

export async function listNetns(): Promise<string[]> {
  const out = await run('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.length > 0);
}

/** Namespaces of lab `id` that exist now, including ones the state never recorded (a crash mid-up). */
export async function labNetns(id: string): Promise<string[]> {
  const prefix = netnsPrefix(id);
  return (await listNetns()).filter((n) => n.startsWith(prefix));
}

/** Pids of processes whose network namespace is `netns`. */
export async function pidsIn(netns: string): Promise<number[]> {
  const out = await run('ip', ['netns', 'pids', netns]);
  return out
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0 && n !== process.pid);
}

export async function teardownLab(state: LabState): Promise<void> {
  const errors: string[] = [];
  const attempt = async (what: string, step: () => Promise<void>) => {
    try {
      await step();
    } catch (e) {
      errors.push(`${what}: ${(e as Error).message}`);
    }
  };

  // Agents first, so that none re-attaches or re-pins while the rest goes.
  await Promise.all((state.agents ?? []).map((a) => attempt(`stop agent of ${a.node}`, () => stopProcess(a))));
  await Promise.all(state.pods.map((pod) => attempt(`stop server of pod ${pod.name}`, () => stopProcess(pod.server))));

  const recorded = [state.fabric.netns, ...state.nodes.map((n) => n.netns), ...state.clients.map((c) => c.netns), ...state.pods.map((p) => p.netns)];
  let namespaces = recorded;
  await attempt('list namespaces', async () => {
    namespaces = [...new Set([...recorded, ...(await labNetns(state.id))])];
  });
  const existing = new Set(await listNetns().catch(() => namespaces));

  for (const ns of namespaces.filter((n) => existing.has(n))) {
    await attempt(`stop processes in ${ns}`, async () => {
      const pids = await pidsIn(ns);
      await Promise.all(
        pids.map(async (pid) => {
          const startTime = processStartTime(pid);
          if (startTime !== undefined) await stopProcess({ pid, startTime });
        }),
      );
    });
  }
  // Unpinning detaches every program and frees every map of the lab (no process holds them now).
  if (state.bpffs) {
    const bpffs = state.bpffs;
    await attempt(`remove bpffs ${bpffs}`, async () => removeLabBpffs(bpffs));
  }
  // Pods first, then nodes and clients, then the fabric: the reverse of the order they were made in.
  for (const ns of [...namespaces].reverse().filter((n) => existing.has(n))) {
    await attempt(`delete namespace ${ns}`, async () => {
      await run('ip', ['netns', 'delete', ns]);
    });
  }
  await attempt('remove state', async () => removeLabState(state));
  if (errors.length > 0) throw new Error(`lab ${state.name} teardown:\n  ${errors.join('\n  ')}`);
}
