/**
 * Packet-test harness: a datapath loaded into a private bpffs mount, test runs inside a private
 * network namespace (so FIB lookups see no routes but the ones a test makes), services written
 * through the ABI codecs in the control plane's order, and byte-exact packet expectations.
 * Everything a test creates is removed in t.teardown, pass or fail.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test, { type ExecutionContext, type TestFn } from 'ava';

import { native, type TestRunResult } from '../../ts/addon/index.js';
import {
  BackendFlags, DropReason, IPPROTO, SvcKind, SvcScope, type DatapathConfig, type Backend4, type Svc4Value,
} from '../../ts/abi/index.js';
import { loadDatapath, type Datapath, type DatapathProgramKey } from '../../ts/dataplane/loader.js';
import { sumPerCpu } from '../../ts/dataplane/typed-map.js';
import { buildPacket, checksumProblems, parsePacket, type PacketSpec } from '../../ts/packet/index.js';

/** Tests that need root and BPF: they run as root, and with CI=true they run (and fail) anyway. */
export const rootTest: TestFn = process.getuid?.() === 0 || process.env.CI === 'true' ? test : (test.skip as unknown as TestFn);

export const TC = { OK: 0, SHOT: 2, REDIRECT: 7 } as const;
export const XDP = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;

export { HAIRPIN, NET, defaultConfig } from './_net.js';
import { NET, defaultConfig } from './_net.js';

let seq = 0;
const unique = () => `${process.pid}-${Date.now().toString(36)}-${seq++}`;

export interface Env {
  dp: Datapath;
  netns: string;
  /** Runs a program on a frame inside the test's network namespace. */
  run(prog: DatapathProgramKey, data: Buffer, opts?: { repeat?: number; ctx?: Buffer }): TestRunResult;
  /** Runs the program on the frame built from spec and returns verdict and parsed output. */
  send(prog: DatapathProgramKey, spec: PacketSpec): { verdict: number; out: Buffer };
}

/** A datapath of its own for one test: bpffs mount, netns, load; all undone in teardown. */
export async function setup(t: ExecutionContext, config: DatapathConfig = {}, mapSizes?: Parameters<typeof loadDatapath>[0]['mapSizes']): Promise<Env> {
  const pinDir = mkdtempSync(join(tmpdir(), 'bpfproxy-dp-'));
  const netnsName = `bpfp-dp-${unique()}`;
  let mounted = false;
  let nsMade = false;
  let dp: Datapath | undefined;
  t.teardown(() => {
    dp?.close();
    if (mounted) execFileSync('umount', [pinDir]);
    rmSync(pinDir, { recursive: true, force: true });
    if (nsMade) execFileSync('ip', ['netns', 'del', netnsName]);
  });
  execFileSync('mount', ['-t', 'bpf', 'bpf', pinDir]);
  mounted = true;
  execFileSync('ip', ['netns', 'add', netnsName]);
  nsMade = true;
  dp = await loadDatapath({ pinDir, config: { ...defaultConfig, ...config }, ...(mapSizes ? { mapSizes } : {}) });
  const netns = `/run/netns/${netnsName}`;
  const d = dp;
  const run: Env['run'] = (prog, data, opts = {}) =>
    native.netnsRun(netns, () => d.programs[prog].testRun({ data, ...opts }));
  return {
    dp: d,
    netns,
    run,
    send(prog, spec) {
      const r = run(prog, buildPacket(spec));
      return { verdict: r.retval, out: r.data };
    },
  };
}

export interface BackendDef {
  id: number;
  addr: string;
  port: number;
  proto?: number;
  local?: boolean;
  terminating?: boolean;
}

export interface ServiceDef {
  svcId: number;
  addr: string;
  port: number;
  proto?: number;
  kind?: number;
  flags?: number;
  affinityTimeout?: number;
  /** Backend ids of scope ALL, in slot order. */
  backends: number[];
  /** Backend ids of scope LOCAL, in slot order. */
  localBackends?: number[];
}

export function writeBackend(dp: Datapath, be: BackendDef): void {
  const value: Backend4 = {
    addr: be.addr,
    port: be.port,
    proto: be.proto ?? IPPROTO.TCP,
    flags: (be.local ? BackendFlags.LOCAL : 0) | (be.terminating ? BackendFlags.TERMINATING : 0),
  };
  dp.maps.backends.set(be.id, value);
}

/** Slots first, the master last: the control plane's order, so no packet sees a half service. */
export function writeService(dp: Datapath, svc: ServiceDef): void {
  const proto = svc.proto ?? IPPROTO.TCP;
  const key = { addr: svc.addr, port: svc.port, proto, scope: SvcScope.ALL, backend_slot: 0, pad: 0 };
  const slot = { svc_id: svc.svcId, affinity_timeout: 0, count: 0, local_count: 0, flags: 0, kind: 0, pad: 0 };
  svc.backends.forEach((id, i) => dp.maps.svc4.set({ ...key, backend_slot: i + 1 }, { ...slot, backend_id: id }));
  (svc.localBackends ?? []).forEach((id, i) =>
    dp.maps.svc4.set({ ...key, scope: SvcScope.LOCAL, backend_slot: i + 1 }, { ...slot, backend_id: id }));
  const master: Svc4Value = {
    backend_id: 0,
    svc_id: svc.svcId,
    affinity_timeout: svc.affinityTimeout ?? 0,
    count: svc.backends.length,
    local_count: svc.localBackends?.length ?? 0,
    flags: svc.flags ?? 0,
    kind: svc.kind ?? SvcKind.CLUSTER_IP,
    pad: 0,
  };
  dp.maps.svc4.set(key, master);
}

export function drops(dp: Datapath, reason: DropReason): bigint {
  return sumPerCpu(dp.maps.drops.getPerCpu(reason))?.packets ?? 0n;
}

export function fragStat(dp: Datapath, stat: number): bigint {
  return sumPerCpu(dp.maps.fragstat.getPerCpu(stat))?.packets ?? 0n;
}

export function svcStats(dp: Datapath, svcId: number) {
  return sumPerCpu(dp.maps.svcstat.getPerCpu(svcId));
}

/**
 * The output frame must be exactly the frame built from `expected` (the builder computes every
 * length and checksum), and its checksums must verify. The parsed comparison comes first so that a
 * failure shows which field differs.
 */
export function expectPacket(t: ExecutionContext, out: Buffer, expected: PacketSpec, what = 'packet out'): void {
  const want = buildPacket(expected);
  t.deepEqual(parsePacket(out), parsePacket(want), `${what}: fields`);
  t.deepEqual(checksumProblems(out), [], `${what}: checksums`);
  t.true(out.equals(want), `${what}: bytes`);
}

/** Runs `count` new flows (distinct client ports) and returns the backend address each got. */
export function spread(env: Env, prog: DatapathProgramKey, spec: (sport: number) => PacketSpec, count: number, firstPort = 20000): string[] {
  const seen: string[] = [];
  for (let i = 0; i < count; i++) {
    const { out } = env.send(prog, spec(firstPort + i));
    seen.push(parsePacket(out).ip!.dst);
  }
  return seen;
}
