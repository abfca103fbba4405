/**
 * Per-packet cost of the datapath from BPF_PROG_TEST_RUN (the kernel's average over `repeat`
 * runs): a new flow, an established flow and a packet of no service, with 1 and 10,000 services
 * loaded. Prints figures; asserts nothing about time. Needs root.
 *
 *   npx tsx test/datapath/_perf.ts [repeat=200000]
 *
 * Two ways, because a repeated test run keeps the packet it rewrote (run 2 would see the already
 * translated packet, i.e. no service at all):
 *  - repeat: the kernel's average over `repeat` runs on a service whose backend is its own
 *    frontend (the translation is an identity, so every run takes the same full path: lookups,
 *    pick, conntrack writes; only the byte rewrites are skipped). "New flow" uses a SYN conntrack
 *    lifetime of 0, so each run finds the last entry expired and creates the flow again.
 *  - single: the median over `samples` runs of repeat=1 on fresh packets with real translation
 *    (new flows on distinct ports); includes the kernel's timer overhead of one run.
 *
 * The baseline: programs that return at once (tc: TC_ACT_OK, XDP: XDP_PASS), compiled here with
 * clang (BPF_CLANG to choose one) and run the same two ways on the same packets, so that the
 * datapath's own cost is the difference (BPF_PROG_TEST_RUN's per-run overhead is in both).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { native, type BpfProgramNative } from '../../ts/addon/index.js';
import type { DatapathConfig } from '../../ts/abi/index.js';
import { loadDatapath, type Datapath, type DatapathProgramKey } from '../../ts/dataplane/loader.js';
import { fillClusterIpServices } from '../../ts/bench/fill-services.js';
import { buildPacket } from '../../ts/packet/index.js';
import { NET, defaultConfig } from './_net.js';
import { fromPeer, tcp } from './_packets.js';

const repeat = Number(process.argv[2] ?? 200_000);
const samples = 20_000;

type Case = { name: string; prog: DatapathProgramKey; packet: (i: number) => Buffer; warmup?: Buffer; single?: boolean };

async function measure(services: number, config: DatapathConfig, identity: boolean, cases: Case[]) {
  const pinDir = mkdtempSync(join(tmpdir(), 'bpfproxy-perf-'));
  const ns = `bpfp-perf-${process.pid}-${services}-${Date.now().toString(36)}`;
  execFileSync('mount', ['-t', 'bpf', 'bpf', pinDir]);
  execFileSync('ip', ['netns', 'add', ns]);
  let dp: Datapath | undefined;
  try {
    dp = await loadDatapath({ pinDir, config: { ...defaultConfig, ...config } });
    fillClusterIpServices(dp, services, NET.clusterIp, identity);
    const out: Record<string, number> = {};
    for (const c of cases) {
      const p = dp.programs[c.prog];
      native.netnsRun(`/run/netns/${ns}`, () => {
        if (c.warmup) p.testRun({ data: c.warmup });
        if (!c.single) {
          out[c.name] = p.testRun({ data: c.packet(0), repeat }).duration;
          return;
        }
        const d: number[] = [];
        for (let i = 0; i < samples; i++) d.push(p.testRun({ data: c.packet(i) }).duration);
        d.sort((a, b) => a - b);
        out[c.name] = d[d.length >> 1]!;
      });
    }
    return out;
  } finally {
    dp?.close();
    execFileSync('umount', [pinDir]);
    rmSync(pinDir, { recursive: true, force: true });
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

const syn = (i: number) => buildPacket(tcp(NET.pod1a, 10000 + (i % 50000), NET.clusterIp, 80, ['SYN']));
const ack = () => buildPacket(tcp(NET.pod1a, 9999, NET.clusterIp, 80, ['ACK'], { seq: 1001, ack: 1, payload: 'x'.repeat(64) }));
const ackSyn = buildPacket(tcp(NET.pod1a, 9999, NET.clusterIp, 80, ['SYN']));
const other = () => buildPacket(tcp(NET.pod1a, 40002, NET.pod2a, 8080, ['ACK'], { seq: 1, ack: 1, payload: 'x'.repeat(64) }));
const xOther = () => buildPacket(tcp(NET.client, 40002, '198.18.0.50', 22, ['ACK'], { seq: 1, ack: 1, eth: fromPeer }));

const multiarch = ({ x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' } as Record<string, string>)[process.arch];

/** The baseline: a tc and an XDP program that return at once, built with clang and loaded. */
async function emptyPrograms(): Promise<{ tc: BpfProgramNative; xdp: BpfProgramNative; close(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-empty-'));
  let elf: Buffer;
  try {
    const src = join(dir, 'empty.bpf.c');
    writeFileSync(src, [
      '#include <linux/bpf.h>',
      '#include <linux/pkt_cls.h>',
      '#include <bpf/bpf_helpers.h>',
      'SEC("tc") int empty_tc(struct __sk_buff *skb) { return TC_ACT_OK; }',
      'SEC("xdp") int empty_xdp(struct xdp_md *ctx) { return XDP_PASS; }',
      'char LICENSE[] SEC("license") = "Dual BSD/GPL";',
      '',
    ].join('\n'));
    const root = join(import.meta.dirname, '../..');
    execFileSync(process.env.BPF_CLANG ?? 'clang', [
      '-target', 'bpf', '-O2', '-g',
      '-I', join(root, 'build/native/gen/include'), '-I', join(root, 'native/vendor/libbpf/include/uapi'),
      // <asm/types.h> lives in the multiarch directory (as in native/tools/build-bpf.mjs).
      ...(multiarch ? ['-idirafter', `/usr/include/${multiarch}`] : []),
      '-c', src, '-o', join(dir, 'empty.bpf.o'),
    ]);
    elf = readFileSync(join(dir, 'empty.bpf.o'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const obj = new native.BpfObject(elf, 'empty');
  await obj.load();
  return { tc: obj.program('empty_tc'), xdp: obj.program('empty_xdp'), close: () => obj.close() };
}

/** The empty programs on the packets the datapath is measured with, both ways. */
function baseline(empty: { tc: BpfProgramNative; xdp: BpfProgramNative }, single: boolean): Record<string, number> {
  const ns = `bpfp-perf-${process.pid}-empty-${Date.now().toString(36)}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    return native.netnsRun(`/run/netns/${ns}`, () => {
      const once = (p: BpfProgramNative, data: Buffer) => {
        if (!single) return p.testRun({ data, repeat }).duration;
        const d: number[] = [];
        for (let i = 0; i < samples; i++) d.push(p.testRun({ data }).duration);
        return d.sort((a, b) => a - b)[d.length >> 1]!;
      };
      return { 'empty tc': once(empty.tc, syn(0)), 'empty xdp': once(empty.xdp, xOther()) };
    });
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

const rows: Record<string, Record<string, number>> = {};
const empty = await emptyPrograms();
rows['empty program, repeat'] = baseline(empty, false);
rows['empty program, single'] = baseline(empty, true);
empty.close();
for (const services of [1, 10_000]) {
  const label = `${services} service${services > 1 ? 's' : ''}`;
  const newFlow = await measure(services, { ctTcpSynSeconds: 0 }, true, [
    { name: 'new flow (SYN)', prog: 'tcPodIngress', packet: syn },
  ]);
  const steady = await measure(services, {}, true, [
    { name: 'established', prog: 'tcPodIngress', packet: ack, warmup: ackSyn },
    { name: 'non-service', prog: 'tcPodIngress', packet: other },
    { name: 'xdp non-service', prog: 'xdpUplink', packet: xOther },
  ]);
  rows[`${label}, repeat`] = { ...newFlow, ...steady };
  rows[`${label}, single`] = await measure(services, {}, false, [
    { name: 'new flow (SYN)', prog: 'tcPodIngress', packet: syn, single: true },
    { name: 'established', prog: 'tcPodIngress', packet: ack, warmup: ackSyn, single: true },
    { name: 'non-service', prog: 'tcPodIngress', packet: other, single: true },
    { name: 'xdp non-service', prog: 'xdpUplink', packet: xOther, single: true },
  ]);
}
console.log(`BPF_PROG_TEST_RUN ns/packet (tc_pod ingress, ClusterIP; XDP on the uplink); repeat=${repeat}, single = median of ${samples} runs; kernel ${execFileSync('uname', ['-r']).toString().trim()}`);
console.table(rows);
