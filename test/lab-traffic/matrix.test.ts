/**
 * The traffic matrix in CI: a pairwise-covering subset of (agent configuration × XDP mode) on the
 * routed lab, one combination each on the VXLAN overlay and with a node with two uplinks, every
 * cell of that lab shape in each (_matrix.ts says what each cell must give). The full product (every
 * shape × configuration × XDP mode): hack/traffic-matrix.sh (BPFPROXY_MATRIX=full), its result in
 * bench/results/traffic-matrix.txt.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';

import { privilegedSerial } from '../helpers/env.js';
import { CONFIGS, VARIANTS, cellAsExpected, formatMatrix, runLabCells, type CellResult, type ConfigName, type Variant, type XdpMode } from './_matrix.js';

const full = process.env.BPFPROXY_MATRIX === 'full';
const combos: [Variant, ConfigName, XdpMode][] = full
  ? VARIANTS.flatMap((v) => (Object.keys(CONFIGS) as ConfigName[]).flatMap((c) => (['generic', 'off'] as const).map((x): [Variant, ConfigName, XdpMode] => [v, c, x])))
  : [
      ['routed', 'clusterCIDR', 'generic'],
      ['routed', 'noClusterCIDR', 'off'],
      ['routed', 'masqueradeAll', 'generic'],
      ['vxlan', 'clusterCIDR', 'generic'],
      ['two uplinks', 'noClusterCIDR', 'generic'],
    ];

const all: CellResult[] = [];

for (const [variant, config, xdp] of combos) {
  privilegedSerial(`traffic matrix: ${variant}, ${config}, XDP ${xdp}: every source × frontend does what the table declares (16 MiB both ways, UDP, refusals, drops)`, async (t) => {
    t.timeout(300_000);
    const cells = await runLabCells(t, variant, config, xdp);
    all.push(...cells);
    t.log('\n' + formatMatrix(cells));
    for (const c of cells) t.true(cellAsExpected(c), `${c.source} → ${c.frontend}: ${JSON.stringify(c.checks)} (expected ${JSON.stringify(c.expected)})`);
  });
}

test.after.always('traffic matrix summary', () => {
  if (all.length === 0) return;
  const table = formatMatrix(all);
  console.log('\n' + table);
  if (process.env.BPFPROXY_MATRIX_OUT) writeFileSync(process.env.BPFPROXY_MATRIX_OUT, table + '\n');
});
