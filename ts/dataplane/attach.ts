/**
 * Attaches a loaded node datapath (loader.ts) to the node's interfaces, inside the node's network
 * namespace (native.netnsRun, so that interface names and ifindexes resolve there):
 *
 *   - tcx ingress + egress (tc_pod_ingress / tc_pod_egress) on the host side of every pod veth;
 *   - tcx ingress (tc_uplink_ingress) and egress (tc_uplink_egress: replies of this node's
 *     hostNetwork endpoints to outside clients) on each uplink (a node with two NICs has two);
 *   - tcx egress (tc_lo_egress) on lo: the node's own connections to its own NodePorts, and its
 *     hostNetwork endpoints answering the node's own service connections (bpf/lib/hooks_node.h);
 *   - XDP (xdp_uplink) on each uplink, in the mode asked for, or not at all;
 *   - tcx egress (tc_host_egress) on the service device, when one is named: the device the node
 *     routes the Service and external ranges to, so that its own traffic to them is translated.
 *
 * Every link is pinned under `<pinDir>/links/` (`<ifname>_<hook>`: bpffs refuses names with a dot), so the programs stay attached
 * when this process exits. A pin that exists already (a previous agent's) is adopted and its program
 * replaced atomically through the link, so an agent restart never leaves an interface bare.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { native, type BpfLinkNative, type BpfProgramNative, type XdpMode } from '../addon/index.js';
import type { Datapath } from './loader.js';

/** The loopback device, the same name in every network namespace. */
export const LOOPBACK = 'lo';

export type UplinkXdpMode = XdpMode | 'off';

export interface AttachOptions {
  /** The node's network namespace file (/run/netns/NAME). */
  netnsPath: string;
  /** The node's uplink (default eth0), or its uplinks: the uplink programs go on each. */
  uplink?: string | readonly string[];
  /** Host-side interfaces of the pods present now. */
  podInterfaces?: readonly string[];
  /**
   * XDP on the uplink (default 'generic'). Native XDP on a veth uplink (the lab) breaks XDP_TX and
   * XDP_REDIRECT unless the peer also runs XDP or has GRO on; 'off' leaves the uplink to tc alone.
   */
  xdpMode?: UplinkXdpMode;
  /**
   * The device the node routes service addresses to (the lab's svc0): its egress translates the
   * node's own traffic to ClusterIPs and the like. Not given: host-originated traffic is untouched.
   */
  serviceDevice?: string;
}

export type Hook = 'ingress' | 'egress' | 'xdp';

export interface AttachedLink {
  ifname: string;
  hook: Hook;
  pin: string;
  link: BpfLinkNative;
}

export interface AttachedDatapath {
  readonly linksDir: string;
  /** What is attached now, by pin path. */
  links(): readonly AttachedLink[];
  /** tcx ingress + egress on a pod's host-side veth (a pod added after attach). */
  attachPod(ifname: string): void;
  /** Detaches and unpins a pod's programs; quiet if the interface is already gone. */
  detachPod(ifname: string): void;
  /** Detaches and unpins everything attached through this handle. */
  detachAll(): void;
  /** Releases this process's handles; pinned links keep the programs attached. */
  close(): void;
}

/** The name a link is pinned by under `<pinDir>/links/`. */
export function linkPinName(ifname: string, hook: Hook): string {
  return `${ifname}_${hook}`;
}

function pinPathOf(linksDir: string, ifname: string, hook: Hook): string {
  return join(linksDir, linkPinName(ifname, hook));
}

export function attachDatapath(dp: Datapath, opts: AttachOptions): AttachedDatapath {
  const uplinks = typeof opts.uplink === 'string' ? [opts.uplink] : opts.uplink?.length ? opts.uplink : ['eth0'];
  const xdpMode = opts.xdpMode ?? 'generic';
  const linksDir = join(dp.pinDir, 'links');
  mkdirSync(linksDir, { recursive: true });
  const attached = new Map<string, AttachedLink>();

  const attachOne = (ifname: string, hook: Hook, program: BpfProgramNative): void => {
    const pin = pinPathOf(linksDir, ifname, hook);
    if (attached.has(pin)) return;
    // Attach inside the namespace (ifindexes are per namespace); pin outside it (bpf_obj_pin is
    // refused with EPERM from inside another network namespace).
    const found = native.netnsRun(opts.netnsPath, () => {
      const ifindex = native.ifNameToIndex(ifname);
      if (existsSync(pin)) {
        // A previous agent's link: take it over and swap the program in, atomically.
        const old = native.BpfLink.fromPin(pin);
        if (old.info.ifindex === ifindex) {
          old.update(program);
          return { link: old, adopted: true };
        }
        // The pin names an interface that is gone (or another of the same name): replace it.
        old.close();
        rmSync(pin, { force: true });
      }
      const l = hook === 'xdp' ? native.BpfLink.attachXdp(program, ifindex, xdpMode as XdpMode) : native.BpfLink.attachTcx(program, ifindex, hook);
      return { link: l, adopted: false };
    });
    const link = found.link;
    if (!found.adopted) {
      try {
        link.pin(pin);
      } catch (e) {
        link.detach();
        link.close();
        throw e;
      }
    }
    attached.set(pin, { ifname, hook, pin, link });
  };

  const detachOne = (pin: string): void => {
    const a = attached.get(pin);
    if (a) {
      try {
        a.link.detach();
      } catch {
        // the interface is gone, and the kernel detached the link with it
      }
      a.link.close();
      attached.delete(pin);
    }
    rmSync(pin, { force: true });
  };

  const attachPod = (ifname: string): void => {
    attachOne(ifname, 'ingress', dp.programs.tcPodIngress);
    try {
      attachOne(ifname, 'egress', dp.programs.tcPodEgress);
    } catch (e) {
      detachOne(pinPathOf(linksDir, ifname, 'ingress'));
      throw e;
    }
  };

  const handle: AttachedDatapath = {
    linksDir,
    links: () => [...attached.values()],
    attachPod,
    detachPod(ifname) {
      detachOne(pinPathOf(linksDir, ifname, 'ingress'));
      detachOne(pinPathOf(linksDir, ifname, 'egress'));
    },
    detachAll() {
      for (const pin of [...attached.keys()].reverse()) detachOne(pin);
    },
    close() {
      for (const a of attached.values()) a.link.close();
      attached.clear();
    },
  };

  try {
    // Pods first, then the uplink: a translated packet's reply path exists before any forward path.
    for (const ifname of opts.podInterfaces ?? []) attachPod(ifname);
    for (const uplink of uplinks) {
      attachOne(uplink, 'ingress', dp.programs.tcUplinkIngress);
      attachOne(uplink, 'egress', dp.programs.tcUplinkEgress);
      if (xdpMode !== 'off') attachOne(uplink, 'xdp', dp.programs.xdpUplink);
    }
    attachOne(LOOPBACK, 'egress', dp.programs.tcLoEgress);
    if (opts.serviceDevice !== undefined) attachOne(opts.serviceDevice, 'egress', dp.programs.tcHostEgress);
  } catch (e) {
    handle.detachAll();
    throw e;
  }
  return handle;
}
