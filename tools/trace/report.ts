/**
 * Turns page-walk traces (tools/trace/writer.ts) into one self-contained HTML
 * page with inline SVG charts: walk latency histogram, walks and misses over
 * the run, the most-missed pages, cost by kernel path, events by kind, and a
 * native-vs-Xen comparison when two traces are given. No external scripts,
 * styles or fonts.
 *
 * Traces are read line by line (the writer puts one event per line), so a
 * long trace is summarised without holding it in memory.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { InputError } from '../input-error.js';

export interface TraceSummary {
  file: string;
  events: number;
  walks: number;
  faults: number;
  walkCycles: number;
  endCycles: number;
  /** Histogram of walk cycles: bucket upper bounds and counts. */
  latency: Map<number, number>;
  /** Walk start times, bucketed later. */
  walkTimes: number[];
  faultTimes: number[];
  pages: Map<string, number>;
  paths: Map<string, { cycles: number; count: number }>;
  kinds: Map<string, number>;
}

interface TraceEvent {
  name?: string;
  cat?: string;
  ph?: string;
  ts?: number;
  dur?: number;
  args?: { va?: string; fault?: string };
}

export async function summarise(file: string): Promise<TraceSummary> {
  const s: TraceSummary = {
    file,
    events: 0,
    walks: 0,
    faults: 0,
    walkCycles: 0,
    endCycles: 0,
    latency: new Map(),
    walkTimes: [],
    faultTimes: [],
    pages: new Map(),
    paths: new Map(),
    kinds: new Map(),
  };
  let stream;
  try {
    stream = createReadStream(file, { encoding: 'utf8' });
    await new Promise<void>((res, rej) => {
      stream!.once('open', () => res());
      stream!.once('error', rej);
    });
  } catch (e) {
    throw new InputError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNo = 0;
  let sawHeader = false;
  let sawEnd = false;
  for await (const raw of rl) {
    lineNo++;
    const line = raw.trim();
    if (line === '') continue;
    if (!sawHeader) {
      if (line !== '{"traceEvents":[') throw new InputError(`${file}:${lineNo}:1: not a pvmmu trace (expected the line {"traceEvents":[)`);
      sawHeader = true;
      continue;
    }
    if (line === ']}') {
      sawEnd = true;
      continue;
    }
    if (sawEnd) throw new InputError(`${file}:${lineNo}:1: text after the end of the trace`);
    const text = line.startsWith(',') ? line.slice(1) : line.endsWith(',') ? line.slice(0, -1) : line;
    let e: TraceEvent;
    try {
      e = JSON.parse(text) as TraceEvent;
    } catch {
      throw new InputError(`${file}:${lineNo}:1: invalid trace event`);
    }
    if (typeof e !== 'object' || e === null || typeof e.name !== 'string') throw new InputError(`${file}:${lineNo}:1: trace event without a name`);
    add(s, e);
  }
  if (!sawHeader) throw new InputError(`${file}:1:1: empty file, not a pvmmu trace`);
  if (!sawEnd) throw new InputError(`${file}:${lineNo}:1: trace is truncated (no closing ]})`);
  return s;
}

function add(s: TraceSummary, e: TraceEvent): void {
  s.events++;
  const ts = typeof e.ts === 'number' ? e.ts : 0;
  const dur = typeof e.dur === 'number' ? e.dur : 0;
  s.endCycles = Math.max(s.endCycles, ts + dur);
  if (e.ph === 'M') return;
  s.kinds.set(e.cat ?? '?', (s.kinds.get(e.cat ?? '?') ?? 0) + 1);
  if (e.cat === 'mmu' && e.ph === 'X') {
    s.walks++;
    s.walkCycles += dur;
    const bucket = 2 ** Math.ceil(Math.log2(Math.max(1, dur)));
    s.latency.set(bucket, (s.latency.get(bucket) ?? 0) + 1);
    s.walkTimes.push(ts);
    if (e.args?.fault) {
      s.faults++;
      s.faultTimes.push(ts);
    }
    const va = e.args?.va;
    if (typeof va === 'string') {
      const page = '0x' + (Number.parseInt(va, 16) >>> 12).toString(16).padStart(5, '0') + '000';
      s.pages.set(page, (s.pages.get(page) ?? 0) + 1);
    }
  } else if (e.cat === 'kernel path' && e.ph === 'X') {
    const p = s.paths.get(e.name!) ?? { cycles: 0, count: 0 };
    p.cycles += dur;
    p.count++;
    s.paths.set(e.name!, p);
  }
}

// ---------------- rendering ----------------

const esc = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: 1 });
const COLORS = ['#3b6ea8', '#c8553d', '#5a9e6f', '#8c6bb1', '#d4a017'];

