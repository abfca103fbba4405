/**
 * Network namespaces and veth links for the lab, tests and benchmarks. Everything made here is
 * recorded in an UndoStack so that it is removed in reverse order even when the caller fails.
 * Nothing here touches the root namespace: veth pairs are created directly inside their
 * namespaces (`ip link add … netns A peer … netns B`).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';

import { run, runSync } from '../../util/exec.js';
import type { UndoStack } from '../../util/undo-stack.js';

/** A short id, unique enough that parallel runs never collide (namespace and link names are short). */
export function runId(): string {
  return randomBytes(3).toString('hex');
}

export class Netns {
  private constructor(readonly name: string) {}

  /** The namespace file, for setns(2) (native.netnsRun) or `nsenter --net=`. */
  get path(): string {
    return `/run/netns/${this.name}`;
  }

  /** Creates the namespace with loopback up; `cleanup` deletes it. */
  static async create(name: string, cleanup: UndoStack): Promise<Netns> {
    if (name.length > 32) throw new Error(`namespace name '${name}' is too long`);
    await run('ip', ['netns', 'add', name]);
    const ns = new Netns(name);
    cleanup.add(`netns ${name}`, () => ns.deleteSync());
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** A namespace that exists already (made by another process). */
  static existing(name: string): Netns {
    if (!existsSync(`/run/netns/${name}`)) throw new Error(`no network namespace '${name}'`);
    return new Netns(name);
  }

  /** `ip -n NAME …` */
  ip(...args: string[]): Promise<string> {
    return run('ip', ['-n', this.name, ...args]);
  }

  /** Several `ip` commands in one process (`ip -n NAME -batch -`); stops at the first that fails. */
  ipBatch(lines: string[]): Promise<string> {
    return run('ip', ['-n', this.name, '-batch', '-'], { input: lines.join('\n') + '\n' });
  }

  /** Runs a host command inside the namespace. */
  exec(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** Writes a sysctl inside the namespace (net.* sysctls are per namespace). */
  sysctl(key: string, value: string | number): Promise<string> {
    return this.exec('sysctl', ['-qw', `${key}=${value}`]);
  }

  deleteSync(): void {
    if (existsSync(this.path)) runSync('ip', ['netns', 'delete', this.name]);
  }
}

export interface VethEnd {
  ns: Netns;
  name: string;
  /** Address with prefix, such as 198.18.0.11/24. */
  address?: string;
  mac?: string;
}

/**
 * A veth pair between two namespaces, both ends up. Deleting either namespace removes the pair,
 * so the pair needs no cleanup of its own.
 */
export async function vethPair(a: VethEnd, b: VethEnd): Promise<void> {
  if (a.name.length > 15 || b.name.length > 15) throw new Error(`interface names are at most 15 characters: ${a.name}, ${b.name}`);
  await run('ip', [
    'link', 'add', a.name, 'netns', a.ns.name, ...(a.mac ? ['address', a.mac] : []),
    'type', 'veth', 'peer', 'name', b.name, 'netns', b.ns.name, ...(b.mac ? ['address', b.mac] : []),
  ]);
  for (const end of [a, b]) {
    if (end.address) await end.ns.ip('addr', 'add', end.address, 'dev', end.name);
    await end.ns.ip('link', 'set', end.name, 'up');
  }
}

/** The MAC address of an interface inside a namespace. */
export async function macOf(ns: Netns, ifname: string): Promise<string> {
  const out = JSON.parse(await ns.ip('-j', 'link', 'show', 'dev', ifname)) as { address: string }[];
  const mac = out[0]?.address;
  if (!mac) throw new Error(`no interface ${ifname} in namespace ${ns.name}`);
  return mac;
}
