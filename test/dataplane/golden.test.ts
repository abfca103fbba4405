// Control-plane golden tests: Service and EndpointSlice YAML in, the sorted dump of the real maps
// out, through the same path the agent takes (model → entries → reconciler → kernel maps).
import type { ExecutionContext } from 'ava';

import { privilegedSerial } from '../helpers/env.js';
import { scope } from '../helpers/scope.js';

import { computeEntries } from '../../ts/dataplane/entries.js';
import { dumpServiceMaps } from '../../ts/dataplane/dump.js';
import { loadDatapath, type Datapath } from '../../ts/dataplane/loader.js';
import { Reconciler } from '../../ts/dataplane/reconciler.js';
import { computeDesiredState, resolveProxyConfig, type IdState } from '../../ts/model/index.js';
import { objectsOf, program } from '../helpers/program.js';

const M = 251;
const config = resolveProxyConfig({ clusterCIDR: '198.18.128.0/17', maglevTableSize: M });
const node = { name: 'node-1', addresses: ['198.18.0.11'], podCIDRs: ['198.18.129.0/24'] };

function service(type: string, extra = ''): string {
  return `kind: Service
metadata: { name: hostnames, namespace: default }
spec:
  type: ${type}
  clusterIP: 198.19.0.10
  clusterIPs: [198.19.0.10]
  ports: [{ name: http, port: 80, targetPort: 9376, protocol: TCP${type !== 'ClusterIP' ? ', nodePort: 30080' : ''} }]
${extra}`;
}

function slice(pods: [string, string][]): string {
  return `---
kind: EndpointSlice
metadata: { name: hostnames-x, namespace: default, labels: { kubernetes.io/service-name: hostnames } }
addressType: IPv4
ports: [{ name: http, port: 9376, protocol: TCP }]
endpoints:
${pods.map(([ip, nodeName]) => `  - { addresses: [${ip}], nodeName: ${nodeName}, conditions: { ready: true, serving: true, terminating: false } }`).join('\n')}
`;
}

class Harness {
  private ids: IdState | undefined;
  constructor(
    readonly dp: Datapath,
    readonly reconciler: Reconciler,
  ) {}

  apply(yaml: string) {
    const { state, result } = program(this.reconciler, yaml, { node, config, ...(this.ids ? { previousIds: this.ids } : {}) });
    this.ids = state.ids;
    return { result, dump: dumpServiceMaps(this.dp) };
  }
}

async function harness(t: ExecutionContext): Promise<Harness> {
  const s = scope(t);
  const pinDir = await s.bpffs();
  const dp = await loadDatapath({ pinDir, config: { nodeIp: '198.18.0.11', clusterCidr: '198.18.128.0/17', maglevM: M } as never });
  s.cleanup.add('datapath', () => dp.close());
  const reconciler = new Reconciler(dp);
  reconciler.adopt();
  return new Harness(dp, reconciler);
}

