// UDP datagrams larger than the MTU (4000 bytes over 1500-byte links: three fragments each way)
// through a ClusterIP and a NodePort, with real sockets. The pods' server answers "echo X" with X,
// so the answer is as big as the request and comes back in fragments too: the backend got the
// whole datagram (its fragments all reached it, translated alike), and the client reassembled the
// answer (its fragments all reversed alike). Fragments are tc's (XDP passes them on), so the
// NodePort runs with XDP in front, as deployed.
import type { ExecutionContext } from 'ava';

import { privilegedSerial } from '../helpers/env.js';

import { DropReason } from '../../ts/abi/drop-reason.js';
import { FragStat } from '../../ts/abi/constants.js';
import type { Answer } from '../../ts/lab/net/traffic.js';
import { CLUSTER_IP, DatapathLab, NODE_PORT, SERVICE_PORT, backendPort, hostnamesSlice, service } from './_fixture.js';

/** 4000 bytes in all: "echo " and a text the server sends back, different per request. */
const bigEcho = (i: number) => {
  const body = Array.from({ length: 3995 }, (_, k) => String.fromCharCode(33 + ((k * 7 + i * 13) % 94))).join('');
  return { payload: `echo ${body}`, body };
};

function expectEchoes(t: ExecutionContext, answers: Answer[], body: string, what: string): void {
  t.is(answers.length, 5, what);
  for (const a of answers) {
    if (!a.ok) t.fail(`${what}: ${a.error} (${a.message})`);
    else t.true(a.answer === body, `${what}: the ${body.length}-byte answer came back whole (got ${a.answer.length} bytes)`);
  }
}

privilegedSerial('fragments: a 4000-byte UDP datagram from a pod to a ClusterIP reaches a backend on the other node, and its 3995-byte answer comes back', async (t) => {
  const l = await DatapathLab.up(t);
  const backend = await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort });
  await l.addPod({ name: 'client', node: 'node-2', ports: backendPort });
  t.deepEqual(l.apply([service()], [hostnamesSlice([backend])]), []);

  for (let i = 0; i < 3; i++) {
    const { payload, body } = bigEcho(i);
    const answers = await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, protocol: 'UDP', payload, count: 5, timeoutMs: 3000 });
    expectEchoes(t, answers, body, `round ${i + 1}`);
  }
  // Node-2 translated every fragment: out (DNAT at the client's veth) and back (reverse NAT at it).
  t.true(l.fragStat(FragStat.FIRST, 'node-2') >= 30n, `first fragments recorded on node-2: ${l.fragStat(FragStat.FIRST, 'node-2')}`);
  t.true(l.fragStat(FragStat.LATER, 'node-2') >= 60n, `later fragments translated on node-2: ${l.fragStat(FragStat.LATER, 'node-2')}`);
  t.is(l.drops(DropReason.FRAGMENT), 0n);
});

privilegedSerial('fragments: a 4000-byte UDP datagram from a pod to a ClusterIP with a backend on its own node, answered', async (t) => {
  const l = await DatapathLab.up(t);
  const backend = await l.addPod({ name: 'hostnames-1', node: 'node-2', ports: backendPort });
  await l.addPod({ name: 'client', node: 'node-2', ports: backendPort });
  t.deepEqual(l.apply([service()], [hostnamesSlice([backend])]), []);
  const { payload, body } = bigEcho(7);
  const answers = await l.lab.request('client', { address: CLUSTER_IP, port: SERVICE_PORT, protocol: 'UDP', payload, count: 5, timeoutMs: 3000 });
  expectEchoes(t, answers, body, 'local backend');
  // DNAT at the client's veth, reverse NAT as the answer leaves the backend's: 2 later fragments each.
  t.true(l.fragStat(FragStat.LATER, 'node-2') >= 20n, `later fragments on node-2: ${l.fragStat(FragStat.LATER, 'node-2')}`);
  t.is(l.drops(DropReason.FRAGMENT), 0n);
});

privilegedSerial('fragments: a 4000-byte UDP datagram from outside to a NodePort, masqueraded to a backend on the other node (XDP + tc), answered', async (t) => {
  const l = await DatapathLab.up(t, { xdpMode: 'generic' });
  const backend = await l.addPod({ name: 'hostnames-1', node: 'node-2', ports: backendPort });
  t.deepEqual(l.apply([service({ type: 'NodePort' })], [hostnamesSlice([backend])]), []);
  const node1 = l.lab.nodes.find((n) => n.name === 'node-1')!;

  const { payload, body } = bigEcho(3);
  const answers = await l.lab.request('client-1', { address: node1.address, port: NODE_PORT + 1, protocol: 'UDP', payload, count: 5, timeoutMs: 3000 });
  expectEchoes(t, answers, body, `NodePort ${node1.address}:${NODE_PORT + 1}`);
  // Node-1 masqueraded the request's fragments (uplink ingress) and reversed the answer's.
  t.true(l.fragStat(FragStat.LATER, 'node-1') >= 20n, `later fragments translated on node-1: ${l.fragStat(FragStat.LATER, 'node-1')}`);
  t.is(l.drops(DropReason.FRAGMENT), 0n);
});
