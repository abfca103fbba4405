import test from 'ava';

import { frontend, model, service, slice, type EndpointSpec } from './_fixture.js';

// kube-proxy topologyModeFromHints: node hints (PreferSameNode) win when every ready endpoint has
// one and one names this node; then zone hints (PreferSameZone / PreferClose) likewise; else all.
// The test node is node-a in zone-a.

const CIP = 'ClusterIP 198.19.0.10:80/TCP';
const run = (endpoints: EndpointSpec[], spec = '') => {
  const state = model(service('web', '198.19.0.10', spec) + slice('web', 'web-1', endpoints));
  return { endpoints: frontend(state, CIP).clusterEndpoints, mode: state.services[0]!.topologyMode };
};

test('PreferSameZone / PreferClose: zone hints for our zone narrow the cluster set', (t) => {
  for (const distribution of ['PreferSameZone', 'PreferClose']) {
    t.deepEqual(
      run(
        [
          { ip: '198.18.129.5', zone: 'zone-a', forZones: ['zone-a'] },
          { ip: '198.18.130.5', zone: 'zone-b', forZones: ['zone-b'] },
          { ip: '198.18.131.5', zone: 'zone-b', forZones: ['zone-b', 'zone-a'] },
        ],
        `  trafficDistribution: ${distribution}`,
      ),
      { endpoints: ['198.18.129.5:8080', '198.18.131.5:8080'], mode: 'PreferSameZone' },
    );
  }
});

test('zone hints are ignored unless every ready endpoint has one', (t) => {
  t.deepEqual(
    run([
      { ip: '198.18.129.5', forZones: ['zone-a'] },
      { ip: '198.18.130.5' },
    ]),
    { endpoints: ['198.18.129.5:8080', '198.18.130.5:8080'], mode: 'None' },
  );
});

test('hints of endpoints that are not ready do not count', (t) => {
  t.deepEqual(
    run([
      { ip: '198.18.129.5', forZones: ['zone-a'] },
      { ip: '198.18.130.5', forZones: ['zone-b'] },
      { ip: '198.18.131.5', ready: false, serving: false },
    ]),
    { endpoints: ['198.18.129.5:8080'], mode: 'PreferSameZone' },
  );
});

test('zone hints that name no endpoint for our zone are ignored (all endpoints used)', (t) => {
  t.deepEqual(
    run([
      { ip: '198.18.129.5', forZones: ['zone-b'] },
      { ip: '198.18.130.5', forZones: ['zone-c'] },
    ]),
    { endpoints: ['198.18.129.5:8080', '198.18.130.5:8080'], mode: 'None' },
  );
});

test('a node without a zone ignores zone hints', (t) => {
  const state = model(
    service('web', '198.19.0.10') +
      slice('web', 'web-1', [
        { ip: '198.18.129.5', forZones: ['zone-a'] },
        { ip: '198.18.130.5', forZones: ['zone-b'] },
      ]),
    { node: { zone: undefined } },
  );
  t.deepEqual(frontend(state, CIP).clusterEndpoints, ['198.18.129.5:8080', '198.18.130.5:8080']);
});

test('PreferSameNode: node hints naming this node win over zone hints', (t) => {
  t.deepEqual(
    run(
      [
        { ip: '198.18.129.5', node: 'node-a', forNodes: ['node-a'], forZones: ['zone-a'] },
        { ip: '198.18.129.9', node: 'node-c', forNodes: ['node-c'], forZones: ['zone-a'] },
        { ip: '198.18.130.5', node: 'node-b', forNodes: ['node-b'], forZones: ['zone-b'] },
      ],
      '  trafficDistribution: PreferSameNode',
    ),
    { endpoints: ['198.18.129.5:8080'], mode: 'PreferSameNode' },
  );
});

test('PreferSameNode falls back to zone hints when no endpoint is hinted for this node', (t) => {
  t.deepEqual(
    run([
      { ip: '198.18.129.9', node: 'node-c', forNodes: ['node-c'], forZones: ['zone-a'] },
      { ip: '198.18.130.5', node: 'node-b', forNodes: ['node-b'], forZones: ['zone-b'] },
    ]),
    { endpoints: ['198.18.129.9:8080'], mode: 'PreferSameZone' },
  );
});

test('topology never applies to the Local policy set, and the terminating fallback ignores it', (t) => {
  const local = model(
    service('web', '198.19.0.10', '  internalTrafficPolicy: Local') +
      slice('web', 'web-1', [
        { ip: '198.18.129.5', node: 'node-a', forZones: ['zone-b'] },
        { ip: '198.18.130.5', node: 'node-b', forZones: ['zone-a'] },
      ]),
  );
  t.deepEqual(frontend(local, CIP).localEndpoints, ['198.18.129.5:8080']);
  t.deepEqual(
    run([
      { ip: '198.18.129.5', ready: false, serving: true, terminating: true, forZones: ['zone-b'] },
    ]),
    { endpoints: ['198.18.129.5:8080'], mode: 'None' },
  );
});
