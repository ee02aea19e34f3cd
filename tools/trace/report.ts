/**
 * Turns traces (tools/trace/writer.ts, or any Chrome trace-event file) into
 * one self-contained HTML page with inline SVG charts that answers "native
 * vs Xen, and why": the configuration of each run; a banner where a run
 * stopped (the statement and the full refusal); per-measure cycles of both
 * runs with their cost breakdown as stacked bars; walk-latency histograms on
 * one honest axis (every power-of-two bucket between the shortest and the
 * longest walk, empty ones kept); page walks over time on one cycle axis for
 * both runs; the most-missed pages labelled by region (user, direct map,
 * vmalloc) and process; cost by kernel path. No external scripts, styles or
 * fonts.
 *
 * Traces are read as streams (read.ts): memory stays bounded by the number of
 * distinct pages and labels, not by the trace's length.
 */
import { COST_COMPONENTS } from '../../emulator/cost-model.js';
import { basename } from 'node:path';
import { readTrace, type TraceEvent } from './read.js';

/** Time bins kept per trace; when a run outgrows them, neighbours merge (the bin width doubles). */
const TIME_BINS = 256;

export interface TimeHistogram {
  /** Cycles per bin (a power of two). */
  width: number;
  bins: number[];
}

export interface MeasureSummary {
  runs: number;
  cycles: number;
  breakdown: Record<string, number>;
}

export interface StopSummary {
  kind: string;
  message: string;
  statement: string;
  refusal: { op?: string; reason?: string; mfn?: string | null; log?: string[] } | null;
}

export interface TraceSummary {
  file: string;
  /** The trace's otherData (pvmmu: workload, backend, paging, split, mem, cpu, kernel, p2m). */
  meta: Record<string, unknown>;
  events: number;
  walks: number;
  faults: number;
  walkCycles: number;
  endCycles: number;
  /** Walks by latency bucket: index b counts walks of (2^(b-1), 2^b] cycles (b = 0: 0..1). */
  latency: Map<number, number>;
  walkTimes: TimeHistogram;
  faultTimes: TimeHistogram;
  /** Walks per (pid, virtual page). */
  pages: Map<string, number>;
  processes: Map<string, string>;
  paths: Map<string, { cycles: number; count: number }>;
  measures: Map<string, MeasureSummary>;
  kinds: Map<string, number>;
  stops: StopSummary[];
  layout: { pageOffset: number; highMemory: number; vmallocStart: number; vmallocEnd: number } | null;
  /** Cycle count at which the workload started (after boot); 0 when the trace does not say. */
  workloadStart: number;
}

function newTimes(): TimeHistogram {
  return { width: 1, bins: new Array<number>(TIME_BINS).fill(0) };
}

function addTime(h: TimeHistogram, t: number): void {
  while (t >= h.width * TIME_BINS) coarsen(h);
  h.bins[Math.max(0, Math.floor(t / h.width))]!++;
}

function coarsen(h: TimeHistogram): void {
  const b = new Array<number>(TIME_BINS).fill(0);
  for (let i = 0; i < TIME_BINS; i++) b[i >> 1]! += h.bins[i]!;
  h.bins = b;
  h.width *= 2;
}

const num = (v: unknown): number => (typeof v === 'string' ? Number.parseInt(v, 16) : typeof v === 'number' ? v : NaN);

export async function summarise(file: string): Promise<TraceSummary> {
  const s: TraceSummary = {
    file,
    meta: {},
    events: 0,
    walks: 0,
    faults: 0,
    walkCycles: 0,
    endCycles: 0,
    latency: new Map(),
    walkTimes: newTimes(),
    faultTimes: newTimes(),
    pages: new Map(),
    processes: new Map(),
    paths: new Map(),
    measures: new Map(),
    kinds: new Map(),
    stops: [],
    layout: null,
    workloadStart: 0,
  };
  const t = await readTrace(file, (e) => add(s, e));
  const od = t.other['otherData'];
  if (od && typeof od === 'object' && !Array.isArray(od)) s.meta = od as Record<string, unknown>;
  return s;
}

