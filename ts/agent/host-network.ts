/**
 * The agent's view of its own network namespace, through iproute2's JSON output (netlink, in the
 * namespace the agent runs in; /sys/class/net would show the namespace that mounted sysfs, which
 * is not ours under `nsenter --net`): interfaces, the default route's device, an interface's
 * addresses, and a stream of link changes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

import { run } from '../util/exec.js';

export interface HostInterface {
  name: string;
  ifindex: number;
  /** linkinfo kind: 'veth', 'dummy', … ('' for physical devices and loopback). */
  kind: string;
  up: boolean;
}

interface IpLink {
  ifname: string;
  ifindex: number;
  flags?: string[];
  linkinfo?: { info_kind?: string };
}

export async function listInterfaces(): Promise<HostInterface[]> {
  const links = JSON.parse(await run('ip', ['-j', '-d', 'link', 'show'])) as IpLink[];
  return links.map((l) => ({ name: l.ifname, ifindex: l.ifindex, kind: l.linkinfo?.info_kind ?? '', up: (l.flags ?? []).includes('UP') }));
}

/** The device of the IPv4 default route, or undefined when there is none. */
export async function defaultRouteInterface(): Promise<string | undefined> {
  const routes = JSON.parse(await run('ip', ['-j', '-4', 'route', 'show', 'default'])) as { dev?: string }[];
  return routes.find((r) => r.dev)?.dev;
}

/** The IPv4 addresses of an interface, primary first (secondaries and deprecated ones after). */
export async function interfaceAddresses(ifname: string): Promise<string[]> {
  const out = JSON.parse(await run('ip', ['-j', '-4', 'addr', 'show', 'dev', ifname])) as {
    addr_info?: { family: string; local: string; secondary?: boolean; scope?: string }[];
  }[];
  const infos = (out[0]?.addr_info ?? []).filter((a) => a.family === 'inet' && a.scope !== 'host');
  return [...infos.filter((a) => !a.secondary), ...infos.filter((a) => a.secondary)].map((a) => a.local);
}

/**
 * `ip monitor link`: calls `onChange` for every link event (added, removed, up, down). Restarted
 * if it dies, at most once a second; the periodic rescan covers any gap.
 */
export class LinkMonitor {
  private child: ChildProcess | undefined;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly onChange: () => void,
    private readonly onError: (message: string) => void = () => {},
  ) {}

  start(): void {
    if (this.stopped) return;
    const child = spawn('ip', ['-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    createInterface({ input: child.stdout }).on('line', () => this.onChange());
    child.on('error', (e) => this.onError(`ip monitor link: ${e.message}`));
    child.on('exit', (code, signal) => {
      this.child = undefined;
      if (this.stopped) return;
      this.onError(`ip monitor link exited (${signal ?? code}); restarting`);
      this.restartTimer = setTimeout(() => this.start(), 1000);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.child?.kill('SIGTERM');
    this.child = undefined;
  }
}
