// The node network: clients and nodes share the fabric bridge; clients see node IPs and the
// LoadBalancer range, never pod IPs; nodes route each other's pod CIDRs and the Service range.
import { privileged } from '../helpers/env.js';
import { labFor } from './_fixture.js';

interface Route {
  dst: string;
  gateway?: string;
  dev?: string;
  nexthops?: { gateway: string; dev: string }[];
}

privileged('a client reaches every node IP, and cannot reach a pod IP (no route)', async (t) => {
  const lab = await labFor(t, { nodes: 3, clients: 2 });
  const pod = await lab.addPod({ name: 'hostnames-1', node: 'node-2', ports: [{ port: 9376, protocol: 'TCP' }] });
  for (const client of ['client-1', 'client-2']) {
    for (const node of lab.nodes) {
      await t.notThrowsAsync(lab.exec(client, 'ping', ['-c', '1', '-W', '1', node.address]), `${client} pings ${node.name}`);
      // Nothing listens on the node: a refusal proves the node answered (as opposed to a timeout).
      const [r] = await lab.request(client, { address: node.address, port: 31000, timeoutMs: 2000 });
      t.like(r, { ok: false, error: 'refused' }, `${client} → ${node.name}`);
    }
    const [direct] = await lab.request(client, { address: pod.address, port: 9376, timeoutMs: 2000 });
    t.like(direct, { ok: false, error: 'unreachable' }, `${client} → pod IP`);
  }
  // From a node, the same pod is one hop away (another node's pod CIDR via that node).
  t.like((await lab.request('node-1', { address: pod.address, port: 9376 }))[0], { ok: true, answer: 'hostnames-1' });
  t.like((await lab.request('node-2', { address: pod.address, port: 9376 }))[0], { ok: true, answer: 'hostnames-1' });
});

privileged('nodes have the address plan: uplink, forwarding, pod CIDR routes; no service device until an agent makes one', async (t) => {
  const lab = await labFor(t, { nodes: 3, clients: 0 });
  t.deepEqual(lab.nodes.map((n) => [n.name, n.address, n.podCidr]), [
    ['node-1', '198.18.0.11', '198.18.129.0/24'],
    ['node-2', '198.18.0.12', '198.18.130.0/24'],
    ['node-3', '198.18.0.13', '198.18.131.0/24'],
  ]);
  const routes = JSON.parse(await lab.exec('node-2', 'ip', ['-j', 'route', 'show'])) as Route[];
  const byDst = Object.fromEntries(routes.map((r) => [r.dst, r]));
  t.like(byDst['198.18.129.0/24'], { gateway: '198.18.0.11', dev: 'eth0' });
  t.like(byDst['198.18.131.0/24'], { gateway: '198.18.0.13', dev: 'eth0' });
  t.is(byDst['198.18.130.0/24'], undefined, 'a node routes its own pods one by one');
  t.is(byDst['198.19.0.0/17'], undefined, 'the agent routes service addresses (ts/agent/service-device.ts)');
  t.like(byDst['default'], { gateway: '198.18.0.1', dev: 'eth0' }, 'the rest goes to the node network\'s router, as on a real node');
  t.false((await lab.exec('node-2', 'ip', ['-o', 'link', 'show'])).includes('svc0'));
  t.is((await lab.exec('node-2', 'sysctl', ['-n', 'net.ipv4.ip_forward'])).trim(), '1');
  t.like(JSON.parse(await lab.exec('node-2', 'ip', ['-j', 'addr', 'show', 'dev', 'eth0']))[0].addr_info[0], { local: '198.18.0.12', prefixlen: 24 });
  // The uplink's peer is a port of the fabric bridge.
  const ports = JSON.parse(await lab.exec('fabric', 'ip', ['-j', 'link', 'show', 'master', 'br0'])) as { ifname: string }[];
  t.deepEqual(ports.map((p) => p.ifname).sort(), ['node-1', 'node-2', 'node-3']);
});

privileged('clients route the LoadBalancer range by ECMP over all nodes, or through one chosen node', async (t) => {
  const ecmp = await labFor(t, { nodes: 2, clients: 1 });
  const [ecmpRoute] = JSON.parse(await ecmp.exec('client-1', 'ip', ['-j', 'route', 'show', '198.19.255.0/24'])) as Route[];
  t.deepEqual(ecmpRoute?.nexthops?.map((h) => h.gateway), ['198.18.0.11', '198.18.0.12']);
  t.is((await ecmp.exec('client-1', 'sysctl', ['-n', 'net.ipv4.fib_multipath_hash_policy'])).trim(), '1');
  const routes = JSON.parse(await ecmp.exec('client-1', 'ip', ['-j', 'route', 'show'])) as Route[];
  t.deepEqual(routes.map((r) => r.dst).sort(), ['198.18.0.0/24', '198.19.255.0/24'], 'no route to pods or ClusterIPs');

  const single = await labFor(t, { nodes: 2, clients: 1, lbRoute: { mode: 'node', node: 2 } });
  const [singleRoute] = JSON.parse(await single.exec('client-1', 'ip', ['-j', 'route', 'show', '198.19.255.0/24'])) as Route[];
  t.like(singleRoute, { gateway: '198.18.0.12', dev: 'eth0' });
});

/** Packets a device has sent (its own counter). */
async function txPackets(lab: Awaited<ReturnType<typeof labFor>>, node: string, dev: string): Promise<number> {
  const [link] = JSON.parse(await lab.exec(node, 'ip', ['-j', '-s', 'link', 'show', 'dev', dev])) as { stats64: { tx: { packets: number } } }[];
  return link!.stats64.tx.packets;
}