function add(s: TraceSummary, e: TraceEvent): void {
  s.events++;
  const ts = e.ts ?? 0;
  const dur = e.dur ?? 0;
  if (ts + dur > s.endCycles) s.endCycles = ts + dur;
  const args = e.args ?? {};
  if (e.ph === 'M') {
    if (e.name === 'process_name' && typeof args['name'] === 'string') s.processes.set(String(e.pid), args['name']);
    return;
  }
  const cat = e.cat ?? '?';
  s.kinds.set(cat, (s.kinds.get(cat) ?? 0) + 1);
  if (cat === 'mmu' && e.ph === 'X') {
    s.walks++;
    s.walkCycles += dur;
    const b = dur <= 1 ? 0 : Math.ceil(Math.log2(dur));
    s.latency.set(b, (s.latency.get(b) ?? 0) + 1);
    addTime(s.walkTimes, ts - s.workloadStart);
    if (args['fault']) {
      s.faults++;
      addTime(s.faultTimes, ts - s.workloadStart);
    }
    const va = num(args['va']);
    if (Number.isFinite(va)) {
      const key = `${e.pid ?? 0}|${Math.floor(va / 4096)}`;
      s.pages.set(key, (s.pages.get(key) ?? 0) + 1);
    }
  } else if (cat === 'kernel path' && e.ph === 'X') {
    const name = e.name ?? '?';
    const p = s.paths.get(name) ?? { cycles: 0, count: 0 };
    p.cycles += dur;
    p.count++;
    s.paths.set(name, p);
  } else if (cat === 'measure' && e.ph === 'X') {
    const label = e.name ?? '?';
    const m = s.measures.get(label) ?? { runs: 0, cycles: 0, breakdown: {} };
    m.runs++;
    m.cycles += dur;
    const b = args['breakdown'];
    if (b && typeof b === 'object') {
      for (const [k, v] of Object.entries(b as Record<string, unknown>)) if (typeof v === 'number') m.breakdown[k] = (m.breakdown[k] ?? 0) + v;
    }
    s.measures.set(label, m);
  } else if (cat === 'stop') {
    const r = args['refusal'];
    s.stops.push({
      kind: String(args['kind'] ?? '?'),
      message: String(args['message'] ?? e.name ?? ''),
      statement: String(args['statement'] ?? ''),
      refusal: r && typeof r === 'object' ? (r as StopSummary['refusal']) : null,
    });
  } else if (cat === 'layout') {
    const l = { pageOffset: num(args['PAGE_OFFSET']), highMemory: num(args['high_memory']), vmallocStart: num(args['VMALLOC_START']), vmallocEnd: num(args['VMALLOC_END']) };
    if (Object.values(l).every(Number.isFinite)) s.layout = l;
    // The kernel has booted: the time charts start here, so that runs line up at their first statement.
    s.workloadStart = ts;
    s.walkTimes = newTimes();
    s.faultTimes = newTimes();
  }
}

// ---------------- rendering ----------------

const esc = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (n: number, d = 1): string => n.toLocaleString('en-US', { maximumFractionDigits: d });
/** One colour per trace (series) and one per cost component. */
const SERIES = ['#3b6ea8', '#c8553d', '#5a9e6f', '#8c6bb1'];
const COMPONENT_COLORS: Record<string, string> = {
  kernel: '#8da0cb',
  page_copy: '#a6d854',
  tlb: '#66c2a5',
  flush: '#e5c494',
  exception: '#ffd92f',
  hypercall: '#fc8d62',
  trap: '#e78ac3',
  bounce: '#b3b3b3',
  validation: '#d95f02',
};

