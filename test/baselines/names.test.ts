// Chain names, probabilities and the scale generator against kube-proxy's own figures.
import test from 'ava';

import {
  LARGE_CLUSTER_ENDPOINTS,
  baselineView,
  generateScale,
  iptablesChains,
  iptablesRestoreInput,
  nftEndpointBase,
  nftServiceBase,
  probability,
  syntheticClusterIP,
} from '../../ts/baselines/index.js';

test('iptables chain hashes equal the ones in kube-proxy’s tests (ns1/svc1:p80, 10.180.0.1:80)', (t) => {
  t.is(iptablesChains.svc('ns1/svc1:p80', 'tcp'), 'KUBE-SVC-XPGD46QRK7WJZT7O');
  t.is(iptablesChains.sep('ns1/svc1:p80', 'tcp', '10.180.0.1:80'), 'KUBE-SEP-SXIVWICOYRO3J4NJ');
  // Same hash, other prefixes.
  t.is(iptablesChains.ext('ns1/svc1:p80', 'tcp'), 'KUBE-EXT-XPGD46QRK7WJZT7O');
  t.is(iptablesChains.svl('ns1/svc1:p80', 'tcp'), 'KUBE-SVL-XPGD46QRK7WJZT7O');
  t.is(iptablesChains.fw('ns1/svc1:p80', 'tcp'), 'KUBE-FW-XPGD46QRK7WJZT7O');
});

test('nftables chain names equal the ones in kube-proxy’s tests', (t) => {
  t.is(nftServiceBase('ns1', 'svc1', 'tcp', 'p80'), 'ULMVA6XW-ns1/svc1/tcp/p80');
  t.is(nftServiceBase('ns2', 'svc2', 'tcp', 'p80'), '42NFTM6N-ns2/svc2/tcp/p80');
  t.is(nftEndpointBase('ns1', 'svc1', 'tcp', 'p80', '10.180.0.1', 80), '5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80');
  t.is(nftEndpointBase('ns2', 'svc2', 'tcp', 'p80', '10.180.0.2', 80), 'SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80');
});

test('probabilities are Go’s %0.10f of 1/n, ties rounded to even', (t) => {
  t.deepEqual([2, 3, 4, 7, 10, 1000].map(probability), ['0.5000000000', '0.3333333333', '0.2500000000', '0.1428571429', '0.1000000000', '0.0010000000']);
  // 1/2048 = 0.00048828125 exactly: Go prints ...812, toFixed would print ...813.
  t.is(probability(2048), '0.0004882812');
});

test('generateScale is deterministic, unique per endpoint, and the last Service is matched last', (t) => {
  const a = generateScale(40, 3);
  t.deepEqual(a, generateScale(40, 3));
  const view = baselineView(a);
  t.is(view.servicePorts.length, 40);
  t.is(view.servicePorts.at(-1)!.clusterIPs[0], syntheticClusterIP(39));
  const keys = view.servicePorts.flatMap((sp) => sp.clusterEndpoints.map((ep) => ep.key));
  t.is(new Set(keys).size, 120);
  const services = iptablesRestoreInput(a)
    .split('\n')
    .filter((l) => l.startsWith('-A KUBE-SERVICES'));
  t.true(services.at(-2)!.includes(`-d ${syntheticClusterIP(39)} `), 'last Service rule just before the NodePort jump');
});

test('generateScale wraps the endpoint range onto new target ports past 32766 endpoints', (t) => {
  const view = baselineView(generateScale(3300, 10));
  const keys = view.servicePorts.flatMap((sp) => sp.clusterEndpoints.map((ep) => ep.key));
  t.is(new Set(keys).size, 33000);
  t.true(keys.some((k) => k.endsWith(':8081')));
});

test('large clusters (> 1000 endpoints) drop the per-endpoint comments, as kube-proxy does', (t) => {
  const small = iptablesRestoreInput(generateScale(100, 10)); // exactly 1000: not large
  const large = iptablesRestoreInput(generateScale(101, 10));
  t.true(LARGE_CLUSTER_ENDPOINTS === 1000);
  t.true(small.split('\n').some((l) => /^-A KUBE-SEP-\w+ -m comment --comment bench\/svc-00000:http -s /.test(l)));
  t.false(large.split('\n').some((l) => /^-A KUBE-SEP-/.test(l) && l.includes('--comment')));
  t.false(large.split('\n').some((l) => /^-A KUBE-SVC-\w+ -m comment --comment "bench\/svc-\d+:http -> /.test(l)));
  // Service-level comments stay.
  t.true(large.includes('-m comment --comment "bench/svc-00100:http cluster IP"'));
});
