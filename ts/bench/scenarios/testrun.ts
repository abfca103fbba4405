/**
 * Scenario 3: per-packet cost from BPF_PROG_TEST_RUN (the kernel's average over `repeat` runs) for
 * a new flow, an established flow and a packet of no service, with 1 and 10,000 Services loaded,
 * against programs that return at once (bench/empty.bpf.c) given the same packets.
 *
 * The method is test/datapath/_perf.ts's "repeat" mode (see its header): a repeated run keeps the
 * packet it rewrote, so the measured Service's backend is its own frontend (the translation is an
 * identity and every run takes the full path: lookups, pick, conntrack); "new flow" runs with a SYN
 * conntrack lifetime of 0, so that each run finds the previous entry expired and creates it again.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { DatapathConfig } from '../../abi/index.js';
import { native, type BpfProgramNative } from '../../addon/index.js';
import { loadDatapath, type Datapath, type DatapathProgramKey } from '../../dataplane/loader.js';
import { fillClusterIpServices } from '../fill-services.js';
import { runId } from '../../lab/net/netns.js';
import { buildPacket, type PacketSpec, type TcpFlagName } from '../../packet/index.js';
import type { Progress } from '../progress.js';
import type { Profile } from '../profile.js';
import type { TestRunPoint } from '../results.js';
import { readEmptyBpf, type BenchTools } from '../tools.js';

// The packet tests' address plan (test/datapath/_net.ts), RFC 2544 space only.
const NODE_IP = '198.18.0.11';
const CLIENT = '198.18.0.100';
const POD_A = '198.18.129.10';
const POD_OTHER = '198.18.130.10';
const CLUSTER_IP = '198.19.0.10';
const POD_MAC = { src: '02:00:00:00:01:01', dst: '02:00:00:00:01:02' };
const PEER_MAC = { src: '02:00:00:00:00:aa', dst: '02:00:00:00:00:bb' };
const config: DatapathConfig = { nodeIp: NODE_IP, hairpinIp: '198.18.127.254', clusterCidrs: ['198.18.128.0/17'] };

function tcp(src: string, sport: number, dst: string, dport: number, flags: TcpFlagName[], eth = POD_MAC, payload?: string): Buffer {
  const spec: PacketSpec = {
    eth,
    ip: { src, dst, id: 0x1234, df: true },
    tcp: { sport, dport, flags, seq: flags.includes('SYN') ? 1000 : 1001, ack: flags.includes('SYN') ? 0 : 1, window: 29200 },
    ...(payload !== undefined ? { payload } : {}),
  };
  return buildPacket(spec);
}

const packets = {
  syn: tcp(POD_A, 10000, CLUSTER_IP, 80, ['SYN']),
  ackSyn: tcp(POD_A, 9999, CLUSTER_IP, 80, ['SYN']),
  ack: tcp(POD_A, 9999, CLUSTER_IP, 80, ['ACK'], POD_MAC, 'x'.repeat(64)),
  other: tcp(POD_A, 40002, POD_OTHER, 8080, ['ACK'], POD_MAC, 'x'.repeat(64)),
  xOther: tcp(CLIENT, 40002, '198.18.0.50', 22, ['ACK'], PEER_MAC, 'x'.repeat(64)),
};

interface Case {
  name: string;
  prog: DatapathProgramKey;
  packet: Buffer;
  warmup?: Buffer;
}

/** Runs `fn` with a fresh datapath (private bpffs) and a scratch namespace to run programs in. */
async function withDatapath<T>(services: number, extra: DatapathConfig, fn: (dp: Datapath, netnsPath: string) => T): Promise<T> {
  const id = runId();
  const pinDir = mkdtempSync(join(tmpdir(), `bpfproxy-bench-tr-${id}-`));
  const ns = `bpb-${id}-testrun`;
  execFileSync('mount', ['-t', 'bpf', 'bpf', pinDir]);
  let dp: Datapath | undefined;
  try {
    execFileSync('ip', ['netns', 'add', ns]);
    dp = await loadDatapath({ pinDir, config: { ...config, ...extra } });
    fillClusterIpServices(dp, services, CLUSTER_IP, true);
    return fn(dp, `/run/netns/${ns}`);
  } finally {
    dp?.close();
    execFileSync('umount', [pinDir]);
    rmSync(pinDir, { recursive: true, force: true });
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // never created
    }
  }
}

function timeCases(dp: Datapath, netnsPath: string, cases: Case[], repeat: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of cases) {
    const p = dp.programs[c.prog];
    native.netnsRun(netnsPath, () => {
      if (c.warmup) p.testRun({ data: c.warmup });
      out[c.name] = p.testRun({ data: c.packet, repeat }).duration;
    });
  }
  return out;
}

async function emptyPrograms(tools: BenchTools, repeat: number): Promise<Record<string, number>> {
  const obj = new native.BpfObject(readEmptyBpf(tools), 'bench_empty');
  try {
    await obj.load();
    const run = (prog: BpfProgramNative, data: Buffer) => prog.testRun({ data, repeat }).duration;
    return { 'empty tc': run(obj.program('empty_tc'), packets.ack), 'empty xdp': run(obj.program('empty_xdp'), packets.xOther) };
  } finally {
    obj.close();
  }
}

export async function testRunScenario(p: Profile, tools: BenchTools, progress: Progress): Promise<TestRunPoint[]> {
  const points: TestRunPoint[] = [];
  const add = (services: number, figures: Record<string, number>) => {
    for (const [name, ns] of Object.entries(figures)) {
      points.push({ services, program: name.includes('xdp') ? 'xdp' : 'tc', case: name, nsPerPacket: ns, repeat: p.testRunRepeat });
    }
  };
  progress.begin('3 BPF_PROG_TEST_RUN', 1 + 2 * p.testRunServices.length);
  progress.step('empty programs');
  const empty = await emptyPrograms(tools, p.testRunRepeat);
  add(0, empty);
  progress.stepDone(`tc ${empty['empty tc']!.toFixed(1)} ns, xdp ${empty['empty xdp']!.toFixed(1)} ns`);
  for (const services of p.testRunServices) {
    progress.step(`${services} Services: new flow`);
    const fresh = await withDatapath(services, { ctTcpSynSeconds: 0 }, (dp, ns) =>
      timeCases(dp, ns, [{ name: 'new flow (SYN)', prog: 'tcPodIngress', packet: packets.syn }], p.testRunRepeat),
    );
    add(services, fresh);
    progress.stepDone(`${fresh['new flow (SYN)']!.toFixed(1)} ns`);
    progress.step(`${services} Services: established, non-service`);
    const steady = await withDatapath(services, {}, (dp, ns) =>
      timeCases(
        dp,
        ns,
        [
          { name: 'established', prog: 'tcPodIngress', packet: packets.ack, warmup: packets.ackSyn },
          { name: 'non-service', prog: 'tcPodIngress', packet: packets.other },
          { name: 'xdp non-service', prog: 'xdpUplink', packet: packets.xOther },
        ],
        p.testRunRepeat,
      ),
    );
    add(services, steady);
    progress.stepDone(`established ${steady['established']!.toFixed(1)} ns`);
  }
  return points;
}