privileged('podNetwork vxlan: flannel-like VXLAN devices carry pod traffic between nodes, pods get the overlay MTU', async (t) => {
  const lab = await labFor(t, { nodes: 3, clients: 0, podNetwork: 'vxlan' });
  t.is(lab.status().podNetwork, 'vxlan');
  t.like(lab.node(2).vtep, { device: 'vxlan0', vni: 1, port: 8472, address: '198.18.130.0', mac: '0e:c6:12:00:00:02', mtu: 1450 });
  const [dev] = JSON.parse(await lab.exec('node-2', 'ip', ['-j', '-d', 'link', 'show', 'dev', 'vxlan0'])) as { address: string; mtu: number; linkinfo: { info_data: { id: number; local: string; port: number; learning: boolean } } }[];
  t.like(dev, { address: '0e:c6:12:00:00:02', mtu: 1450, linkinfo: { info_data: { id: 1, local: '198.18.0.12', port: 8472, learning: false } } });
  const routes = JSON.parse(await lab.exec('node-2', 'ip', ['-j', 'route', 'show'])) as (Route & { flags?: string[] })[];
  const byDst = Object.fromEntries(routes.map((r) => [r.dst, r]));
  t.like(byDst['198.18.129.0/24'], { gateway: '198.18.129.0', dev: 'vxlan0', flags: ['onlink'] });
  t.like(byDst['198.18.131.0/24'], { gateway: '198.18.131.0', dev: 'vxlan0', flags: ['onlink'] });
  const neigh = JSON.parse(await lab.exec('node-2', 'ip', ['-j', 'neigh', 'show', 'dev', 'vxlan0'])) as { dst: string; lladdr: string; state: string[] }[];
  t.deepEqual(neigh.map((n) => [n.dst, n.lladdr, n.state[0]]).sort(), [['198.18.129.0', '0e:c6:12:00:00:01', 'PERMANENT'], ['198.18.131.0', '0e:c6:12:00:00:03', 'PERMANENT']]);
  const fdb = JSON.parse(await lab.exec('node-2', 'bridge', ['-j', 'fdb', 'show', 'dev', 'vxlan0'])) as { mac: string; dst: string }[];
  t.deepEqual(fdb.map((f) => [f.mac, f.dst]).sort(), [['0e:c6:12:00:00:01', '198.18.0.11'], ['0e:c6:12:00:00:03', '198.18.0.13']]);

  const server = await lab.addPod({ name: 'hostnames-1', node: 'node-1', ports: [{ port: 9376, protocol: 'TCP' }] });
  await lab.addPod({ name: 'client-pod', node: 'node-2', ports: [{ port: 8080, protocol: 'TCP' }] });
  const [podLink] = JSON.parse(await lab.exec('client-pod', 'ip', ['-j', 'link', 'show', 'dev', 'eth0'])) as { mtu: number }[];
  t.is(podLink!.mtu, 1450, "the pod's MTU leaves room for the VXLAN headers");
  const before = await txPackets(lab, 'node-2', 'vxlan0');
  t.like((await lab.request('client-pod', { address: server.address, port: 9376 }))[0], { ok: true, answer: 'hostnames-1' });
  t.true((await txPackets(lab, 'node-2', 'vxlan0')) > before, 'the packets went through the overlay');
  const big = await lab.transfer('client-pod', { address: server.address, port: 9376, direction: 'upload', bytes: 4 * 1024 * 1024, timeoutMs: 20_000 });
  t.true(big.ok, `4 MiB across the overlay: ${JSON.stringify(big)}`);
});

privileged('secondNetwork: a node with two uplinks, reached by clients on either network', async (t) => {
  const lab = await labFor(t, { nodes: 2, clients: 1, lbRoute: { mode: 'node', node: 2 }, secondNetwork: { nodes: [1], clients: 1 } });
  t.like(lab.node(1).secondUplink, { interface: 'eth1', address: '198.18.2.11' });
  t.is(lab.node(2).secondUplink, undefined);
  t.deepEqual(lab.clients.map((c) => [c.name, c.address, c.network]), [['client-1', '198.18.0.100', undefined], ['client-2', '198.18.2.100', 'second']]);
  const ports = JSON.parse(await lab.exec('fabric', 'ip', ['-j', 'link', 'show', 'master', 'br1'])) as { ifname: string }[];
  t.deepEqual(ports.map((p) => p.ifname).sort(), ['client-2', 'node-1-eth1']);
  // Nothing listens on the node: a refusal proves node-1 answered on each network.
  t.like((await lab.request('client-2', { address: '198.18.2.11', port: 31000, timeoutMs: 2000 }))[0], { ok: false, error: 'refused' });
  t.like((await lab.request('client-1', { address: '198.18.0.11', port: 31000, timeoutMs: 2000 }))[0], { ok: false, error: 'refused' });
  t.like((await lab.request('client-2', { address: '198.18.0.12', port: 31000, timeoutMs: 2000 }))[0], { ok: false, error: 'unreachable' }, 'the networks are apart');
  const [lb] = JSON.parse(await lab.exec('client-2', 'ip', ['-j', 'route', 'show', '198.19.255.0/24'])) as Route[];
  t.like(lb, { gateway: '198.18.2.11', dev: 'eth0' }, 'the second network reaches LoadBalancer IPs through node-1');
});
