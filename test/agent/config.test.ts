import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { rodataOf } from '../../ts/abi/config.js';
import { ConfigError, parseDuration, readConfigFile, resolveAgentConfig, splitBindAddress } from '../../ts/agent/config.js';
import { datapathConfigFor } from '../../ts/agent/datapath-config.js';

test('defaults are kube-proxy\'s', (t) => {
  const c = resolveAgentConfig({}, {}, 'node-a');
  t.is(c.proxy.syncPeriod, 30_000);
  t.is(c.proxy.minSyncPeriod, 1_000);
  t.is(c.proxy.conntrack.tcpEstablishedTimeout, 24 * 3600_000);
  t.is(c.proxy.conntrack.tcpCloseWaitTimeout, 3600_000);
  t.is(c.healthzBindAddress, '0.0.0.0:10256');
  t.is(c.metricsBindAddress, '127.0.0.1:10249');
  t.is(c.hostnameOverride, 'node-a');
  t.deepEqual(c.source, { kind: 'kubernetes' });
});

test('a config file with kube-proxy field names, overridden by flags', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-config-'));
  t.teardown(() => rmSync(dir, { recursive: true }));
  const path = join(dir, 'config.yaml');
  writeFileSync(path, `apiVersion: bpfproxy.io/v1alpha1
kind: BpfProxyConfiguration
clusterCIDR: 198.18.128.0/17
nodePortAddresses: [198.18.0.0/24]
masqueradeAll: true
syncPeriod: 1m
minSyncPeriod: 500ms
conntrack: { tcpEstablishedTimeout: 2h, udpTimeout: 45s }
sourceDir: /etc/bpfproxy/cluster
mapSizes: { conntrack: 1024 }
`);
  const c = resolveAgentConfig(readConfigFile(path), { syncPeriod: '2m', hostnameOverride: 'node-1' }, 'ignored');
  t.is(c.proxy.clusterCIDR, '198.18.128.0/17');
  t.deepEqual(c.proxy.nodePortAddresses, ['198.18.0.0/24']);
  t.true(c.proxy.masqueradeAll);
  t.is(c.proxy.syncPeriod, 120_000, 'the flag wins');
  t.is(c.proxy.minSyncPeriod, 500);
  t.is(c.proxy.conntrack.tcpEstablishedTimeout, 7200_000);
  t.is(c.proxy.conntrack.udpTimeout, 45_000);
  t.is(c.proxy.conntrack.tcpCloseWaitTimeout, 3600_000, 'unset fields keep their default');
  t.deepEqual(c.source, { kind: 'file', dir: '/etc/bpfproxy/cluster' });
  t.is(c.mapSizes.conntrack, 1024);
  t.is(c.hostnameOverride, 'node-1');
});

test('bad configuration is refused with the field named', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-config-'));
  t.teardown(() => rmSync(dir, { recursive: true }));
  const path = join(dir, 'bad.yaml');
  writeFileSync(path, 'kind: BpfProxyConfiguration\nsyncPerod: 30s\n');
  t.throws(() => readConfigFile(path), { instanceOf: ConfigError, message: /unknown field\(s\) syncPerod/ });
  t.throws(() => resolveAgentConfig({ syncPeriod: 'soon' }, {}, 'n'), { message: /syncPeriod: 'soon' is not a duration/ });
  t.throws(() => resolveAgentConfig({ clusterCIDR: '198.18.0.0/33' }, {}, 'n'), { message: /clusterCIDR/ });
  t.throws(() => resolveAgentConfig({ maglevTableSize: 1000 }, {}, 'n'), { message: /maglevTableSize/ });
  t.throws(() => resolveAgentConfig({ minSyncPeriod: '1m', syncPeriod: '30s' }, {}, 'n'), { message: /minSyncPeriod must not exceed syncPeriod/ });
  t.throws(() => resolveAgentConfig({ mapSizes: { conntrack: 0 } }, {}, 'n'), { message: /mapSizes.conntrack/ });
  t.throws(() => resolveAgentConfig({ serviceInterface: 'a-name-too-long-for-linux' }, {}, 'n'), { message: /serviceInterface: 'a-name-too-long-for-linux' is not a valid interface name/ });
  t.throws(() => resolveAgentConfig({ serviceInterface: 'lo' }, {}, 'n'), { message: /serviceInterface: 'lo' is the loopback device/ });
  t.throws(() => resolveAgentConfig({ serviceInterface: 'eth0', uplinkInterface: 'eth0' }, {}, 'n'), { message: /serviceInterface: 'eth0' is the uplink/ });
  t.throws(() => resolveAgentConfig({ serviceCIDRs: '198.19.0.0/17' as never }, {}, 'n'), { message: /serviceCIDRs: expected a list of strings, got the string/ });
  t.throws(() => resolveAgentConfig({ serviceCIDRs: ['198.19.0.0/33'] }, {}, 'n'), { message: /serviceCIDRs: '198.19.0.0\/33' is not a CIDR/ });
  t.throws(() => resolveAgentConfig({ serviceCIDRs: ['0.0.0.0/0'] }, {}, 'n'), { message: /serviceCIDRs: '0.0.0.0\/0' is wider than a \/8/ });
});

test('the service device: bpfproxy0 unless configured, the ServiceCIDR objects unless serviceCIDRs is given', (t) => {
  const c = resolveAgentConfig({}, {}, 'n');
  t.is(c.serviceInterface, 'bpfproxy0');
  t.is(c.serviceCIDRs, undefined);
  t.is(resolveAgentConfig({ serviceInterface: '' }, {}, 'n').serviceInterface, '', "'' turns it off");
  t.deepEqual(resolveAgentConfig({ serviceCIDRs: ['198.19.0.0/17', '2001:db8:2::/112'] }, {}, 'n').serviceCIDRs, ['198.19.0.0/17'], 'IPv6 set aside');
});

