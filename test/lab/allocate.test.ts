// Service allocation as the API server and a cloud controller do it: defaults, ClusterIPs, node
// ports, health-check node ports and LoadBalancer IPs; explicit values honoured; conflicts refused;
// allocations kept across re-apply and type changes.
import test from 'ava';
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';

import { InvalidObjectError, allocateService } from '../../ts/lab/file-api/allocate.js';

function service(name: string, spec: V1Service['spec'] = {}, ports: V1ServicePort[] = [{ port: 80, targetPort: 9376 as never }]): V1Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { selector: { app: name }, ports, ...spec } };
}

/** Applies services one after the other, as `lab apply` does; returns the live set. */
function applyAll(...svcs: V1Service[]): V1Service[] {
  const live: V1Service[] = [];
  for (const s of svcs) {
    const i = live.findIndex((l) => l.metadata?.name === s.metadata?.name);
    const next = allocateService(s, i >= 0 ? live[i] : undefined, live);
    if (i >= 0) live[i] = next;
    else live.push(next);
  }
  return live;
}

test('a ClusterIP Service gets defaults and the lowest free address above the static band', (t) => {
  const [a, b] = applyAll(service('a'), service('b'));
  t.like(a!.spec, {
    type: 'ClusterIP',
    clusterIP: '198.19.1.1',
    clusterIPs: ['198.19.1.1'],
    ipFamilies: ['IPv4'],
    ipFamilyPolicy: 'SingleStack',
    sessionAffinity: 'None',
    internalTrafficPolicy: 'Cluster',
  });
  t.is(a!.spec!.externalTrafficPolicy, undefined);
  t.deepEqual(a!.spec!.ports, [{ port: 80, targetPort: 9376, protocol: 'TCP' }]);
  t.is(b!.spec!.clusterIP, '198.19.1.2');
  t.deepEqual(a!.status, { loadBalancer: {} });
});

test('an explicit clusterIP is honoured, and a taken or out-of-range one is refused', (t) => {
  const [a] = applyAll(service('a', { clusterIP: '198.19.0.10' }));
  t.is(a!.spec!.clusterIP, '198.19.0.10');
  t.throws(() => allocateService(service('b', { clusterIP: '198.19.0.10' }), undefined, [a!]), {
    instanceOf: InvalidObjectError,
    message: 'Service "b" is invalid: spec.clusterIP: Invalid value: "198.19.0.10": provided IP is already allocated (to default/a)',
  });
  t.throws(() => allocateService(service('c', { clusterIP: '198.18.0.1' }), undefined, [a!]), { message: /not in the valid range.*198\.19\.0\.0\/17/ });
  t.throws(() => allocateService(service('d', { clusterIP: '198.19.0.0' }), undefined, [a!]), { message: /not in the valid range/ });
  t.throws(() => allocateService(service('e', { clusterIP: 'banana' }), undefined, [a!]), { message: /must be a valid IP/ });
  // The dynamic allocator steps over explicit addresses.
  const [, dyn] = applyAll(service('x', { clusterIP: '198.19.1.1' }), service('y'));
  t.is(dyn!.spec!.clusterIP, '198.19.1.2');
});

test('a headless Service keeps clusterIP None', (t) => {
  const [h] = applyAll(service('h', { clusterIP: 'None' }));
  t.is(h!.spec!.clusterIP, 'None');
  t.deepEqual(h!.spec!.clusterIPs, ['None']);
});

test('re-applying keeps the ClusterIP; changing it is refused as immutable', (t) => {
  const [first] = applyAll(service('a'));
  const again = allocateService(service('a'), first, [first!]);
  t.is(again.spec!.clusterIP, first!.spec!.clusterIP);
  t.throws(() => allocateService(service('a', { clusterIP: '198.19.0.99' }), first, [first!]), { message: /field is immutable/ });
});

