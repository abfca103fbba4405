/**
 * Charts as plain SVG text, rendered without a browser or a dependency: grouped bar charts and
 * line charts (optionally a logarithmic x axis), with axes, ticks, a legend and a title. Enough for
 * a benchmark report on GitHub; nothing interactive.
 */
export interface Series {
  name: string;
  /** One value per category (bar) or x (line); null leaves a gap. */
  values: (number | null)[];
}

interface Frame {
  title: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** A note under the title (units, conditions). */
  subtitle?: string;
}

export interface BarChart extends Frame {
  categories: string[];
  series: Series[];
}

export interface LineChart extends Frame {
  x: number[];
  xLabel: string;
  logX?: boolean;
  series: Series[];
}

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f'];
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

function esc(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/** A "nice" step (1, 2 or 5 × 10^k) giving about `count` ticks up to `max`. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

export function formatNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 100 || v === 0) return String(Math.round(v));
  return String(+v.toPrecision(3));
}

interface Plot {
  parts: string[];
  left: number;
  top: number;
  plotW: number;
  plotH: number;
  width: number;
  height: number;
  yMax: number;
  y: (v: number) => number;
}

function frame(f: Frame, values: number[], legend: string[]): Plot {
  const width = f.width ?? 720;
  const height = f.height ?? 400;
  const left = 70;
  const right = 20;
  const top = f.subtitle ? 62 : 46;
  const legendRows = Math.ceil(legend.length / 4);
  const bottom = 56 + legendRows * 18;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const ticks = niceTicks(Math.max(0, ...values.filter((v) => Number.isFinite(v))));
  const yMax = ticks[ticks.length - 1]!;
  const y = (v: number) => top + plotH - (v / yMax) * plotH;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(f.title)}</text>`,
  ];
  if (f.subtitle) parts.push(`<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">${esc(f.subtitle)}</text>`);
  for (const t of ticks) {
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(t)}" y2="${y(t)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${left - 6}" y="${y(t) + 4}" text-anchor="end">${formatNumber(t)}</text>`);
  }
  parts.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`);
  parts.push(`<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(f.yLabel)}</text>`);
  legend.forEach((name, i) => {
    const lx = left + (i % 4) * Math.floor(plotW / 4);
    const ly = height - 14 - (legendRows - 1 - Math.floor(i / 4)) * 18;
    parts.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`);
    parts.push(`<text x="${lx + 17}" y="${ly}">${esc(name)}</text>`);
  });
  return { parts, left, top, plotW, plotH, width, height, yMax, y };
}

export function barChart(c: BarChart): string {
  const all = c.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const p = frame(c, all, c.series.map((s) => s.name));
  const groupW = p.plotW / Math.max(1, c.categories.length);
  const barW = Math.max(2, (groupW * 0.8) / Math.max(1, c.series.length));
  c.categories.forEach((cat, ci) => {
    const gx = p.left + ci * groupW + groupW * 0.1;
    c.series.forEach((s, si) => {
      const v = s.values[ci];
      if (v === null || v === undefined || !Number.isFinite(v)) return;
      const x = gx + si * barW;
      const top = p.y(v);
      p.parts.push(`<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(p.top + p.plotH - top).toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>${esc(`${s.name}, ${cat}: ${formatNumber(v)}`)}</title></rect>`);
    });
    p.parts.push(`<text x="${(p.left + ci * groupW + groupW / 2).toFixed(1)}" y="${p.top + p.plotH + 18}" text-anchor="middle">${esc(cat)}</text>`);
  });
  p.parts.push('</svg>');
  return p.parts.join('\n') + '\n';
}

export function lineChart(c: LineChart): string {
  const all = c.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const p = frame(c, all, c.series.map((s) => s.name));
  const xs = c.x.map((v) => (c.logX ? Math.log10(Math.max(v, 1e-9)) : v));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const span = xMax - xMin || 1;
  const px = (i: number) => p.left + 20 + ((xs[i]! - xMin) / span) * (p.plotW - 40);
  c.x.forEach((v, i) => {
    p.parts.push(`<text x="${px(i).toFixed(1)}" y="${p.top + p.plotH + 18}" text-anchor="middle">${formatNumber(v)}</text>`);
  });
  p.parts.push(`<text x="${p.left + p.plotW / 2}" y="${p.top + p.plotH + 36}" text-anchor="middle">${esc(c.xLabel)}${c.logX ? ' (log scale)' : ''}</text>`);
  c.series.forEach((s, si) => {
    const color = PALETTE[si % PALETTE.length];
    let path = '';
    s.values.forEach((v, i) => {
      if (v === null || v === undefined || !Number.isFinite(v)) {
        path += ' ';
        return;
      }
      path += `${path.endsWith(' ') || path === '' ? 'M' : 'L'}${px(i).toFixed(1)},${p.y(v).toFixed(1)}`;
    });
    p.parts.push(`<path d="${path.trim()}" fill="none" stroke="${color}" stroke-width="2"/>`);
    s.values.forEach((v, i) => {
      if (v === null || v === undefined || !Number.isFinite(v)) return;
      p.parts.push(`<circle cx="${px(i).toFixed(1)}" cy="${p.y(v).toFixed(1)}" r="3.5" fill="${color}"><title>${esc(`${s.name}, ${formatNumber(c.x[i]!)}: ${formatNumber(v)}`)}</title></circle>`);
    });
  });
  p.parts.push('</svg>');
  return p.parts.join('\n') + '\n';
}
