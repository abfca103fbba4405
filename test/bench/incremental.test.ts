// "One change" for the baselines: a full load of cluster A followed by the partial/incremental text
// for A → B must leave the namespace exactly as a full load of B does.
import type { ExecutionContext } from 'ava';

import { applyIptables, applyNftables, generateScale, iptablesRestoreInput, nftablesScript, type BaselineInput } from '../../ts/baselines/index.js';
import { iptablesPartialRestore, nftablesIncremental } from '../../ts/bench/incremental.js';
import { withOneChange } from '../../ts/bench/scenarios/programming.js';
import { useSystemPath } from '../../ts/bench/system-path.js';
import { privilegedSerial } from '../helpers/env.js';
import { scope } from '../helpers/scope.js';

/** chain → its rules in order, for every table: comparable whatever order chains were created in. */
function iptablesState(save: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.startsWith(':')) out[`${table}/${line.slice(1).split(' ')[0]}`] ??= [];
    else if (line.startsWith('-A ')) (out[`${table}/${line.split(' ')[1]}`] ??= []).push(line.replace(/^\[\d+:\d+\] /, ''));
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** `nft -s list table` as blocks (chains, sets, maps) keyed by their header, elements sorted. */
function nftState(list: string): Record<string, string[]> {
  const blocks: Record<string, string[]> = {};
  let current: string | undefined;
  for (const raw of list.split('\n')) {
    const line = raw.trim();
    if (/^(chain|set|map) /.test(line)) {
      current = line;
      blocks[current] = [];
    } else if (current && line !== '}' && line !== '') {
      blocks[current]!.push(line);
    }
  }
  for (const k of Object.keys(blocks)) {
    // Element lists span lines in arbitrary order; compare them as sorted items.
    const joined = blocks[k]!.join(' ');
    const m = /elements = \{(.*?)\}/.exec(joined);
    if (m) blocks[k] = [joined.replace(m[0], ''), ...m[1]!.split(',').map((e) => e.trim()).sort()];
  }
  return Object.fromEntries(Object.entries(blocks).sort(([a], [b]) => (a < b ? -1 : 1)));
}

// Under npx, node_modules/.bin/nft (@vercel/nft) would shadow the system's nft.
useSystemPath();

const input: BaselineInput = generateScale(12, 3);
const changed = withOneChange(input);

async function compareIptables(t: ExecutionContext, variant: 'legacy' | 'nft') {
  const s = scope(t);
  const [a, b] = [await s.netns('inc-a'), await s.netns('inc-b')];
  const before = iptablesRestoreInput(input);
  const after = iptablesRestoreInput(changed);
  const delta = iptablesPartialRestore(before, after);
  t.true(delta.split('\n').length < after.split('\n').length, 'the partial sync is smaller than a full one');
  await applyIptables(a.name, before, variant);
  await applyIptables(a.name, delta, variant);
  await applyIptables(b.name, after, variant);
  const stateA = iptablesState(await a.exec(`iptables-${variant}-save`, []));
  const stateB = iptablesState(await b.exec(`iptables-${variant}-save`, []));
  t.deepEqual(stateA, stateB);
  t.notDeepEqual(iptablesState(before), iptablesState(after), 'the change changes something');
}

privilegedSerial('iptables-legacy: full load + partial restore = full load of the changed cluster', (t) => compareIptables(t, 'legacy'));
privilegedSerial('iptables-nft: full load + partial restore = full load of the changed cluster', (t) => compareIptables(t, 'nft'));

privilegedSerial('nftables: full load + incremental transaction = full load of the changed cluster', async (t) => {
  const s = scope(t);
  const [a, b] = [await s.netns('inc-a'), await s.netns('inc-b')];
  const before = nftablesScript(input);
  const after = nftablesScript(changed);
  const delta = nftablesIncremental(before, after);
  t.true(delta.split('\n').length < 20, `one endpoint gone is a handful of commands:\n${delta}`);
  await applyNftables(a.name, before);
  await applyNftables(a.name, delta);
  await applyNftables(b.name, after);
  const stateA = nftState(await a.exec('nft', ['-s', 'list', 'table', 'ip', 'kube-proxy']));
  const stateB = nftState(await b.exec('nft', ['-s', 'list', 'table', 'ip', 'kube-proxy']));
  t.deepEqual(stateA, stateB);
});
