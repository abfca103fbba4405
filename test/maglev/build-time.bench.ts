// Maglev table build time and balance for the sizes in performance-anchors.md.
// Run: npx tsx test/maglev/build-time.bench.ts
import { buildMaglevTable, maglevStats } from '../../ts/maglev/index.js';

const runs = 30;
console.log('M       N     ms/build  max-min  imbalance');
for (const size of [16381, 65537]) {
  for (const n of [10, 100, 1000]) {
    const names = Array.from({ length: n }, (_, i) => `198.18.${(i >> 8) & 255}.${i & 255}:9376/TCP`);
    for (let i = 0; i < 5; i++) buildMaglevTable(names, size);
    const start = performance.now();
    let table = buildMaglevTable(names, size);
    for (let i = 1; i < runs; i++) table = buildMaglevTable(names, size);
    const ms = (performance.now() - start) / runs;
    const stats = maglevStats(table.slots, n);
    console.log(
      `${String(size).padEnd(7)} ${String(n).padEnd(5)} ${ms.toFixed(3).padStart(8)}  ${String(stats.max - stats.min).padStart(7)}  ${(stats.imbalance * 100).toFixed(3)}%`,
    );
  }
}
