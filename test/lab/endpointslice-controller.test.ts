// The lab's EndpointSlice controller: selected pods, conditions, named ports, grouping, placeholders.
import test from 'ava';
import type { V1Service } from '@kubernetes/client-node';

import { endpointSlicesFor, type SelectablePod } from '../../ts/lab/file-api/endpointslice-controller.js';

const zones = new Map([
  ['node-1', 'zone-a'],
  ['node-2', 'zone-b'],
]);

function pod(name: string, node: string, address: string, extra: Partial<SelectablePod> = {}): SelectablePod {
  return { name, namespace: 'default', node, address, labels: { app: 'hostnames' }, ports: [{ port: 9376, protocol: 'TCP', name: 'http' }], terminating: false, ...extra };
}

function service(spec: V1Service['spec'] = {}): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'hostnames', namespace: 'default' },
    spec: { selector: { app: 'hostnames' }, clusterIP: '198.19.1.1', ports: [{ port: 80, targetPort: 9376 as never, protocol: 'TCP' }], ...spec },
  };
}

test('one endpoint per selected pod, with conditions, node, zone and targetRef', (t) => {
  const pods = [pod('hostnames-2', 'node-2', '198.18.130.2'), pod('hostnames-1', 'node-1', '198.18.129.2'), pod('other', 'node-1', '198.18.129.3', { labels: { app: 'other' } })];
  const slices = endpointSlicesFor(service(), pods, zones);
  t.is(slices.length, 1);
  const [s] = slices;
  t.regex(s!.metadata!.name!, /^hostnames-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  t.deepEqual(s!.metadata!.labels, { 'kubernetes.io/service-name': 'hostnames', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' });
  t.is(s!.addressType, 'IPv4');
  t.deepEqual(s!.ports, [{ name: '', port: 9376, protocol: 'TCP' }]);
  t.deepEqual(s!.endpoints, [
    { addresses: ['198.18.129.2'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-1', zone: 'zone-a', targetRef: { kind: 'Pod', namespace: 'default', name: 'hostnames-1' } },
    { addresses: ['198.18.130.2'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-2', zone: 'zone-b', targetRef: { kind: 'Pod', namespace: 'default', name: 'hostnames-2' } },
  ]);
  // Same input, same names.
  t.deepEqual(endpointSlicesFor(service(), [...pods].reverse(), zones), slices);
});

test('a terminating pod is serving and terminating but not ready, unless publishNotReadyAddresses', (t) => {
  const pods = [pod('hostnames-1', 'node-1', '198.18.129.2'), pod('hostnames-2', 'node-2', '198.18.130.2', { terminating: true })];
  const [s] = endpointSlicesFor(service(), pods, zones);
  t.deepEqual(s!.endpoints!.map((e) => e.conditions), [
    { ready: true, serving: true, terminating: false },
    { ready: false, serving: true, terminating: true },
  ]);
  const [p] = endpointSlicesFor(service({ publishNotReadyAddresses: true }), pods, zones);
  t.deepEqual(p!.endpoints![1]!.conditions, { ready: true, serving: true, terminating: true });
});

test('named target ports resolve per pod; pods with different ports get different slices', (t) => {
  const svc = service({ ports: [{ name: 'web', port: 80, targetPort: 'http' as never, protocol: 'TCP' }, { name: 'dns', port: 53, targetPort: 'dns' as never, protocol: 'UDP' }] });
  const pods = [
    pod('a-1', 'node-1', '198.18.129.2', { ports: [{ port: 8080, protocol: 'TCP', name: 'http' }, { port: 5353, protocol: 'UDP', name: 'dns' }] }),
    pod('a-2', 'node-2', '198.18.130.2', { ports: [{ port: 9090, protocol: 'TCP', name: 'http' }] }),
    // A name that matches only with the wrong protocol does not resolve.
    pod('a-3', 'node-2', '198.18.130.3', { ports: [{ port: 9090, protocol: 'TCP', name: 'http' }, { port: 53, protocol: 'TCP', name: 'dns' }] }),
  ];
  const slices = endpointSlicesFor(svc, pods, zones);
  const byPorts = Object.fromEntries(slices.map((s) => [JSON.stringify(s.ports), s.endpoints!.map((e) => e.targetRef!.name)]));
  t.deepEqual(byPorts, {
    [JSON.stringify([{ name: 'web', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 5353, protocol: 'UDP' }])]: ['a-1'],
    [JSON.stringify([{ name: 'web', port: 9090, protocol: 'TCP' }])]: ['a-2', 'a-3'],
  });
  t.is(new Set(slices.map((s) => s.metadata!.name)).size, 2);
});

test('no selector: no managed slices; a selector that matches nothing: one empty placeholder', (t) => {
  t.deepEqual(endpointSlicesFor(service({ selector: undefined }), [pod('x', 'node-1', '198.18.129.2')], zones), []);
  const slices = endpointSlicesFor(service({ selector: { app: 'nothing' } }), [pod('x', 'node-1', '198.18.129.2')], zones);
  t.is(slices.length, 1);
  t.deepEqual(slices[0]!.endpoints, []);
  t.deepEqual(slices[0]!.ports, []);
});

test('pods of another namespace are not selected; headless Services are labelled', (t) => {
  const slices = endpointSlicesFor(service({ clusterIP: 'None' }), [pod('x', 'node-1', '198.18.129.2', { namespace: 'other' })], zones);
  t.deepEqual(slices[0]!.endpoints, []);
  t.is(slices[0]!.metadata!.labels!['service.kubernetes.io/headless'], '');
});

test('more than 100 endpoints are split into slices of at most 100', (t) => {
  const pods = Array.from({ length: 230 }, (_, i) => pod(`p-${i}`, 'node-1', `198.18.129.${(i % 250) + 2}`));
  const slices = endpointSlicesFor(service(), pods, zones);
  t.deepEqual(slices.map((s) => s.endpoints!.length), [100, 100, 30]);
  t.is(new Set(slices.map((s) => s.metadata!.name)).size, 3);
});