/** "Nice" axis ticks from 0 to at least max. */
function ticks(max: number, n = 4): number[] {
  if (max <= 0) return [0, 1];
  const raw = max / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) out.push(v);
  return out;
}

function legend(items: [string, string][]): string {
  return `<div class="legend">${items.map(([name, c]) => `<span><i style="background:${c}"></i>${esc(name)}</span>`).join('')}</div>`;
}

/** The region of a virtual address under the kernel's layout. */
function regionOf(va: number, l: TraceSummary['layout']): string {
  if (!l) return '?';
  if (va < l.pageOffset) return 'user';
  if (va < l.highMemory) return 'direct map';
  if (va >= l.vmallocStart && va < l.vmallocEnd) return 'vmalloc';
  return 'fixmap/other';
}

/** Vertical bar histogram (one series), with y ticks and every bucket labelled. */
function histogram(title: string, labels: string[], counts: number[], yMax: number, color: string, xTitle: string): string {
  const W = 560;
  const H = 230;
  const left = 56;
  const bottom = 46;
  const top = 10;
  const plotH = H - bottom - top;
  const bw = (W - left - 10) / Math.max(1, labels.length);
  const ys = ticks(yMax);
  const yTop = ys[ys.length - 1]!;
  const y = (v: number): number => top + plotH - (plotH * v) / yTop;
  const grid = ys
    .map((v) => `<line x1="${left}" x2="${W - 6}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/><text x="${left - 4}" y="${(y(v) + 3).toFixed(1)}" text-anchor="end" class="l">${fmt(v, 0)}</text>`)
    .join('');
  const bars = counts
    .map((c, i) => {
      const x = left + i * bw;
      const h = y(0) - y(c);
      return `<rect x="${(x + 1).toFixed(1)}" y="${y(c).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${color}"><title>${esc(labels[i]!)} cycles: ${fmt(c, 0)} walks</title></rect>` +
        (c > 0 ? `<text x="${(x + bw / 2).toFixed(1)}" y="${(y(c) - 3).toFixed(1)}" text-anchor="middle" class="v">${fmt(c, 0)}</text>` : '') +
        `<text x="${(x + bw / 2).toFixed(1)}" y="${H - bottom + 13}" text-anchor="middle" class="l">${esc(labels[i]!)}</text>`;
    })
    .join('');
  const axes = `<line x1="${left}" y1="${y(0)}" x2="${W - 6}" y2="${y(0)}" class="axis"/><line x1="${left}" y1="${top}" x2="${left}" y2="${y(0)}" class="axis"/>` +
    `<text x="${(left + W) / 2}" y="${H - 8}" text-anchor="middle" class="t">${esc(xTitle)}</text><text x="12" y="${top + plotH / 2}" transform="rotate(-90 12 ${top + plotH / 2})" text-anchor="middle" class="t">walks</text>`;
  return `<figure class="half"><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" role="img">${grid}${axes}${bars}</svg></figure>`;
}

