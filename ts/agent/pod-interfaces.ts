/**
 * Keeps the pod programs attached to exactly the host interfaces that are pods' veths: those whose
 * names match podInterfacePattern (never the uplink nor loopback). Rescanned on every link event
 * and periodically; new interfaces are attached, vanished ones detached, and an interface that
 * came back under the same name (a new ifindex) is attached again. Links pinned by a previous
 * agent for interfaces that are gone are unpinned, which releases them.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import type { AttachedDatapath } from '../dataplane/attach.js';
import { listInterfaces, type HostInterface } from './host-network.js';

export interface PodInterfacesOptions {
  pattern: RegExp;
  uplink: string;
  /** Other node devices the datapath is attached to (the service device): never pods. */
  nodeDevices?: readonly string[];
  onAttach?: (ifname: string) => void;
  onDetach?: (ifname: string) => void;
  onError?: (ifname: string, error: Error) => void;
}

export interface RescanResult {
  attached: string[];
  detached: string[];
  failed: string[];
}

export class PodInterfaces {
  /** ifname → ifindex at the time we attached. */
  private readonly current = new Map<string, number>();
  private running: Promise<RescanResult> | undefined;
  private again = false;

  constructor(
    private readonly attached: AttachedDatapath,
    private readonly opts: PodInterfacesOptions,
  ) {}

  isPodInterface(i: Pick<HostInterface, 'name'>): boolean {
    return i.name !== this.opts.uplink && i.name !== 'lo' && !this.opts.nodeDevices?.includes(i.name) && this.opts.pattern.test(i.name);
  }

  /** The pod interfaces attached now. */
  names(): string[] {
    return [...this.current.keys()].sort();
  }

  /** One rescan at a time; a request during one runs one more afterwards. */
  rescan(): Promise<RescanResult> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        let result = await this.rescanOnce();
        while (this.again) {
          this.again = false;
          const next = await this.rescanOnce();
          result = { attached: [...result.attached, ...next.attached], detached: [...result.detached, ...next.detached], failed: next.failed };
        }
        return result;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async rescanOnce(): Promise<RescanResult> {
    const result: RescanResult = { attached: [], detached: [], failed: [] };
    const present = new Map((await listInterfaces()).filter((i) => this.isPodInterface(i)).map((i) => [i.name, i.ifindex]));
    for (const [name, ifindex] of [...this.current]) {
      if (present.get(name) === ifindex) continue;
      this.attached.detachPod(name);
      this.current.delete(name);
      if (!present.has(name)) {
        result.detached.push(name);
        this.opts.onDetach?.(name);
      }
    }
    for (const [name, ifindex] of present) {
      if (this.current.has(name)) continue;
      try {
        this.attached.attachPod(name);
        this.current.set(name, ifindex);
        result.attached.push(name);
        this.opts.onAttach?.(name);
      } catch (e) {
        // The interface may have gone between the listing and the attach; the next scan decides.
        result.failed.push(name);
        this.opts.onError?.(name, e as Error);
      }
    }
    this.removeStalePins(present);
    return result;
  }

  /** Pins of pod links whose interface is no longer a pod interface (left by a previous agent). */
  private removeStalePins(present: Map<string, number>): void {
    let pins: string[];
    try {
      pins = readdirSync(this.attached.linksDir);
    } catch {
      return;
    }
    for (const pin of pins) {
      const m = /^(.+)_(ingress|egress|xdp)$/.exec(pin);
      if (!m) continue;
      const ifname = m[1]!;
      if (ifname === this.opts.uplink || this.opts.nodeDevices?.includes(ifname) || present.has(ifname)) continue;
      rmSync(join(this.attached.linksDir, pin), { force: true });
    }
  }
}
