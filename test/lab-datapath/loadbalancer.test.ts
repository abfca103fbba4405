// A LoadBalancer ingress IP with loadBalancerSourceRanges: client-1 (listed) reaches it through
// either node (the clients route the LoadBalancer range by ECMP over the nodes), client-2 (not
// listed) is dropped — its requests time out — and drops_v1 counts SOURCE_RANGE for each of them.
import { privilegedSerial } from '../helpers/env.js';

import { DropReason } from '../../ts/abi/drop-reason.js';
import { tally } from '../../ts/lab/net/traffic.js';
import { DatapathLab, LB_IP, NODE_PORT, SERVICE_PORT, backendPort, hostnamesSlice, service } from './_fixture.js';

privilegedSerial('LoadBalancer IP: a listed source reaches it (TCP, UDP); an unlisted one is dropped and counted', async (t) => {
  const l = await DatapathLab.up(t, { clients: 2 });
  const backends = [
    await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort }),
    await l.addPod({ name: 'hostnames-2', node: 'node-2', ports: backendPort }),
  ];
  const allowed = l.lab.clients[0]!;
  const denied = l.lab.clients[1]!;
  const svc = service({ type: 'LoadBalancer', loadBalancerIPs: [LB_IP], loadBalancerSourceRanges: [`${allowed.address}/32`] });
  t.deepEqual(l.apply([svc], [hostnamesSlice(backends)]), []);

  const tcp = tally(await l.lab.request(allowed.name, { address: LB_IP, port: SERVICE_PORT, count: 40, timeoutMs: 2000 }));
  t.deepEqual(tcp.byError, {}, 'TCP from the listed client');
  t.deepEqual(Object.keys(tcp.byAnswer).sort(), ['hostnames-1', 'hostnames-2']);
  const udp = tally(await l.lab.request(allowed.name, { address: LB_IP, port: SERVICE_PORT, protocol: 'UDP', count: 20, timeoutMs: 2000 }));
  t.deepEqual(udp.byError, {}, 'UDP from the listed client');

  const before = l.drops(DropReason.SOURCE_RANGE);
  t.is(before, 0n);
  const refused = await l.lab.request(denied.name, { address: LB_IP, port: SERVICE_PORT, count: 3, timeoutMs: 600 });
  t.deepEqual(tally(refused), { byAnswer: {}, byError: { timeout: 3 } }, 'the unlisted client: dropped, not rejected');
  const refusedUdp = await l.lab.request(denied.name, { address: LB_IP, port: SERVICE_PORT, protocol: 'UDP', count: 3, timeoutMs: 600 });
  t.deepEqual(tally(refusedUdp), { byAnswer: {}, byError: { timeout: 3 } });
  // At least one packet per attempt (TCP retransmits its SYN within the timeout, so maybe more).
  t.true(l.drops(DropReason.SOURCE_RANGE) >= 6n, `SOURCE_RANGE drops: ${l.drops(DropReason.SOURCE_RANGE)}`);
});

privilegedSerial('LoadBalancer IP whose source ranges are all IPv6: fails closed, no IPv4 client reaches it; its NodePort still works', async (t) => {
  const l = await DatapathLab.up(t, { clients: 1 });
  const backends = [await l.addPod({ name: 'hostnames-1', node: 'node-1', ports: backendPort })];
  const client = l.lab.clients[0]!;
  const svc = service({ type: 'LoadBalancer', loadBalancerIPs: [LB_IP], loadBalancerSourceRanges: ['2001:db8::/64'] });
  t.deepEqual(l.apply([svc], [hostnamesSlice(backends)]), []);

  const lb = tally(await l.lab.request(client.name, { address: LB_IP, port: SERVICE_PORT, count: 3, timeoutMs: 600 }));
  t.deepEqual(lb.byAnswer, {}, `no IPv4 client is let in (kube-proxy's per-family filter would leave it open to all): ${JSON.stringify(lb)}`);
  const nodePort = tally(await l.lab.request(client.name, { address: l.lab.nodes.find((n) => n.name === 'node-1')!.address, port: NODE_PORT, count: 3, timeoutMs: 2000 }));
  t.deepEqual(nodePort.byError, {}, 'the NodePort is not behind loadBalancerSourceRanges');
});