test('NodePort: one node port per service port, the same for TCP and UDP of one port number', (t) => {
  const ports: V1ServicePort[] = [
    { name: 'tcp', port: 80, targetPort: 9376 as never, protocol: 'TCP' },
    { name: 'udp', port: 80, targetPort: 9376 as never, protocol: 'UDP' },
    { name: 'admin', port: 8080, protocol: 'TCP' },
  ];
  const [a] = applyAll(service('a', { type: 'NodePort' }, ports));
  t.deepEqual(a!.spec!.ports!.map((p) => p.nodePort), [30000, 30000, 30001]);
  t.is(a!.spec!.externalTrafficPolicy, 'Cluster');
  t.deepEqual(a!.spec!.ports![2]!.targetPort, 8080, 'targetPort defaults to port');
});

test('NodePort: explicit ports honoured, never handed out twice, conflicts and out-of-range refused', (t) => {
  const [a, b] = applyAll(
    service('a', { type: 'NodePort' }, [{ port: 80, nodePort: 30000 }]),
    service('b', { type: 'NodePort' }, [{ port: 80 }]),
  );
  t.is(a!.spec!.ports![0]!.nodePort, 30000);
  t.is(b!.spec!.ports![0]!.nodePort, 30001);
  t.throws(() => allocateService(service('c', { type: 'NodePort' }, [{ port: 80, nodePort: 30001 }]), undefined, [a!, b!]), {
    message: 'Service "c" is invalid: spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated (to default/b)',
  });
  t.throws(() => allocateService(service('d', { type: 'NodePort' }, [{ port: 80, nodePort: 8080 }]), undefined, [a!, b!]), { message: /not in the valid range.*30000-32767/ });
  t.throws(() => allocateService(service('e', { type: 'ClusterIP' }, [{ port: 80, nodePort: 30500 }]), undefined, []), { message: /may not be used when `type` is 'ClusterIP'/ });
  // An explicit port further down is not taken by an automatic one before it.
  const [m] = applyAll(service('m', { type: 'NodePort' }, [{ name: 'a', port: 1 }, { name: 'b', port: 2, nodePort: 30000 }]));
  t.deepEqual(m!.spec!.ports!.map((p) => p.nodePort), [30001, 30000]);
});

test('type changes keep allocations: ClusterIP → NodePort → LoadBalancer → NodePort → ClusterIP', (t) => {
  let live = applyAll(service('s'));
  const ip = live[0]!.spec!.clusterIP;
  live = [allocateService(service('s', { type: 'NodePort' }), live[0], live)];
  const np = live[0]!.spec!.ports![0]!.nodePort;
  t.is(np, 30000);
  t.is(live[0]!.spec!.clusterIP, ip);
  live = [allocateService(service('s', { type: 'LoadBalancer' }), live[0], live)];
  t.is(live[0]!.spec!.ports![0]!.nodePort, np, 'the node port stays');
  t.is(live[0]!.spec!.clusterIP, ip);
  t.deepEqual(live[0]!.status, { loadBalancer: { ingress: [{ ip: '198.19.255.1', ipMode: 'VIP' }] } });
  t.is(live[0]!.spec!.allocateLoadBalancerNodePorts, true);
  // Re-applying the same manifest keeps the ingress IP.
  live = [allocateService(service('s', { type: 'LoadBalancer' }), live[0], live)];
  t.is(live[0]!.status!.loadBalancer!.ingress![0]!.ip, '198.19.255.1');
  live = [allocateService(service('s', { type: 'NodePort' }), live[0], live)];
  t.is(live[0]!.spec!.ports![0]!.nodePort, np);
  t.deepEqual(live[0]!.status, { loadBalancer: {} }, 'no ingress once it is not a LoadBalancer');
  live = [allocateService(service('s', { type: 'ClusterIP' }), live[0], live)];
  t.is(live[0]!.spec!.ports![0]!.nodePort, undefined, 'node ports are released');
  t.is(live[0]!.spec!.externalTrafficPolicy, undefined);
  t.is(live[0]!.spec!.clusterIP, ip);
});