privilegedSerial('a ClusterIP service scales up, down, changes type, is deleted and re-added', async (t) => {
  const h = await harness(t);

  t.deepEqual(h.apply(service('ClusterIP') + slice([['198.18.129.5', 'node-1'], ['198.18.130.5', 'node-2']])).dump, [
    'backend 1 → 198.18.129.5:9376/TCP [LOCAL]',
    'backend 2 → 198.18.130.5:9376/TCP',
    'svc 198.19.0.10:80/TCP all[1] → backend 1',
    'svc 198.19.0.10:80/TCP all[2] → backend 2',
    'svc 198.19.0.10:80/TCP → id 1 CLUSTER_IP count 2 local 0 [DETECT_LOCAL]',
  ], 'ClusterIP with internalTrafficPolicy Cluster needs no node-local set');

  const up = h.apply(service('ClusterIP') + slice([['198.18.129.5', 'node-1'], ['198.18.130.5', 'node-2'], ['198.18.130.6', 'node-2']]));
  t.deepEqual(up.dump.filter((l) => l.includes('all[') || l.includes('→ id')), [
    'svc 198.19.0.10:80/TCP all[1] → backend 1',
    'svc 198.19.0.10:80/TCP all[2] → backend 2',
    'svc 198.19.0.10:80/TCP all[3] → backend 3',
    'svc 198.19.0.10:80/TCP → id 1 CLUSTER_IP count 3 local 0 [DETECT_LOCAL]',
  ]);
  t.is(up.result.written, 3, 'one backend, one slot, one master: nothing else is rewritten');

  const down = h.apply(service('ClusterIP') + slice([['198.18.130.6', 'node-2']]));
  t.deepEqual(down.dump, [
    'backend 3 → 198.18.130.6:9376/TCP',
    'svc 198.19.0.10:80/TCP all[1] → backend 3',
    'svc 198.19.0.10:80/TCP → id 1 CLUSTER_IP count 1 local 0 [DETECT_LOCAL]',
  ]);

  const nodePort = h.apply(service('NodePort') + slice([['198.18.130.6', 'node-2']]));
  t.deepEqual(nodePort.dump, [
    'backend 3 → 198.18.130.6:9376/TCP',
    'maglev svc 2 M=251: 3×251',
    'node-address 198.18.0.11',
    'svc 0.0.0.0:30080/TCP all[1] → backend 3',
    'svc 0.0.0.0:30080/TCP → id 2 NODE_PORT count 1 local 0 [MAGLEV]',
    'svc 198.19.0.10:80/TCP all[1] → backend 3',
    'svc 198.19.0.10:80/TCP → id 1 CLUSTER_IP count 1 local 0 [DETECT_LOCAL]',
  ]);

  t.deepEqual(h.apply('').dump, [], 'deleting the service leaves every map empty');
  t.deepEqual(h.apply(service('ClusterIP', '  internalTrafficPolicy: Local\n') + slice([['198.18.129.5', 'node-1']])).dump, [
    'backend 4 → 198.18.129.5:9376/TCP [LOCAL]',
    'svc 198.19.0.10:80/TCP local[1] → backend 4',
    'svc 198.19.0.10:80/TCP → id 3 CLUSTER_IP count 0 local 1 [ITP_LOCAL,DETECT_LOCAL]',
  ], 're-added with internalTrafficPolicy Local: fresh ids (never reused at once), only the node-local set');
});

privilegedSerial('no endpoints: the frontend stays, marked to reject; LoadBalancer source ranges and affinity', async (t) => {
  const h = await harness(t);
  const lb = service('LoadBalancer', `  loadBalancerSourceRanges: [198.18.0.100/30]
  sessionAffinity: ClientIP
status: { loadBalancer: { ingress: [{ ip: 198.19.255.1 }] } }
`);
  const { dump, result } = h.apply(lb);
  t.deepEqual(result.failures, []);
  t.deepEqual(dump, [
    'node-address 198.18.0.11',
    'source-range svc 1 198.18.0.100/30',
    'svc 0.0.0.0:30080/TCP → id 1 NODE_PORT count 0 local 0 affinity 10800s [AFFINITY,REJECT,MAGLEV]',
    'svc 198.19.0.10:80/TCP → id 2 CLUSTER_IP count 0 local 0 affinity 10800s [AFFINITY,REJECT,DETECT_LOCAL]',
    'svc 198.19.255.1:80/TCP → id 1 LOAD_BALANCER count 0 local 0 affinity 10800s [AFFINITY,SOURCE_RANGES,REJECT,MAGLEV]',
  ]);
});

privilegedSerial('a restarted agent adopts the pinned maps and rewrites nothing', async (t) => {
  const h = await harness(t);
  const yaml = service('NodePort') + slice([['198.18.129.5', 'node-1'], ['198.18.130.5', 'node-2']]);
  const before = h.apply(yaml).dump;

  const again = new Reconciler(h.dp);
  again.adopt();
  const state = computeDesiredState({ ...objectsOf(yaml), node, config });
  const result = again.apply(computeEntries(state, M));
  t.deepEqual(result, { written: 0, deleted: 0, failures: [] });
  t.deepEqual(dumpServiceMaps(h.dp), before);
});