interface Bar {
  label: string;
  values: number[];
}

/** Horizontal or vertical grouped bar chart as SVG (one value per series). */
function barChart(title: string, bars: Bar[], series: string[], opts: { horizontal?: boolean; unit?: string } = {}): string {
  if (bars.length === 0) return `<figure><figcaption>${esc(title)}</figcaption><p class="empty">no data</p></figure>`;
  const max = Math.max(1, ...bars.flatMap((b) => b.values));
  const legend = series.length > 1 ? legendSvg(series) : '';
  if (opts.horizontal) {
    const rowH = 18 * series.length + 6;
    const labelW = 150;
    const w = 640;
    const h = bars.length * rowH + 10;
    const body = bars
      .map((b, i) =>
        b.values
          .map((v, j) => {
            const y = 5 + i * rowH + j * 18;
            const bw = ((w - labelW - 90) * v) / max;
            return `<rect x="${labelW}" y="${y}" width="${bw.toFixed(1)}" height="15" fill="${COLORS[j % COLORS.length]}"><title>${esc(b.label)} ${esc(series[j] ?? '')}: ${fmt(v)}${opts.unit ?? ''}</title></rect><text x="${(labelW + bw + 4).toFixed(1)}" y="${y + 12}" class="v">${fmt(v)}</text>`;
          })
          .join('') + `<text x="${labelW - 6}" y="${5 + i * rowH + 12}" text-anchor="end" class="l">${esc(b.label)}</text>`,
      )
      .join('');
    return `<figure><figcaption>${esc(title)}</figcaption>${legend}<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img">${body}</svg></figure>`;
  }
  const w = 640;
  const h = 220;
  const left = 50;
  const bottom = 40;
  const groupW = (w - left - 10) / bars.length;
  const barW = Math.max(1, (groupW - 4) / series.length);
  const body = bars
    .map((b, i) =>
      b.values
        .map((v, j) => {
          const bh = ((h - bottom - 10) * v) / max;
          const x = left + i * groupW + j * barW;
          return `<rect x="${x.toFixed(1)}" y="${(h - bottom - bh).toFixed(1)}" width="${barW.toFixed(1)}" height="${bh.toFixed(1)}" fill="${COLORS[j % COLORS.length]}"><title>${esc(b.label)} ${esc(series[j] ?? '')}: ${fmt(v)}${opts.unit ?? ''}</title></rect>`;
        })
        .join('') +
      (bars.length <= 24 || i % Math.ceil(bars.length / 24) === 0
        ? `<text x="${(left + i * groupW + groupW / 2).toFixed(1)}" y="${h - bottom + 14}" text-anchor="middle" class="l">${esc(b.label)}</text>`
        : ''),
    )
    .join('');
  const axis = `<line x1="${left}" y1="${h - bottom}" x2="${w - 5}" y2="${h - bottom}" class="axis"/><text x="${left - 4}" y="14" text-anchor="end" class="l">${fmt(max)}</text><text x="${left - 4}" y="${h - bottom}" text-anchor="end" class="l">0</text>`;
  return `<figure><figcaption>${esc(title)}</figcaption>${legend}<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img">${axis}${body}</svg></figure>`;
}

function legendSvg(series: string[]): string {
  const items = series
    .map((s, i) => `<rect x="${i * 140}" y="2" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${i * 140 + 16}" y="12" class="l">${esc(s)}</text>`)
    .join('');
  return `<svg viewBox="0 0 640 16" width="640" height="16">${items}</svg>`;
}

function timeBuckets(times: number[], end: number, n: number): number[] {
  const out = new Array<number>(n).fill(0);
  if (end <= 0) return out;
  for (const t of times) out[Math.min(n - 1, Math.floor((t / end) * n))]!++;
  return out;
}