/** Walks over time: one strip per trace, all on the same cycle axis. */
function overTime(traces: TraceSummary[], labels: string[], pick: (t: TraceSummary) => TimeHistogram, what: string): string {
  const title = `<figcaption>${esc(what[0]!.toUpperCase() + what.slice(1))} over the run</figcaption>`;
  if (traces.every((t) => pick(t).bins.every((c) => c === 0))) return `<figure>${title}<p class="empty">none in ${traces.length > 1 ? 'either run' : 'this run'}</p></figure>`;
  // One bar width for every chart of the page (walks and faulting walks), so their axes line up too.
  const width = Math.max(...traces.flatMap((t) => [t.walkTimes.width, t.faultTimes.width]));
  const end = Math.max(...traces.map((t) => t.endCycles - t.workloadStart), 1);
  const nb = Math.min(TIME_BINS, Math.ceil(end / width) || 1);
  const series = traces.map((t) => {
    const h = pick(t);
    const out = new Array<number>(nb).fill(0);
    const f = width / h.width;
    h.bins.forEach((c, i) => {
      const j = Math.floor(i / f);
      if (j < nb) out[j]! += c;
    });
    return out;
  });
  const yMax = Math.max(1, ...series.flat());
  const W = 1100;
  const stripH = 90;
  const left = 70;
  const H = traces.length * (stripH + 16) + 40;
  const bw = (W - left - 10) / nb;
  let body = '';
  series.forEach((s, k) => {
    const top = 8 + k * (stripH + 16);
    const base = top + stripH;
    body += `<text x="4" y="${top + stripH / 2 + 4}" class="t">${esc(labels[k]!)}</text><text x="${left - 6}" y="${base}" text-anchor="end" class="l">0</text><text x="${left - 6}" y="${top + 8}" text-anchor="end" class="l">${fmt(yMax, 0)}</text><line x1="${left}" y1="${top}" x2="${left}" y2="${base}" class="axis"/>`;
    body += `<line x1="${left}" y1="${base}" x2="${W - 6}" y2="${base}" class="axis"/>`;
    s.forEach((c, i) => {
      if (c === 0) return;
      const h = (stripH * c) / yMax;
      body += `<rect x="${(left + i * bw).toFixed(1)}" y="${(base - h).toFixed(1)}" width="${Math.max(0.8, bw - 0.5).toFixed(1)}" height="${h.toFixed(1)}" fill="${SERIES[k % SERIES.length]}"><title>${esc(labels[k]!)} cycles ${fmt(i * width, 0)}..${fmt((i + 1) * width, 0)}: ${c} ${what}</title></rect>`;
    });
  });
  const axisY = traces.length * (stripH + 16) + 8;
  const xt = ticks(nb * width, 6);
  body += xt
    .filter((v) => v <= nb * width)
    .map((v) => {
      const x = left + (v / width) * bw;
      return `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${axisY - 4}" y2="${axisY}" class="axis"/><text x="${x.toFixed(1)}" y="${axisY + 12}" text-anchor="middle" class="l">${fmt(v, 0)}</text>`;
    })
    .join('');
  body += `<text x="${(left + W) / 2}" y="${axisY + 28}" text-anchor="middle" class="t">emulated cycles since the workload's first statement (boot left out; the same axis for every run; ${fmt(width, 0)} cycles per bar)</text>`;
  return `<figure>${title}<svg viewBox="0 0 ${W} ${H}" role="img">${body}</svg></figure>`;
}

