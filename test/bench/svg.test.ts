// The chart renderer: well-formed SVG with one bar per value and a path point per value, nice ticks.
import test from 'ava';

import { barChart, formatNumber, lineChart, niceTicks } from '../../ts/bench/svg.js';

const count = (svg: string, re: RegExp) => (svg.match(re) ?? []).length;

test('a bar chart has one bar per non-null value, a legend entry per series, and balanced tags', (t) => {
  const svg = barChart({
    title: 'conn/s <&>',
    yLabel: 'conn/s',
    categories: ['1', '1k', '10k'],
    series: [
      { name: 'iptables', values: [100, 50, null] },
      { name: 'bpfproxy', values: [120, 119, 118] },
    ],
  });
  t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  t.true(svg.trimEnd().endsWith('</svg>'));
  // Bars carry a <title>; legend swatches are 12×12 rects without one.
  t.is(count(svg, /<rect [^>]*><title>/g), 5);
  t.is(count(svg, /<rect [^>]*width="12" height="12"/g), 2);
  t.true(svg.includes('conn/s &lt;&amp;&gt;'), 'text is escaped');
  t.false(/NaN|undefined/.test(svg));
});

test('a line chart draws a point per value and breaks the line at gaps', (t) => {
  const svg = lineChart({
    title: 't',
    yLabel: 'y',
    xLabel: 'Services',
    logX: true,
    x: [1, 1000, 10000, 30000],
    series: [{ name: 'a', values: [5, null, 7, 8] }],
  });
  t.is(count(svg, /<circle /g), 3);
  const d = /<path d="([^"]*)"/.exec(svg)![1]!;
  t.is(count(d, /M/g), 2, 'a gap starts a new sub-path');
  t.true(svg.includes('(log scale)'));
  t.false(/NaN|undefined/.test(svg));
});

test('ticks are 1/2/5 steps covering the maximum', (t) => {
  for (const max of [0.3, 7, 42, 999, 12345, 3.3e6]) {
    const ticks = niceTicks(max);
    t.is(ticks[0], 0);
    t.true(ticks.at(-1)! >= max);
    const step = ticks[1]! - ticks[0]!;
    const mant = step / 10 ** Math.floor(Math.log10(step));
    t.true([1, 2, 5].some((m) => Math.abs(mant - m) < 1e-9), `step ${step} for ${max}`);
    t.true(ticks.length <= 12);
  }
  t.is(formatNumber(25300), '25.3k');
  t.is(formatNumber(1.5e6), '1.5M');
});