test('LoadBalancer: ingress IPs from the external range, loadBalancerIP honoured, conflicts refused, externalIPs avoided', (t) => {
  const live = applyAll(
    service('x', { externalIPs: ['198.19.255.1'] }),
    service('a', { type: 'LoadBalancer', loadBalancerIP: '198.19.255.50' }),
    service('b', { type: 'LoadBalancer' }),
  );
  t.is(live[1]!.status!.loadBalancer!.ingress![0]!.ip, '198.19.255.50');
  t.is(live[2]!.status!.loadBalancer!.ingress![0]!.ip, '198.19.255.2', '.1 is an externalIP of x');
  t.throws(() => allocateService(service('c', { type: 'LoadBalancer', loadBalancerIP: '198.19.255.50' }), undefined, live), { message: /already in use by the load balancer of default\/a/ });
  t.throws(() => allocateService(service('d', { type: 'LoadBalancer', loadBalancerIP: '198.18.0.5' }), undefined, live), { message: /198\.19\.255\.0\/24 only/ });
  t.throws(() => allocateService(service('e', { loadBalancerIP: '198.19.255.9' }), undefined, live), { message: /only be used when `type` is 'LoadBalancer'/ });
  t.throws(() => allocateService(service('f', { type: 'LoadBalancer', loadBalancerSourceRanges: ['nope'] }), undefined, live), { message: /loadBalancerSourceRanges\[0\]/ });
});

test('LoadBalancer with externalTrafficPolicy Local gets a health-check node port, kept on re-apply, released after', (t) => {
  let live = applyAll(service('s', { type: 'LoadBalancer', externalTrafficPolicy: 'Local' }));
  t.is(live[0]!.spec!.ports![0]!.nodePort, 30000);
  t.is(live[0]!.spec!.healthCheckNodePort, 30001);
  live = [allocateService(service('s', { type: 'LoadBalancer', externalTrafficPolicy: 'Local' }), live[0], live)];
  t.is(live[0]!.spec!.healthCheckNodePort, 30001);
  live = [allocateService(service('s', { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster' }), live[0], live)];
  t.is(live[0]!.spec!.healthCheckNodePort, undefined);
  // Explicit, and refused where it does not belong or is taken.
  const [e] = applyAll(service('e', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 }));
  t.is(e!.spec!.healthCheckNodePort, 32000);
  t.throws(() => allocateService(service('f', { type: 'NodePort', healthCheckNodePort: 32001 }), undefined, []), { message: /healthCheckNodePort: Forbidden/ });
  t.throws(() => allocateService(service('g', { type: 'NodePort' }, [{ port: 80, nodePort: 32000 }]), undefined, [e!]), { message: /already allocated \(to default\/e\)/ });
});

test('session affinity gets its default timeout; bad specs are refused with the field named', (t) => {
  const [a] = applyAll(service('a', { sessionAffinity: 'ClientIP' }));
  t.deepEqual(a!.spec!.sessionAffinityConfig, { clientIP: { timeoutSeconds: 10800 } });
  const bad: [V1Service, RegExp][] = [
    [service('Bad'), /metadata\.name/],
    [service('p', {}, []), /spec\.ports: Required value/],
    [service('p', {}, [{ port: 80 }, { port: 81 }]), /spec\.ports\[0\]\.name: Required value/],
    [service('p', {}, [{ name: 'a', port: 80 }, { name: 'a', port: 81 }]), /spec\.ports\[1\]\.name: Duplicate value/],
    [service('p', {}, [{ port: 70000 }]), /spec\.ports\[0\]\.port/],
    [service('p', { type: 'Weird' }), /spec\.type: Unsupported value/],
    [service('p', { sessionAffinity: 'Sticky' }), /spec\.sessionAffinity/],
    [service('p', { externalTrafficPolicy: 'Local' }), /only be set for externally-accessible/],
  ];
  for (const [s, re] of bad) t.throws(() => allocateService(s, undefined, []), { instanceOf: InvalidObjectError, message: re });
});

test('the lab is single-stack: RequireDualStack and IPv6 families are refused (not narrowed), PreferDualStack becomes SingleStack', (t) => {
  t.throws(() => applyAll(service('web', { ipFamilyPolicy: 'RequireDualStack' })), { instanceOf: InvalidObjectError, message: /spec\.ipFamilyPolicy: Invalid value: "RequireDualStack"/ });
  t.throws(() => applyAll(service('web', { ipFamilies: ['IPv6'] })), { instanceOf: InvalidObjectError, message: /spec\.ipFamilies: .*IPv6/ });
  const [svc] = applyAll(service('web', { ipFamilyPolicy: 'PreferDualStack' }));
  t.like(svc!.spec, { ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4'] });
});
