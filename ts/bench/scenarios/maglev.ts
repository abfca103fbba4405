/**
 * Scenario 5: Maglev table build time and balance for M = 16381 and 65537 with 10/100/1000
 * backends, and what one backend going away moves: the share of all slots that change owner
 * (ideally 1/N, the removed backend's own) and the share of the remaining backends' slots that
 * move (ideally 0; Maglev's promise is "small", Cilium's tests allow < 1%).
 */
import { buildMaglevTable, maglevStats } from '../../maglev/index.js';
import type { Progress } from '../progress.js';
import type { Profile } from '../profile.js';
import type { MaglevPoint } from '../results.js';

const name = (i: number) => `198.18.${128 + (i >> 8)}.${i & 255}:9376/TCP`;

export function maglevScenario(p: Profile, progress: Progress): MaglevPoint[] {
  const points: MaglevPoint[] = [];
  progress.begin('5 maglev', p.maglevSizes.length * p.maglevBackends.length);
  for (const m of p.maglevSizes) {
    for (const n of p.maglevBackends) {
      progress.step(`M=${m} N=${n}`);
      const names = Array.from({ length: n }, (_, i) => name(i));
      for (let i = 0; i < 2; i++) buildMaglevTable(names, m); // warm the JIT
      const start = performance.now();
      let table = buildMaglevTable(names, m);
      for (let i = 1; i < p.maglevRuns; i++) table = buildMaglevTable(names, m);
      const buildMs = (performance.now() - start) / p.maglevRuns;
      const stats = maglevStats(table.slots, n);

      // Remove the backend in the middle of the sorted list and compare owners by name.
      const gone = table.backends[n >> 1]!;
      const after = buildMaglevTable(names.filter((x) => x !== gone), m);
      let moved = 0;
      let otherMoved = 0;
      let otherSlots = 0;
      for (let i = 0; i < m; i++) {
        const before = table.backends[table.slots[i]!]!;
        const now = after.backends[after.slots[i]!]!;
        if (before !== now) moved++;
        if (before !== gone) {
          otherSlots++;
          if (before !== now) otherMoved++;
        }
      }
      points.push({
        m,
        backends: n,
        buildMs,
        minSlots: stats.min,
        maxSlots: stats.max,
        imbalance: stats.imbalance,
        movedShare: moved / m,
        otherMovedShare: otherSlots > 0 ? otherMoved / otherSlots : 0,
      });
      progress.stepDone(`${buildMs.toFixed(2)} ms, imbalance ${(stats.imbalance * 100).toFixed(2)}%`);
    }
  }
  return points;
}
