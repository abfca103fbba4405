// The address plan and naming rules, as lab.md states them.
import test from 'ava';

import { clientAddress, nodeAddress, podAddress, podCidr, secondClientAddress, secondNodeAddress, vtepAddress, vtepMac } from '../../ts/lab/net/address-plan.js';
import { checkPodName, podHostInterface, realNetnsName } from '../../ts/lab/net/naming.js';

test('node, client and pod addresses follow lab.md', (t) => {
  t.is(nodeAddress(1), '198.18.0.11');
  t.is(nodeAddress(16), '198.18.0.26');
  t.is(clientAddress(1), '198.18.0.100');
  t.is(clientAddress(21), '198.18.0.120');
  t.is(podCidr(3), '198.18.131.0/24');
  t.is(podAddress(2, 7), '198.18.130.7');
  t.throws(() => nodeAddress(0));
  t.throws(() => clientAddress(22));
  t.throws(() => podAddress(1, 1), undefined, '.1 stays free');
});

test('real names carry the run id and fit the kernel limits', (t) => {
  t.is(realNetnsName('a1b2c3', 'node-1'), 'bpl-a1b2c3-node-1');
  const long = realNetnsName('a1b2c3', 'a-very-long-deployment-name-7f9c8d6b5-xk2lq');
  t.true(long.startsWith('bpl-a1b2c3-') && long.length <= 32);
  t.not(long, realNetnsName('a1b2c3', 'a-very-long-deployment-name-7f9c8d6b5-xk2lr'), 'a hash keeps them apart');
  t.is(podHostInterface('hostnames-1'), 'hostnames-1');
  t.is(podHostInterface('hostnames-7f9c8d6b5-xk2lq').length, 15);
});

test('pod names are DNS labels that do not shadow lab namespaces', (t) => {
  t.notThrows(() => checkPodName('hostnames-1'));
  for (const bad of ['fabric', 'node-2', 'client-1', 'Upper', '-x', 'x_y', 'a'.repeat(64)]) t.throws(() => checkPodName(bad), undefined, bad);
});

test('the second node network and the VXLAN VTEPs stay inside 198.18.0.0/15 and clear of the rest', (t) => {
  t.is(secondNodeAddress(1), '198.18.2.11');
  t.is(secondClientAddress(1), '198.18.2.100');
  t.is(vtepAddress(1), '198.18.129.0', "the network address of node-1's pod CIDR, as flannel does");
  t.is(vtepMac(12), '0e:c6:12:00:00:0c');
  t.throws(() => secondNodeAddress(17));
});
