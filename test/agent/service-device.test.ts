import test from 'ava';
import type { V1Service } from '@kubernetes/client-node';

import { cidrsOfServiceCIDRObjects, desiredServiceRoutes } from '../../ts/agent/service-device.js';

const svc = (spec: V1Service['spec'], ingress: string[] = []): V1Service => ({ spec, status: { loadBalancer: { ingress: ingress.map((ip) => ({ ip })) } } });

test('routes: the CIDRs, and a /32 for each other service address that is not the node\'s', (t) => {
  const services = [
    svc({ clusterIP: '198.19.0.10', clusterIPs: ['198.19.0.10'] }),
    svc({ type: 'LoadBalancer', clusterIPs: ['198.19.0.11'], externalIPs: ['198.19.255.20', '198.18.0.11'] }, ['198.19.255.10']),
    svc({ clusterIPs: ['198.19.200.5'] }), // a ClusterIP outside every CIDR (a range the ServiceCIDR objects do not list)
    svc({ clusterIP: 'None' }),
    svc({ type: 'ExternalName', externalIPs: ['198.19.255.99'] }),
    svc({ clusterIPs: ['fd00::1'], externalIPs: ['127.0.0.1'] }),
  ];
  t.deepEqual(desiredServiceRoutes(services, ['198.19.0.0/17'], ['198.18.0.11']), ['198.19.0.0/17', '198.19.200.5/32', '198.19.255.10/32', '198.19.255.20/32']);
  t.deepEqual(desiredServiceRoutes([svc({ clusterIPs: ['198.19.0.10'] })], [], []), ['198.19.0.10/32'], 'no CIDR known: each ClusterIP');
});

test('ServiceCIDR objects: their IPv4 CIDRs, normalized and deduplicated', (t) => {
  t.deepEqual(
    cidrsOfServiceCIDRObjects([{ spec: { cidrs: ['198.19.0.1/17', '2001:db8:2::/112'] } }, { spec: { cidrs: ['198.19.0.0/17', '198.18.192.0/18'] } }, {}]),
    ['198.18.192.0/18', '198.19.0.0/17'],
  );
});
