/**
 * Problems as Events through the agent as deployed: a lab node in --api kube mode, its agent on the
 * Kubernetes source with deploy/'s ServiceAccount and RBAC. A Service whose externalIP is another
 * Service's ClusterIP and a Service with an SCTP port each get one Warning Event from bpfproxy; it
 * stays one Event through later syncs, and its series count rises when the problem comes back.
 */
import { resolveAssets } from '../../ts/kube/binaries.js';
import { KubeLab } from '../../ts/lab/kube-api/kube-mode.js';
import { runId } from '../../ts/lab/net/netns.js';
import { Lab } from '../../ts/lab/topology.js';
import { labKubeAfterAlways, labKubeBefore, labKubeTest } from './_fixture.js';
import { eventually } from '../helpers/wait.js';

let lab: Lab | undefined;
let kube: KubeLab | undefined;

labKubeBefore(async (t) => {
  t.timeout(45 * 60_000, 'binaries, lab and control plane');
  const assetsDir = await resolveAssets((l) => t.log(l));
  lab = await Lab.up({ name: `cfl-${runId()}`, nodes: 1, clients: 0 });
  kube = await KubeLab.start(lab, { assetsDir });
});

labKubeAfterAlways(async () => {
  await kube?.stop();
  await lab?.down();
});

function k(): KubeLab {
  if (!kube) throw new Error('no kube lab');
  return kube;
}

interface Event {
  metadata: { name: string };
  reason: string;
  note: string;
  type: string;
  reportingController: string;
  reportingInstance: string;
  regarding: { kind: string; name: string };
  series?: { count: number };
}

const bpfproxyEvents = async (): Promise<Event[]> =>
  (JSON.parse(await k().kubectl(['get', 'events.v1.events.k8s.io', '-n', 'default', '-o', 'json'])) as { items: Event[] }).items.filter(
    (e) => e.reportingController === 'bpfproxy',
  );

const service = (name: string, spec: Record<string, unknown>) =>
  JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { selector: { app: name }, ...spec } });

labKubeTest('the agent posts each problem once as an Event on its Service, and counts it again when it comes back', async (t) => {
  t.timeout(5 * 60_000);
  await k().kubectl(['apply', '-f', '-'], { input: service('victim', { ports: [{ port: 80, targetPort: 9376 }] }) });
  const victimIP = (await k().kubectl(['get', 'service', 'victim', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  await k().kubectl(['apply', '-f', '-'], {
    input: [
      service('thief', { externalIPs: [victimIP], ports: [{ name: 'http', port: 8080, targetPort: 9376 }] }),
      service('signalling', { ports: [{ name: 'sig', port: 3868, protocol: 'SCTP', targetPort: 3868 }] }),
    ].join('\n---\n'),
  });

  let events: Event[] = [];
  const of = (name: string) => events.filter((e) => e.regarding.kind === 'Service' && e.regarding.name === name);
  await eventually('Events on thief and signalling', async () => {
    events = await bpfproxyEvents();
    return of('thief').length > 0 && of('signalling').length > 0;
  }, 60_000);
  t.like(of('thief')[0], {
    type: 'Warning',
    reason: 'FrontendRefused',
    reportingInstance: 'bpfproxy-node-1',
    note: `port http: ExternalIP frontend ${victimIP}:8080/TCP refused: ${victimIP} is the ClusterIP of default/victim`,
  });
  t.like(of('signalling')[0], { type: 'Warning', reason: 'Unsupported' });

  // Later syncs (another Service comes and goes) say nothing new: still one Event each.
  for (let i = 0; i < 3; i++) {
    await k().kubectl(['apply', '-f', '-'], { input: service(`churn-${i}`, { ports: [{ port: 80, targetPort: 9376 }] }) });
    await new Promise((r) => setTimeout(r, 1500));
  }
  events = await bpfproxyEvents();
  t.is(of('thief').length, 1);
  t.is(of('signalling').length, 1);
  t.is(of('thief')[0]!.series, undefined);

  // The problem goes away and comes back: the same Event, count 2.
  await k().kubectl(['patch', 'service', 'thief', '--type=merge', '-p', JSON.stringify({ spec: { externalIPs: null } })]);
  await new Promise((r) => setTimeout(r, 2500));
  await k().kubectl(['patch', 'service', 'thief', '--type=merge', '-p', JSON.stringify({ spec: { externalIPs: [victimIP] } })]);
  await eventually('the series count raised', async () => {
    events = await bpfproxyEvents();
    return of('thief')[0]?.series?.count === 2;
  }, 30_000);
  t.is(of('thief').length, 1, 'one Event');
  t.is(of('thief')[0]!.series!.count, 2);
});
