// The baselines are real: kube-proxy's rules generated for each node of a lab (2 nodes, hostname
// servers as pods, no bpfproxy datapath attached) carry real sockets to a ClusterIP, to a NodePort
// from an outside client, and refuse connections to a Service without endpoints — for
// iptables-legacy, iptables-nft and nftables alike. This is what makes the benchmark fair.
import type { ExecutionContext } from 'ava';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

import { privilegedSerial } from '../helpers/env.js';
import { scope } from '../helpers/scope.js';

import {
  applyIptables,
  applyNftables,
  iptablesRestoreInput,
  nftablesScript,
  resetBaselines,
  type BaselineInput,
  type IptablesVariant,
} from '../../ts/baselines/index.js';
import { CLUSTER_CIDR } from '../../ts/lab/net/address-plan.js';
import type { PodState } from '../../ts/lab/lab-state.js';
import { Lab } from '../../ts/lab/topology.js';
import { tally } from '../../ts/lab/net/traffic.js';
import { resolveProxyConfig } from '../../ts/model/index.js';

const CLUSTER_IP = '198.19.0.10';
const EMPTY_IP = '198.19.0.11';
const NODE_PORT = 30080;
const TARGET_PORT = 9376;

function services(): V1Service[] {
  const svc = (name: string, clusterIP: string): V1Service => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: {
      type: 'NodePort',
      clusterIP,
      clusterIPs: [clusterIP],
      ports: [
        { name: 'tcp', port: 80, targetPort: TARGET_PORT as never, protocol: 'TCP', nodePort: clusterIP === CLUSTER_IP ? NODE_PORT : NODE_PORT + 10 },
        { name: 'udp', port: 80, targetPort: TARGET_PORT as never, protocol: 'UDP', nodePort: clusterIP === CLUSTER_IP ? NODE_PORT : NODE_PORT + 10 },
      ],
    },
  });
  return [svc('hostnames', CLUSTER_IP), svc('empty', EMPTY_IP)];
}

function slice(pods: readonly PodState[]): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'hostnames-abcde', namespace: 'default', labels: { 'kubernetes.io/service-name': 'hostnames' } },
    addressType: 'IPv4',
    ports: [
      { name: 'tcp', port: TARGET_PORT, protocol: 'TCP' },
      { name: 'udp', port: TARGET_PORT, protocol: 'UDP' },
    ],
    endpoints: pods.map((p) => ({ addresses: [p.address], nodeName: p.node, conditions: { ready: true } })),
  };
}

type Mode = { kind: 'iptables'; variant: IptablesVariant } | { kind: 'nftables' };

/** hostnames-1 on node-1, hostnames-2 on node-2, a client pod on node-2, the rules on both nodes. */
async function labWithBaseline(t: ExecutionContext, mode: Mode): Promise<Lab> {
  const s = scope(t);
  const lab = await Lab.up({ name: `lbl-${s.id}`, nodes: 2, clients: 1 });
  s.cleanup.add('lab', () => lab.down());
  const ports = [{ port: TARGET_PORT, protocol: 'TCP' as const }];
  const backends = [
    await lab.addPod({ name: 'hostnames-1', node: 'node-1', ports }),
    await lab.addPod({ name: 'hostnames-2', node: 'node-2', ports }),
  ];
  await lab.addPod({ name: 'client', node: 'node-2', ports });
  for (const node of lab.nodes) {
    const input: BaselineInput = {
      services: services(),
      endpointSlices: [slice(backends)],
      node: { name: node.name, addresses: [node.address], podCIDRs: [node.podCidr] },
      config: resolveProxyConfig({ clusterCIDR: CLUSTER_CIDR }),
    };
    const netns = lab.netnsName(node.name);
    // Removed before the lab goes (the namespaces would take them anyway); proves reset works mid-lab.
    s.cleanup.add(`baseline rules of ${node.name}`, () => resetBaselines(netns));
    if (mode.kind === 'iptables') await applyIptables(netns, iptablesRestoreInput(input), mode.variant);
    else await applyNftables(netns, nftablesScript(input));
  }
  return lab;
}

const MODES: [string, Mode][] = [
  ['iptables-legacy', { kind: 'iptables', variant: 'legacy' }],
  ['iptables-nft', { kind: 'iptables', variant: 'nft' }],
  ['nftables', { kind: 'nftables' }],
];

for (const [label, mode] of MODES) {
  privilegedSerial(`${label}: kube-proxy's rules carry a pod's TCP and UDP to a ClusterIP, spread over both backends`, async (t) => {
    const lab = await labWithBaseline(t, mode);
    const tcp = tally(await lab.request('client', { address: CLUSTER_IP, port: 80, count: 60, timeoutMs: 2000 }));
    t.deepEqual(tcp.byError, {}, 'TCP errors');
    t.deepEqual(Object.keys(tcp.byAnswer).sort(), ['hostnames-1', 'hostnames-2'], `TCP answers ${JSON.stringify(tcp.byAnswer)}`);
    // 60 uniform picks of 2: below 10 for one backend has probability < 1e-9.
    for (const [name, n] of Object.entries(tcp.byAnswer)) t.true(n >= 10, `${name} answered ${n} of 60`);
    const udp = tally(await lab.request('client', { address: CLUSTER_IP, port: 80, protocol: 'UDP', count: 20, timeoutMs: 2000 }));
    t.deepEqual(udp.byError, {}, 'UDP errors');
    t.is(Object.values(udp.byAnswer).reduce((a, b) => a + b, 0), 20);

    // From outside the cluster, through node-1's address: KUBE-NODEPORTS / service-nodeports, SNAT.
    const nodePort = tally(await lab.request('client-1', { address: lab.node('node-1').address, port: NODE_PORT, count: 30, timeoutMs: 2000 }));
    t.deepEqual(nodePort.byError, {}, 'NodePort errors');
    t.is(Object.values(nodePort.byAnswer).reduce((a, b) => a + b, 0), 30);

    // No endpoints: refused at once (REJECT / reject-chain), not a timeout.
    for (const answer of await lab.request('client', { address: EMPTY_IP, port: 80, count: 3, timeoutMs: 2000 })) {
      t.like(answer, { ok: false, error: 'refused' });
      t.true(answer.ms < 1000, `refused after ${answer.ms} ms`);
    }
  });
}
