import test from 'ava';

import { cidrContains, compareIPv4Text, formatCidr4, formatIPv4, isCidr6, isIPv6, parseCidr4, parseIPv4 } from '../../ts/model/index.js';

test('parseIPv4 accepts canonical dotted quads only', (t) => {
  t.is(parseIPv4('0.0.0.0'), 0);
  t.is(parseIPv4('255.255.255.255'), 0xffffffff);
  t.is(parseIPv4('198.19.0.1'), 0xc6130001);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.-4', ' 1.2.3.4', '1.2.3.4 ', 'a.b.c.d', '1..2.3']) {
    t.is(parseIPv4(bad), undefined, bad);
  }
  t.is(formatIPv4(0xc6130001), '198.19.0.1');
});

test('IPv6 literals are recognised (to be set aside)', (t) => {
  for (const ok of ['::', '::1', '2001:db8::5', '2001:db8:ffff::a', '2001:db8:0:0:0:0:0:1', '::ffff:198.18.0.1']) t.true(isIPv6(ok), ok);
  for (const bad of ['1.2.3.4', ':::', '1::2::3', 'g::1', '1:2:3:4:5:6:7:8:9', '12345::']) t.false(isIPv6(bad), bad);
  t.true(isCidr6('2001:db8::/32'));
  t.false(isCidr6('2001:db8::/129'));
});

test('CIDRs: host bits are cleared as kube-proxy does, prefixes 0…32, containment', (t) => {
  t.is(formatCidr4(parseCidr4('198.19.2.3/15')!), '198.18.0.0/15');
  t.is(formatCidr4(parseCidr4(' 0.0.0.0/0 ')!), '0.0.0.0/0');
  for (const bad of ['198.18.0.0', '198.18.0.0/33', '198.18.0.0/-1', '198.18.0.0/08', '198.18.0.0/15/8', 'x/8']) t.is(parseCidr4(bad), undefined, bad);
  const cidr = parseCidr4('198.18.0.0/24')!;
  t.true(cidrContains(cidr, parseIPv4('198.18.0.255')!));
  t.false(cidrContains(cidr, parseIPv4('198.18.1.0')!));
  t.true(cidrContains(parseCidr4('0.0.0.0/0')!, 0xffffffff));
  t.true(cidrContains(parseCidr4('198.18.0.1/32')!, parseIPv4('198.18.0.1')!));
});

test('IPv4 text compares numerically', (t) => {
  t.deepEqual(['198.18.0.10', '198.18.0.100', '198.18.0.9'].sort(compareIPv4Text), ['198.18.0.9', '198.18.0.10', '198.18.0.100']);
});