/** The per-measure table: cycles per run of each trace, the ratio, and the breakdown as stacked bars on one scale. */
function measureTable(traces: TraceSummary[], labels: string[]): string {
  const names = [...new Set(traces.flatMap((t) => [...t.measures.keys()]))];
  if (names.length === 0) return '<p class="empty">No measure blocks in these traces (a workload\'s <code>measure LABEL { … }</code> blocks appear here).</p>';
  const stopped = traces.some((t) => t.stops.length > 0);
  const perRun = (m: MeasureSummary | undefined): number => (m && m.runs ? m.cycles / m.runs : 0);
  const max = Math.max(1, ...traces.flatMap((t) => [...t.measures.values()].map(perRun)));
  const used = COST_COMPONENTS.filter((c) => traces.some((t) => [...t.measures.values()].some((m) => (m.breakdown[c] ?? 0) > 0)));
  const barW = 340;
  const rows = names
    .map((name) => {
      const ms = traces.map((t) => t.measures.get(name));
      const bars = ms
        .map((m, k) => {
          const pr = perRun(m);
          let x = 0;
          const total = m ? Object.values(m.breakdown).reduce((a, b) => a + b, 0) : 0;
          const segs = used
            .map((c) => {
              const v = m && total > 0 ? (m.breakdown[c] ?? 0) / m.runs : 0;
              if (v <= 0) return '';
              const w = (barW * v) / max;
              const r = `<rect x="${x.toFixed(1)}" y="0" width="${Math.max(0.5, w).toFixed(1)}" height="14" fill="${COMPONENT_COLORS[c] ?? '#999'}"><title>${esc(labels[k]!)} ${esc(name)}: ${c} ${fmt(v)} cycles/run (${fmt((100 * v) / pr)}%)</title></rect>`;
              x += w;
              return r;
            })
            .join('');
          const plain = total === 0 && pr > 0 ? `<rect x="0" y="0" width="${((barW * pr) / max).toFixed(1)}" height="14" fill="${SERIES[k % SERIES.length]}"/>` : '';
          return `<div class="bar"><span class="who">${esc(labels[k]!)}</span><svg viewBox="0 0 ${barW + 90} 14" width="${barW + 90}" height="14">${segs}${plain}<text x="${(x || (barW * pr) / max) + 4}" y="11" class="v">${fmt(pr)}</text></svg></div>`;
        })
        .join('');
      const cells = ms.map((m) => `<td>${m ? fmt(m.runs, 0) : '-'}</td><td>${m ? fmt(perRun(m)) : '-'}</td>`).join('');
      let ratio = '';
      if (traces.length === 2) {
        const [a, b] = [perRun(ms[0]), perRun(ms[1])];
        ratio = `<td>${stopped ? '<span class="stop">stopped</span>' : a > 0 && b > 0 && ms[0]!.runs === ms[1]!.runs ? (b / a).toFixed(2) + '×' : '-'}</td>`;
      }
      const why = ms
        .map((m, k) => {
          if (!m) return '';
          const total = Object.values(m.breakdown).reduce((a, b) => a + b, 0);
          const top = Object.entries(m.breakdown).sort((a, b) => b[1] - a[1])[0];
          return top && total > 0 ? `<div>${esc(labels[k]!)}: <b>${esc(top[0])}</b> ${fmt((100 * top[1]) / total, 0)}%</div>` : '';
        })
        .join('');
      // Why the second run costs more (or less): the component that moved most per run.
      let diff = '';
      if (traces.length === 2 && ms[0] && ms[1] && ms[0].runs > 0 && ms[1].runs > 0) {
        const [a, b] = [ms[0], ms[1]];
        const deltas = COST_COMPONENTS.map((c) => [c, (b.breakdown[c] ?? 0) / b.runs - (a.breakdown[c] ?? 0) / a.runs] as const).sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
        const total = perRun(b) - perRun(a);
        const top = deltas[0];
        if (top && top[1] !== 0 && total !== 0) {
          diff = `<div class="delta">${esc(labels[1]!)} − ${esc(labels[0]!)}: ${total > 0 ? '+' : ''}${fmt(total, 0)}, most in <b>${esc(top[0])}</b> ${top[1] > 0 ? '+' : ''}${fmt(top[1], 0)}</div>`;
        }
      }
      return `<tr><th>${esc(name)}</th>${cells}${ratio}<td class="txt why">${why}${diff}</td><td class="bars">${bars}</td></tr>`;
    })
    .join('');
  const head = `<tr><th>measure</th>${labels.map((l) => `<th>${esc(l)} runs</th><th>${esc(l)} cycles/run</th>`).join('')}${traces.length === 2 ? `<th>${esc(labels[1]!)}/${esc(labels[0]!)}</th>` : ''}<th class="txt">largest component, and what differs most</th><th class="bars">cycles per run by component<br><span style="font-weight:400;font-size:11px">(one scale for all bars)</span></th></tr>`;
  return `${legend(used.map((c) => [c, COMPONENT_COLORS[c] ?? '#999']))}<div class="scroll"><table class="measures">${head}${rows}</table></div>`;
}

