/**
 * Short names (what users type: `node-1`, `client-1`, `hostnames-1`) and the real names of
 * namespaces and interfaces. Real namespace names carry the lab's run id so that parallel labs
 * never collide; interface names must fit IFNAMSIZ.
 */
import { createHash } from 'node:crypto';

/** Every namespace of lab `id` starts with this, which is also how a sweep finds leftovers. */
export function netnsPrefix(id: string): string {
  return `bpl-${id}-`;
}

/** Netns.create refuses longer names; a hash keeps long pod names unique within that limit. */
const MAX_NETNS_NAME = 32;
const MAX_IFNAME = 15;

export function realNetnsName(id: string, shortName: string): string {
  return fitWithHash(netnsPrefix(id), shortName, MAX_NETNS_NAME);
}

/** The node side of a pod's veth is named after the pod, shortened with a hash when too long. */
export function podHostInterface(podName: string): string {
  return fitWithHash('', podName, MAX_IFNAME);
}

export const nodeShortName = (k: number): string => `node-${k}`;
export const clientShortName = (i: number): string => `client-${i}`;
export const FABRIC = 'fabric';

/** A DNS-1123 label, like a Kubernetes pod name, that does not shadow a node, client or the fabric. */
export function checkPodName(name: string): void {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 63) {
    throw new Error(`pod name '${name}' is not a DNS-1123 label (lower-case letters, digits, '-', at most 63)`);
  }
  if (name === FABRIC || /^(node|client)-\d+$/.test(name)) {
    throw new Error(`pod name '${name}' is reserved for the lab's own namespaces`);
  }
}

/** Lab names become file names under /run/bpfproxy/labs. */
export function checkLabName(name: string): void {
  if (!/^[a-z0-9][-a-z0-9_]{0,39}$/.test(name)) {
    throw new Error(`lab name '${name}' must be 1–40 characters of a-z, 0-9, '-' and '_'`);
  }
}

function fitWithHash(prefix: string, name: string, max: number): string {
  if (prefix.length + name.length <= max) return prefix + name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 6);
  return `${prefix}${name.slice(0, max - prefix.length - hash.length - 1)}-${hash}`;
}
