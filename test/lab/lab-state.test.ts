// Several processes share one lab's state (`lab apply`, `lab status`, the demo, tests). A change is
// made to the state as it is on disk, under a lock, never by writing back a handle's stale copy.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { LAB_STATE_VERSION, readLabState, stateFile, writeLabState, type LabState } from '../../ts/lab/lab-state.js';
import { Lab } from '../../ts/lab/topology.js';

test('two handles of one lab: each change lands on what the other wrote, none is lost to a stale copy', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bpfproxy-labstate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = stateFile('shared', dir);
  writeLabState({
    version: LAB_STATE_VERSION, name: 'shared', id: 'x1', createdAt: new Date(0).toISOString(), stateFile: file, runDir: join(dir, 'shared'),
    lbRoute: { mode: 'ecmp' }, addressPlan: { nodeNetwork: '', clusterCidr: '', serviceCidr: '', externalCidr: '', podGateway: '' },
    fabric: { netns: 'f', bridge: 'br0' } as LabState['fabric'], nodes: [], clients: [], pods: [], ipam: {},
  });
  const a = Lab.open('shared', dir);
  const b = Lab.open('shared', dir); // opened before a's change: its copy is stale from then on
  a.update((s) => {
    s.ipam['node-1'] = 7;
  });
  b.update((s) => {
    s.bpffs = '/run/bpfproxy/labs/shared/bpffs';
  });
  a.update((s) => {
    s.cluster = { api: 'file', dir: '/run/bpfproxy/labs/shared/cluster' };
  });
  t.like(readLabState(file), { ipam: { 'node-1': 7 }, bpffs: '/run/bpfproxy/labs/shared/bpffs', cluster: { api: 'file' } });
  t.like(b.status(), { ipam: { 'node-1': 7 } }, 'a handle sees the state it last changed');
});