function configTable(traces: TraceSummary[], labels: string[]): string {
  const keys = ['workload', 'backend', 'paging', 'split', 'mem', 'cpu', 'kernel', 'p2m', 'seed'];
  const present = keys.filter((k) => traces.some((t) => t.meta[k] !== undefined));
  if (present.length === 0) return '<p class="empty">These traces carry no configuration (not written by pvmmu, or by an older version).</p>';
  const rows = present.map((k) => `<tr><th>${k}</th>${traces.map((t) => `<td>${esc(String(t.meta[k] ?? '-'))}</td>`).join('')}</tr>`).join('');
  return `<table class="config"><tr><th></th>${labels.map((l) => `<th>${esc(l)}</th>`).join('')}</tr>${rows}<tr><th>trace</th>${traces.map((t) => `<td><code>${esc(t.file)}</code></td>`).join('')}</tr></table>`;
}

function banners(traces: TraceSummary[], labels: string[]): string {
  // Two runs of different things compared side by side would mislead silently: say so.
  let mismatch = '';
  if (traces.length === 2) {
    const keys = ['workload', 'paging', 'split', 'mem', 'cpu', 'kernel'];
    const differ = keys.filter((k) => traces[0]!.meta[k] !== undefined && traces[1]!.meta[k] !== undefined && traces[0]!.meta[k] !== traces[1]!.meta[k]);
    if (differ.length) {
      mismatch = `<div class="banner warn"><b>These two traces are not runs of the same thing:</b> they differ in ${differ.map((k) => `<code>${k}</code>`).join(', ')}. Their ratios compare more than the backends.</div>`;
    }
  }
  return mismatch + traces
    .flatMap((t, k) =>
      t.stops.map((s) => {
        const r = s.refusal;
        const refusal = r
          ? `<div>Refused by <b>${esc(r.op ?? '?')}</b>${r.mfn ? ` (mfn ${esc(r.mfn)})` : ''}: ${esc((r.log ?? [r.reason ?? '']).join(' / '))}</div>`
          : '';
        return `<div class="banner"><b>${esc(labels[k]!)}: the run ${s.kind === 'interrupted' ? 'was interrupted' : `stopped (${esc(s.kind)})`} at <code>${esc(s.statement)}</code></b><div>${esc(s.message)}</div>${refusal}<div class="note">Its figures cover the run up to there only; no ratio is given.</div></div>`;
      }),
    )
    .join('');
}

/** Column labels: the backend each trace names (pvmmu traces), else the file name; never two alike. */
export function reportLabels(files: string[], sums: TraceSummary[]): string[] {
  const labels = sums.map((s, i) => (typeof s.meta['backend'] === 'string' ? s.meta['backend'] : basename(files[i]!).replace(/\.json$/, '')));
  if (labels.length === 2 && labels[0] === labels[1]) {
    const names = files.map((f) => basename(f).replace(/\.json$/, ''));
    return names[0] !== names[1] ? names : [labels[0]!, labels[1]! + ' (2)'];
  }
  return labels;
}

