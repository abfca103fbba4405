/**
 * The foundation demo: two namespaces joined by a veth, the traffic probe on XDP (ingress of the
 * server side) and tcx (egress of the client side), a ping and a TCP exchange, and the counters
 * read back from the pinned map. Everything lives in namespaces it creates and is removed at the
 * end, on failure and on Ctrl-C.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';

import { native } from '../addon/index.js';
import { mountPrivateBpffs } from '../dataplane/bpffs.js';
import { UndoStack } from '../util/undo-stack.js';
import { Netns, runId, vethPair } from '../lab/net/netns.js';
import { PROBE_COUNTERS_MAP, Probe, ProbeHook, readProbeCounts } from '../probe/probe.js';

const PROTO_NAMES: Record<number, string> = { 0: 'non-IP', 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6' };

export async function runProbeDemo(): Promise<void> {
  const id = runId();
  const cleanup = new UndoStack();
  const onSignal = () => {
    void cleanup.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const pinDir = await mountPrivateBpffs(join(tmpdir(), `bpfproxy-demo-${id}`), cleanup);
    const client = await Netns.create(`bpd-${id}-client`, cleanup);
    const server = await Netns.create(`bpd-${id}-server`, cleanup);
    await vethPair({ ns: client, name: 'eth0', address: '198.18.0.100/24' }, { ns: server, name: 'eth0', address: '198.18.0.11/24' });
    console.log(`lab ${id}: namespaces ${client.name} (198.18.0.100) and ${server.name} (198.18.0.11), bpffs at ${pinDir}`);

    const probe = await Probe.load({ pinDir });
    cleanup.add('probe', () => probe.close());
    const serverIf = native.netnsRun(server.path, () => native.ifNameToIndex('eth0'));
    const clientIf = native.netnsRun(client.path, () => native.ifNameToIndex('eth0'));
    const xdp = native.netnsRun(server.path, () => probe.attachXdp(serverIf));
    const tc = native.netnsRun(client.path, () => probe.attachTcx(clientIf, 'egress'));
    cleanup.add('links', () => {
      xdp.close();
      tc.close();
    });
    console.log(`attached: XDP on ${server.name}/eth0 (link ${xdp.info.id}), tcx egress on ${client.name}/eth0 (link ${tc.info.id})`);

    await client.exec('ping', ['-c', '3', '-i', '0.1', '-W', '1', '198.18.0.11']);
    console.log('sent: 3 pings from client to server');

    const counters = native.BpfMap.fromPin(join(pinDir, PROBE_COUNTERS_MAP));
    cleanup.add('counters', () => counters.close());
    // Both ends are called eth0 and may share an ifindex (each namespace counts its own): the hook tells them apart.
    const hookName = (h: ProbeHook) => (h === ProbeHook.Xdp ? 'XDP server/eth0' : 'tc egress client/eth0');
    console.log('\nhook                   protocol  packets  bytes');
    for (const c of readProbeCounts(counters)) {
      console.log(`${hookName(c.hook).padEnd(22)} ${(PROTO_NAMES[c.proto] ?? String(c.proto)).padEnd(9)} ${String(c.packets).padStart(7)}  ${String(c.bytes).padStart(5)}`);
    }
    const icmp = readProbeCounts(counters).filter((c) => c.proto === 1);
    const ok = icmp.length === 2 && icmp.every((c) => c.packets === 3n);
    console.log(ok ? '\ncheck: each hook saw the 3 echo requests ✔' : '\ncheck: FAILED, the hooks did not see the 3 echo requests');
    if (!ok) process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup.run();
    console.log(`lab ${id}: removed`);
  }
}
