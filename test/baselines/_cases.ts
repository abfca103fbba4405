/**
 * The seed-style examples the golden tests cover, on node-1 of a lab-shaped cluster (node
 * 198.18.0.11, cluster CIDR 198.18.128.0/17, ClusterIPs in 198.19.0.0/17, LoadBalancer IPs in
 * 198.19.255.0/24). Each case is a Service "hostnames" (port 80 → 9376) and its EndpointSlice.
 */
import type { V1EndpointSlice, V1Service, V1ServiceSpec } from '@kubernetes/client-node';

import type { BaselineInput } from '../../ts/baselines/index.js';
import { resolveProxyConfig, type ProxyConfigInput } from '../../ts/model/index.js';

export const NODE = { name: 'node-1', addresses: ['198.18.0.11'], podCIDRs: ['198.18.129.0/24'] };
export const CLUSTER_CIDR = '198.18.128.0/17';
export const CLUSTER_IP = '198.19.0.10';
export const LB_IP = '198.19.255.10';

interface EndpointSpec {
  ip: string;
  node: string;
  ready?: boolean;
}

function service(spec: Partial<V1ServiceSpec>, ingress: string[] = [], portName = ''): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'hostnames', namespace: 'default' },
    spec: {
      type: 'ClusterIP',
      clusterIP: CLUSTER_IP,
      clusterIPs: [CLUSTER_IP],
      ports: [{ ...(portName === '' ? {} : { name: portName }), port: 80, targetPort: 9376 as never, protocol: 'TCP', ...(spec.type === 'NodePort' || spec.type === 'LoadBalancer' ? { nodePort: 30080 } : {}) }],
      ...spec,
    },
    status: { loadBalancer: { ingress: ingress.map((ip) => ({ ip })) } },
  };
}

function slice(endpoints: EndpointSpec[], portName = ''): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'hostnames-abcde', namespace: 'default', labels: { 'kubernetes.io/service-name': 'hostnames' } },
    addressType: 'IPv4',
    ports: [{ name: portName, port: 9376, protocol: 'TCP' }],
    endpoints: endpoints.map((ep) => ({
      addresses: [ep.ip],
      nodeName: ep.node,
      conditions: { ready: ep.ready ?? true, serving: ep.ready ?? true, terminating: false },
    })),
  };
}

function input(svc: V1Service, slices: V1EndpointSlice[], config: ProxyConfigInput = {}): BaselineInput {
  return { services: [svc], endpointSlices: slices, node: NODE, config: resolveProxyConfig({ clusterCIDR: CLUSTER_CIDR, ...config }) };
}

const remote1 = { ip: '198.18.130.2', node: 'node-2' };
const remote2 = { ip: '198.18.130.3', node: 'node-2' };
const local1 = { ip: '198.18.129.2', node: 'node-1' };

export const CASES: Record<string, BaselineInput> = {
  'one-endpoint': input(service({}), [slice([remote1])]),
  // Endpoint "ip:port" strings sort 198.18.129.2 < 198.18.130.2 < 198.18.130.3.
  'several-endpoints': input(service({}, [], 'http'), [slice([remote2, local1, remote1], 'http')]),
  nodeport: input(service({ type: 'NodePort' }), [slice([remote1, remote2])]),
  // 198.18.0.8/29 holds the node's own address: kube-proxy then also accepts the VIP as a source.
  'loadbalancer-source-ranges': input(
    service({ type: 'LoadBalancer', loadBalancerSourceRanges: ['198.18.0.100/30', '198.18.0.8/29'] }, [LB_IP]),
    [slice([remote1])],
  ),
  'session-affinity': input(
    service({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } }),
    [slice([remote1, remote2])],
  ),
  'etp-local': input(
    service({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 }, [LB_IP]),
    [slice([local1, remote1])],
  ),
  'etp-local-no-local-endpoint': input(service({ type: 'NodePort', externalTrafficPolicy: 'Local' }), [slice([remote1])]),
  // NodePorts only on the node addresses inside 198.18.0.0/24 (kube-proxy --nodeport-addresses), and
  // every ClusterIP connection masqueraded (--masquerade-all).
  'nodeport-addresses-masquerade-all': input(service({ type: 'NodePort' }), [slice([remote1])], {
    nodePortAddresses: ['198.18.0.0/24'],
    masqueradeAll: true,
  }),
  'no-endpoints': input(service({ type: 'NodePort', externalIPs: ['198.19.255.20'] }), [slice([{ ...remote1, ready: false }])]),
};
