// Membership is per Service, not per backend: an endpoint that leaves one Service while another
// still lists it (its be_v1 entry stays, shared by address and port) loses that Service's UDP flows
// and ClientIP affinities at the next sync, as kube-proxy's conntrack cleanup deletes them; its TCP
// flows finish where they are. Objects in → the agent's sync path (Syncer) → real programs
// (BPF_PROG_TEST_RUN) → packets out.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import { Syncer } from '../../ts/agent/syncer.js';
import { Reconciler } from '../../ts/dataplane/reconciler.js';
import { resolveProxyConfig } from '../../ts/model/index.js';
import { parsePacket } from '../../ts/packet/index.js';
import { NET, rootTest, setup } from '../datapath/_fixture.js';
import { tcp, udp } from '../datapath/_packets.js';

const proxy = resolveProxyConfig({ clusterCIDR: NET.podCidr, maglevTableSize: 251 });
const SHARED = NET.pod2a; // an endpoint of both Services
const OTHER = NET.pod2b;

function service(name: string, clusterIP: string, affinity = false): V1Service {
  return {
    metadata: { name, namespace: 'default', uid: name, creationTimestamp: new Date(0) },
    spec: {
      clusterIP,
      ports: [{ name: 'dns', port: 53, targetPort: 5353 as never, protocol: 'UDP' }, { name: 'http', port: 80, targetPort: 8080 as never, protocol: 'TCP' }],
      ...(affinity ? { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } } : {}),
    },
  };
}

function slice(name: string, addresses: string[]): V1EndpointSlice {
  return {
    metadata: { name: `${name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }, { name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: addresses.map((a) => ({ addresses: [a], nodeName: 'node-2', conditions: { ready: true } })),
  };
}

rootTest('an endpoint leaving one Service but not another: that Service\'s UDP flows and affinities to it go, its TCP flows stay', async (t) => {
  const env = await setup(t);
  const reconciler = new Reconciler(env.dp);
  reconciler.adopt();
  const syncer = new Syncer(env.dp, reconciler, { proxy, nodeName: 'node-1', fallbackAddresses: () => [NET.node1], recoverIds: false });
  const a = service('a', NET.clusterIp, true);
  const b = service('b', NET.clusterIp2);
  syncer.services.record(undefined, a);
  syncer.services.record(undefined, b);
  syncer.endpointSlices.record(undefined, slice('a', [SHARED]));
  syncer.endpointSlices.record(undefined, slice('b', [SHARED]));
  t.deepEqual(syncer.sync().result.failures, []);

  // A UDP flow and a TCP flow through Service a, both to the shared endpoint (its only one), with an affinity.
  const q = udp(NET.pod1a, 40000, NET.clusterIp, 53);
  const to = (spec: Parameters<typeof env.send>[1]) => parsePacket(env.send('tcPodIngress', spec).out).ip!.dst;
  t.is(to(q), SHARED);
  const syn = tcp(NET.pod1b, 40001, NET.clusterIp, 80);
  t.is(to(syn), SHARED);

  // The shared endpoint leaves a (another takes its place) but stays in b.
  const a2 = slice('a', [OTHER]);
  syncer.endpointSlices.record(slice('a', [SHARED]), a2);
  const outcome = syncer.sync();
  t.deepEqual(outcome.result.failures, []);
  t.true(env.dp.maps.backends.entries().some(([, be]) => be.addr === SHARED), 'the endpoint is still a backend (of b)');
  t.deepEqual(outcome.stale, { flows: 1, affinities: 2 }, 'the UDP flow, and the affinities of pod1a (UDP) and pod1b (TCP)');

  t.is(to(q), OTHER, 'the UDP flow picks a serving endpoint at its next datagram');
  t.is(to(tcp(NET.pod1b, 40001, NET.clusterIp, 80, ['ACK'], { seq: 1001, ack: 1 })), SHARED, 'the TCP connection finishes where it is');
  t.is(to(tcp(NET.pod1b, 40002, NET.clusterIp, 80)), OTHER, 'a new connection of the same client: affinity no longer names the endpoint');
  t.is(parsePacket(env.send('tcPodIngress', udp(NET.pod1a, 40003, NET.clusterIp2, 53)).out).ip!.dst, SHARED, 'b still uses it');
});