test('durations and bind addresses parse as kube-proxy writes them', (t) => {
  t.is(parseDuration('1h30m', 'x'), 5_400_000);
  t.is(parseDuration('250ms', 'x'), 250);
  t.is(parseDuration(10, 'x'), 10_000);
  t.throws(() => parseDuration('5 minutes', 'x'));
  t.deepEqual(splitBindAddress(':10256', 'x'), { host: '0.0.0.0', port: 10256 });
  t.deepEqual(splitBindAddress('127.0.0.1:10249', 'x'), { host: '127.0.0.1', port: 10249 });
  t.throws(() => splitBindAddress('localhost', 'x'));
});

test('bad values are refused with the field and what was expected, before anything is resolved', (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ clusterCIDR: 5 }, /^clusterCIDR: expected a string, got number 5$/],
    [{ masqueradeAll: 'false' }, /^masqueradeAll: expected true or false, got the string "false"$/],
    [{ nodePortAddresses: '198.18.0.0/24' }, /^nodePortAddresses: expected a list of strings, got the string/],
    [{ syncPeriod: '0s' }, /^syncPeriod: must be more than 0/],
    [{ syncPeriod: true }, /^syncPeriod: expected a duration/],
    [{ conntrack: { udpTimeout: [] } }, /^conntrack\.udpTimeout: expected a duration .*, got a list$/],
    [{ conntrack: 'x' }, /^conntrack: expected a mapping, got the string "x"$/],
    [{ maglevTableSize: '251' }, /^maglevTableSize: expected an integer, got the string "251"$/],
    [{ mapSizes: { conntrack: 1 } }, /^mapSizes\.conntrack: 1 is below 1024/],
    [{ mapSizes: { services: 1, backends: 1 } }, /^mapSizes\.services: 1 is below 8/],
    [{ clientConnection: { kubeconfig: 3 } }, /^clientConnection\.kubeconfig: expected a string, got number 3$/],
    [{ healthzBindAddress: null }, /^healthzBindAddress: expected a string, got null$/],
  ];
  for (const [file, message] of cases) t.throws(() => resolveAgentConfig(file as never, {}, 'n'), { instanceOf: ConfigError, message }, JSON.stringify(file));
});

test('conntrack lifetimes reach the datapath from kube-proxy\'s conntrack options; the rest are config.h\'s', (t) => {
  const lifetimes = (conntrack: Record<string, string> | undefined) => {
    const { config } = datapathConfigFor(resolveAgentConfig(conntrack ? { conntrack } : {}, {}, 'node-a'), '198.18.0.11');
    return Object.fromEntries(Object.entries(config).filter(([k]) => k.startsWith('ct')));
  };
  t.deepEqual(lifetimes(undefined), { ctTcpEstablishedSeconds: 86400, ctTcpCloseWaitSeconds: 3600, ctUdpSeconds: 30, ctUdpStreamSeconds: 120 });
  t.deepEqual(lifetimes({ tcpEstablishedTimeout: '2h', tcpCloseWaitTimeout: '20m', udpTimeout: '45s', udpStreamTimeout: '5m' }),
    { ctTcpEstablishedSeconds: 7200, ctTcpCloseWaitSeconds: 1200, ctUdpSeconds: 45, ctUdpStreamSeconds: 300 });
  const rodata = rodataOf(datapathConfigFor(resolveAgentConfig({}, {}, 'node-a'), '198.18.0.11').config);
  t.like(rodata, { cfg_ct_tcp_established_s: 86400, cfg_ct_tcp_close_wait_s: 3600, cfg_ct_udp_s: 30, cfg_ct_udp_stream_s: 120 });
  t.false('cfg_ct_tcp_syn_s' in rodata || 'cfg_ct_tcp_time_wait_s' in rodata || 'cfg_ct_tcp_reset_s' in rodata, 'SYN_SENT, TIME_WAIT and CLOSE keep bpf/lib/config.h\'s');
});

test('uplinks: one (uplinkInterface), several (uplinkInterfaces, the primary first), or the default route\'s', (t) => {
  t.deepEqual(resolveAgentConfig({}, {}, 'n').uplinkInterfaces, [], 'none named: the default route\'s device');
  t.deepEqual(resolveAgentConfig({ uplinkInterface: 'eth0' }, {}, 'n').uplinkInterfaces, ['eth0']);
  t.deepEqual(resolveAgentConfig({ uplinkInterfaces: ['eth0', 'eth1'] }, {}, 'n').uplinkInterfaces, ['eth0', 'eth1']);
  t.deepEqual(resolveAgentConfig({ uplinkInterfaces: ['eth0', 'eth1'] }, { uplinkInterface: 'bond0' }, 'n').uplinkInterfaces, ['bond0'], 'the flag wins');
  t.throws(() => resolveAgentConfig({ uplinkInterface: 'eth0', uplinkInterfaces: ['eth1'] }, {}, 'n'), { instanceOf: ConfigError, message: /set one of them/ });
  t.throws(() => resolveAgentConfig({ uplinkInterfaces: ['eth0', 'eth0'] }, {}, 'n'), { message: /distinct interface names/ });
  t.throws(() => resolveAgentConfig({ uplinkInterfaces: ['eth0', ''] }, {}, 'n'), { message: /distinct interface names/ });
  t.throws(() => resolveAgentConfig({ uplinkInterfaces: 'eth0' } as never, {}, 'n'), { message: /^uplinkInterfaces: expected a list of strings/ });
});