export function renderReport(traces: TraceSummary[], labels: string[]): string {
  const overview = `<table><tr><th></th>${labels.map((s) => `<th>${esc(s)}</th>`).join('')}</tr>${(
    [
      ['events', (t: TraceSummary) => fmt(t.events, 0)],
      ['page walks', (t: TraceSummary) => fmt(t.walks, 0)],
      ['walks that faulted', (t: TraceSummary) => fmt(t.faults, 0)],
      ['cycles in walks', (t: TraceSummary) => fmt(t.walkCycles, 0)],
      ['mean walk (cycles)', (t: TraceSummary) => fmt(t.walks ? t.walkCycles / t.walks : 0)],
      ['run length (cycles)', (t: TraceSummary) => fmt(t.endCycles, 0)],
    ] as [string, (t: TraceSummary) => string][]
  )
    .map(([k, f]) => `<tr><th>${k}</th>${traces.map((t) => `<td>${f(t)}</td>`).join('')}</tr>`)
    .join('')}</table>`;

  // One latency axis for all traces: every bucket from the shortest to the longest walk.
  const all = traces.flatMap((t) => [...t.latency.keys()]);
  const lo = all.length ? Math.min(...all) : 0;
  const hi = all.length ? Math.max(...all) : 0;
  const buckets = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  const bucketLabel = (b: number): string => (b === 0 ? '≤1' : `≤${fmt(2 ** b, 0)}`);
  const yMax = Math.max(1, ...traces.flatMap((t) => buckets.map((b) => t.latency.get(b) ?? 0)));
  const latency = all.length
    ? traces
        .map((t, k) =>
          histogram(
            `${labels[k]}: walk latency`,
            buckets.map(bucketLabel),
            buckets.map((b) => t.latency.get(b) ?? 0),
            yMax,
            SERIES[k % SERIES.length]!,
            'cycles per walk (power-of-two buckets; a faulting walk includes the #PF delivery)',
          ),
        )
        .join('')
    : '<p class="empty">no page walks</p>';

  // Most-missed pages, with region and process.
  const totals = new Map<string, number>();
  for (const t of traces) for (const [p, n] of t.pages) totals.set(p, (totals.get(p) ?? 0) + n);
  // The most-missed pages of each region (user, direct map, vmalloc, …): the top of one
  // region (often the direct map) would hide the others.
  const layoutOf = traces.find((t) => t.layout)?.layout ?? null;
  const regionKey = (key: string): string => regionOf(Number(key.split('|')[1]) * 4096, layoutOf);
  const byRegion = new Map<string, [string, number][]>();
  for (const e of totals.entries()) {
    const r = regionKey(e[0]);
    if (!byRegion.has(r)) byRegion.set(r, []);
    byRegion.get(r)!.push(e);
  }
  const order = ['user', 'vmalloc', 'direct map', 'fixmap/other', '?'];
  const top = [...byRegion.entries()]
    .sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]))
    .flatMap(([, list]) => list.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 8));
  const pmax = Math.max(1, ...top.flatMap(([p]) => traces.map((t) => t.pages.get(p) ?? 0)));
  const pageRows = top
    .map(([key]) => {
      const [pid, vpn] = key.split('|') as [string, string];
      const va = Number(vpn) * 4096;
      const proc = traces.map((t) => t.processes.get(pid)).find((x) => x !== undefined) ?? `pid ${pid}`;
      const region = regionOf(va, layoutOf);
      const cells = traces
        .map((t, k) => {
          const n = t.pages.get(key) ?? 0;
          return `<td>${fmt(n, 0)}</td><td class="mini"><svg viewBox="0 0 200 10" width="200" height="10"><rect width="${((200 * n) / pmax).toFixed(1)}" height="10" fill="${SERIES[k % SERIES.length]}"/></svg></td>`;
        })
        .join('');
      return `<tr><th><code>0x${va.toString(16).padStart(8, '0')}</code></th><td class="txt">${esc(region)}</td><td class="txt">${esc(proc)}</td>${cells}</tr>`;
    })
    .join('');
  const pages = top.length
    ? `<table class="pages"><tr><th>virtual page</th><th class="txt">region</th><th class="txt">process (address space)</th>${labels.map((l) => `<th>${esc(l)} walks</th><th></th>`).join('')}</tr>${pageRows}</table>`
    : '<p class="empty">no page walks</p>';

  const pathNames = [...new Set(traces.flatMap((t) => [...t.paths.keys()]))].sort(
    (a, b) => Math.max(...traces.map((t) => t.paths.get(b)?.cycles ?? 0)) - Math.max(...traces.map((t) => t.paths.get(a)?.cycles ?? 0)),
  );
  const stopped = traces.some((t) => t.stops.length > 0);
  const pathRows = pathNames
    .map((p) => {
      const cells = traces.map((t) => `<td>${fmt(t.paths.get(p)?.count ?? 0, 0)}</td><td>${fmt(t.paths.get(p)?.cycles ?? 0, 0)}</td>`).join('');
      let ratio = '';
      if (traces.length === 2) {
        const [x, y] = [traces[0]!.paths.get(p), traces[1]!.paths.get(p)];
        ratio = `<td>${stopped ? '-' : x && y && x.cycles > 0 ? (y.cycles / x.cycles).toFixed(2) + '×' : '-'}</td>`;
      }
      return `<tr><th>${esc(p)}</th>${cells}${ratio}</tr>`;
    })
    .join('');
  const paths = pathNames.length
    ? `<table><tr><th>statement</th>${labels.map((l) => `<th>${esc(l)} count</th><th>${esc(l)} cycles</th>`).join('')}${traces.length === 2 ? '<th>ratio</th>' : ''}</tr>${pathRows}</table>`
    : '<p class="empty">no workload statements</p>';

  const kindNames = [...new Set(traces.flatMap((t) => [...t.kinds.keys()]))].sort();
  const kinds = `<table><tr><th>category</th>${labels.map((l) => `<th>${esc(l)}</th>`).join('')}</tr>${kindNames
    .map((k) => `<tr><th>${esc(k)}</th>${traces.map((t) => `<td>${fmt(t.kinds.get(k) ?? 0, 0)}</td>`).join('')}</tr>`)
    .join('')}</table>`;

  const workload = traces.map((t) => t.meta['workload']).find((w) => typeof w === 'string') as string | undefined;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>pvmmu report${workload ? ': ' + esc(workload) : ''}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:20px 28px;color:#222}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 10px;border-bottom:1px solid #e4e4e4;text-align:right;vertical-align:middle}th:first-child{text-align:left}