export function renderReport(traces: TraceSummary[], labels: string[]): string {
  const series = labels;
  const overview = `<table><tr><th></th>${series.map((s) => `<th>${esc(s)}</th>`).join('')}</tr>${[
    ['events', (t: TraceSummary) => fmt(t.events)],
    ['page walks', (t: TraceSummary) => fmt(t.walks)],
    ['walks that faulted', (t: TraceSummary) => fmt(t.faults)],
    ['cycles in walks', (t: TraceSummary) => fmt(t.walkCycles)],
    ['mean walk (cycles)', (t: TraceSummary) => fmt(t.walks ? t.walkCycles / t.walks : 0)],
    ['run length (cycles)', (t: TraceSummary) => fmt(t.endCycles)],
  ]
    .map(([k, f]) => `<tr><th>${k}</th>${traces.map((t) => `<td>${(f as (t: TraceSummary) => string)(t)}</td>`).join('')}</tr>`)
    .join('')}</table>`;

  const buckets = [...new Set(traces.flatMap((t) => [...t.latency.keys()]))].sort((a, b) => a - b);
  const latency = barChart(
    'Walk latency histogram (cycles, power-of-two buckets; faulting walks include #PF delivery)',
    buckets.map((b) => ({ label: `≤${b}`, values: traces.map((t) => t.latency.get(b) ?? 0) })),
    series,
  );
  const N = 40;
  const over = traces.map((t) => timeBuckets(t.walkTimes, t.endCycles, N));
  const missesOverTime = barChart(
    `TLB misses (page walks) over the run (${N} equal slices of each run's cycles)`,
    Array.from({ length: N }, (_, i) => ({ label: String(i + 1), values: over.map((o) => o[i]!) })),
    series,
  );
  const pageTotals = new Map<string, number>();
  for (const t of traces) for (const [p, n] of t.pages) pageTotals.set(p, (pageTotals.get(p) ?? 0) + n);
  const topPages = [...pageTotals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 15);
  const pages = barChart(
    'Most-missed pages (walks per virtual page)',
    topPages.map(([p]) => ({ label: p, values: traces.map((t) => t.pages.get(p) ?? 0) })),
    series,
    { horizontal: true },
  );
  const pathNames = [...new Set(traces.flatMap((t) => [...t.paths.keys()]))].sort(
    (a, b) => Math.max(...traces.map((t) => t.paths.get(b)?.cycles ?? 0)) - Math.max(...traces.map((t) => t.paths.get(a)?.cycles ?? 0)),
  );
  const paths = barChart(
    'Cost by kernel path (cycles spent in each workload statement)',
    pathNames.map((p) => ({ label: p, values: traces.map((t) => t.paths.get(p)?.cycles ?? 0) })),
    series,
    { horizontal: true, unit: ' cycles' },
  );
  const kindNames = [...new Set(traces.flatMap((t) => [...t.kinds.keys()]))].sort();
  const kinds = barChart(
    'Events by category',
    kindNames.map((k) => ({ label: k, values: traces.map((t) => t.kinds.get(k) ?? 0) })),
    series,
    { horizontal: true },
  );
  let ratio = '';
  if (traces.length === 2) {
    const [a, b] = traces as [TraceSummary, TraceSummary];
    const rows = pathNames
      .map((p) => {
        const x = a.paths.get(p);
        const y = b.paths.get(p);
        const r = x && y && x.cycles > 0 ? (y.cycles / x.cycles).toFixed(2) + 'x' : '-';
        return `<tr><th>${esc(p)}</th><td>${fmt(x?.cycles ?? 0)}</td><td>${fmt(y?.cycles ?? 0)}</td><td>${r}</td></tr>`;
      })
      .join('');
    ratio = `<h2>${esc(labels[1]!)} vs ${esc(labels[0]!)}</h2><table><tr><th>kernel path</th><th>${esc(labels[0]!)} cycles</th><th>${esc(labels[1]!)} cycles</th><th>ratio</th></tr>${rows}</table>`;
  }
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pvmmu trace report</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}th,td{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}th:first-child{text-align:left}
figure{margin:18px 0}figcaption{font-weight:600;margin-bottom:6px}
svg text.l{font-size:10px;fill:#333}svg text.v{font-size:10px;fill:#555}.axis{stroke:#999}.empty{color:#888}
code{background:#f3f3f3;padding:1px 4px}
</style></head><body>
<h1>pvmmu trace report</h1>
<p>${traces.map((t, i) => `<code>${esc(labels[i]!)}</code>: ${esc(t.file)}`).join('<br>')}</p>
<h2>Overview</h2>${overview}
<h2>Page walks</h2>${latency}${missesOverTime}${pages}
<h2>Kernel paths</h2>${paths}${kinds}
${ratio}
<p style="color:#777;font-size:12px">Cycles are the emulated cycle clock of the cost model (see docs/traces.md). Generated by pvmmu report.</p>
</body></html>
`;
}
