// BPF_PROG_TEST_RUN: a crafted packet goes in, the expected verdict and packet come out.
import { privileged } from '../helpers/env.js';

import { Probe, ProbeHook } from '../fixtures/probe.js';

const XDP_DROP = 1;
const XDP_PASS = 2;
const TC_ACT_OK = 0;

/** Ethernet + IPv4 header with the given protocol, padded to 64 bytes. */
function ipv4Frame(protocol: number): Buffer {
  const f = Buffer.alloc(64);
  Buffer.from('02000000000202000000000108004500', 'hex').copy(f, 0); // dst mac, src mac, IPv4, v4/ihl 5
  f.writeUInt16BE(50, 16); // total length
  f.writeUInt8(64, 22); // ttl
  f.writeUInt8(protocol, 23);
  Buffer.from([198, 18, 0, 1, 198, 18, 0, 2]).copy(f, 26);
  return f;
}

privileged('XDP passes a TCP packet unchanged and counts it once per run', async (t) => {
  const probe = await Probe.load();
  t.teardown(() => probe.close());
  const packet = ipv4Frame(6);
  const result = probe.object.program('probe_xdp').testRun({ data: packet, repeat: 1000 });
  t.is(result.retval, XDP_PASS);
  t.deepEqual(result.data, packet);
  const counted = probe.counts().filter((c) => c.hook === ProbeHook.Xdp);
  t.is(counted.length, 1);
  t.like(counted[0], { proto: 6, packets: 1000n, bytes: 64_000n });
  t.true(result.duration > 0);
});

privileged('rodata configuration reaches the program: the probe drops the configured protocol', async (t) => {
  const probe = await Probe.load({ dropProto: 17 });
  t.teardown(() => probe.close());
  const xdp = probe.object.program('probe_xdp');
  t.is(xdp.testRun({ data: ipv4Frame(17) }).retval, XDP_DROP);
  t.is(xdp.testRun({ data: ipv4Frame(6) }).retval, XDP_PASS);
  t.deepEqual(probe.counts().map((c) => c.proto), [6], 'dropped packets are not counted');
});

privileged('tc programs run through BPF_PROG_TEST_RUN too', async (t) => {
  const probe = await Probe.load();
  t.teardown(() => probe.close());
  const packet = ipv4Frame(1);
  const result = probe.object.program('probe_tc_egress').testRun({ data: packet });
  t.is(result.retval, TC_ACT_OK);
  t.deepEqual(result.data, packet);
  t.like(probe.counts()[0], { hook: ProbeHook.TcEgress, proto: 1, packets: 1n });
});
