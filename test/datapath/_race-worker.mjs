// One CPU of test/datapath/conntrack-race.test.ts: runs its packets in rounds with its twin, each
// round started by both at once (a spin barrier), and records the source port each came out with
// (or -1 - verdict when none came out).
//   rounds[i] = [packet, followUp?]: the packet is run at the barrier; followUp (if any) after a
//   second barrier, when the packet got through (e.g. a RST closing the flow it made).
import { createRequire } from 'node:module';
import { workerData } from 'node:worker_threads';

const { addonPath, progId, netns, rounds, barrier, out, me } = workerData;
const native = createRequire(import.meta.url)(addonPath);
const prog = native.BpfProgram.fromId(progId);
const arrivals = new Int32Array(barrier);
const ports = new Int32Array(out);
let crossed = 0;
const meet = () => {
  crossed++;
  Atomics.add(arrivals, 0, 1);
  while (Atomics.load(arrivals, 0) < 2 * crossed);
};
native.netnsRun(netns, () => {
  for (let i = 0; i < rounds.length; i++) {
    const [packet, followUp] = rounds[i];
    meet();
    const r = prog.testRun({ data: Buffer.from(packet) });
    // Ethernet, IPv4 without options: the TCP source port at 34.
    const port = r.retval !== 2 && r.data.length >= 36 ? r.data.readUInt16BE(34) : -1 - r.retval;
    ports[me * rounds.length + i] = port;
    if (followUp) {
      meet();
      if (port >= 0) prog.testRun({ data: Buffer.from(followUp) });
      meet();
    }
  }
});
prog.close();