td.txt,th.txt{text-align:left}td.bars,th.bars{text-align:left}
.measures td.bars{padding:4px 10px}.bar{display:flex;align-items:center;gap:6px;height:17px}.bar .who{flex:0 0 44px;font-size:11px;color:#555;text-align:right}.bar svg{flex:none}
figure{margin:10px 0}figure.half{display:inline-block;width:calc(50% - 14px);min-width:420px;margin-right:10px;vertical-align:top}figure svg{width:100%;height:auto}
figcaption{font-weight:600;margin-bottom:4px}
svg text.l{font-size:10px;fill:#333}svg text.v{font-size:10px;fill:#555}svg text.t{font-size:11px;fill:#444}.axis{stroke:#888}.grid{stroke:#eee}.empty{color:#888}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;margin:4px 0}.legend i{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px}
.banner{background:#fdecea;border:1px solid #e0a19b;border-left:5px solid #c8553d;padding:8px 12px;margin:10px 0}.banner .note{color:#777;font-size:12px;margin-top:3px}.banner.warn{background:#fff8e1;border-color:#e6c36a;border-left-color:#d4a017}
.scroll{overflow-x:auto}.stop{color:#c8553d}.why{font-size:12px;min-width:190px;max-width:250px}.why .delta{color:#555;margin-top:2px}code{background:#f3f3f3;padding:1px 4px}
</style></head><body>
<h1>pvmmu report${workload ? `: <code>${esc(workload)}</code>` : ''}</h1>
${configTable(traces, labels)}
${banners(traces, labels)}
<h2>Measures: cycles per run, and where they go</h2>${measureTable(traces, labels)}
<h2>Overview</h2>${overview}
<h2>Page-walk latency</h2>${latency}
<h2>Over time</h2>${overTime(traces, labels, (t) => t.walkTimes, 'page walks')}${overTime(traces, labels, (t) => t.faultTimes, 'walks that faulted')}
<h2>Most-missed pages (the top 8 of each region)</h2>${pages}
<h2>Cost by workload statement</h2>${paths}
<h2>Events by category</h2>${kinds}
<p style="color:#777;font-size:12px">Cycles are the emulated cycle clock of the cost model (docs/traces.md). Generated by pvmmu report.</p>
</body></html>
`;
}
