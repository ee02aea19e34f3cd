/**
 * Comparing runs of the same workload on several backends: what the guest
 * observed (every read, kread, segv, expect, the failure if any) must be
 * identical and both backends' invariants clean (used by compare, the
 * regression matrix, the fuzzer and the benchmarks); and the side-by-side
 * text `compare` prints.
 */
import { COST_COMPONENTS } from '../../emulator/cost-model.js';
import { num, size, table } from '../table.js';
import type { RunResult } from './interpreter.js';
import { bootJson, hypercallTotal } from './summary.js';

export interface Comparison {
  workload: string;
  equivalent: boolean;
  divergences: string[];
  /** One run per backend, in the order asked for; ratios are to the first. */
  runs: RunResult[];
}

/** Two runs of one workload: what the guest observed must be the same, and both backends' invariants clean. */
export function compareRuns(a: RunResult, b: RunResult): string[] {
  return compareAll([a, b]);
}

/**
 * Every run against the first: the same observations and outcome; then the
 * invariant violations of every run (each once). Empty when equivalent.
 */
export function compareAll(runs: RunResult[]): string[] {
  const d: string[] = [];
  const ref = runs[0];
  if (ref === undefined) return d;
  const rn = ref.config.backend;
  for (const other of runs.slice(1)) {
    const on = other.config.backend;
    const n = ref.observations;
    const x = other.observations;
    let k = 0;
    for (let i = 0; i < Math.max(n.length, x.length); i++) {
      if (n[i] !== x[i]) {
        d.push(`observation ${i}: ${rn} ${n[i] ?? '(none)'} / ${on} ${x[i] ?? '(none)'}`);
        if (++k >= 20) break;
      }
    }
    const nf = ref.failure?.message ?? null;
    const xf = other.failure?.message ?? null;
    if (nf !== xf) d.push(`outcome: ${rn} ${nf ?? 'completed'} / ${on} ${xf ?? 'completed'}`);
  }
  for (const r of runs) for (const v of r.invariants) d.push(`${r.config.backend} invariant: ${v}`);
  return d;
}

/** The `compare --json` document: per workload, `backends` (the order) and one entry per backend named by its kind. */
export function compareJson(out: Comparison[]): Record<string, unknown> {
  return {
    workloads: out.map((c) => {
      const w: Record<string, unknown> = { workload: c.workload, equivalent: c.equivalent, divergences: c.divergences, backends: c.runs.map((r) => r.config.backend) };
      for (const r of c.runs) w[r.config.backend] = bootJson(r);
      return w;
    }),
  };
}

function ratio(x: number, n: number): string {
  return n > 0 ? `${(x / n).toFixed(2)}x` : '-';
}

/**
 * Cycles per run by cost component. Two backends: one column pair per
 * measure; more: one row per measure and component, one column per backend.
 */
function breakdownTable(c: Comparison, labels: string[]): string {
  const per = (r: RunResult, l: string): { b: Record<string, number>; runs: number } => {
    const m = r.measures[l];
    return { b: (m?.breakdown ?? {}) as Record<string, number>, runs: m?.runs ?? 1 };
  };
  if (c.runs.length <= 2) {
    const head = ['cycles/run by component'];
    const cols: { b: Record<string, number>; runs: number }[] = [];
    for (const l of labels) {
      for (const r of c.runs) {
        head.push(`${l} ${r.config.backend}`);
        cols.push(per(r, l));
      }
    }
    const rows: string[][] = [];
    for (const comp of COST_COMPONENTS) {
      if (!cols.some((col) => (col.b[comp] ?? 0) !== 0)) continue;
      rows.push([comp, ...cols.map((col) => num((col.b[comp] ?? 0) / col.runs, 1))]);
    }
    return table(head, rows, head.map((_, i) => i).slice(1));
  }
  const head = ['cycles/run by component', ...c.runs.map((r) => r.config.backend)];
  const rows: string[][] = [];
  for (const l of labels) {
    const cols = c.runs.map((r) => per(r, l));
    for (const comp of COST_COMPONENTS) {
      if (!cols.some((col) => (col.b[comp] ?? 0) !== 0)) continue;
      rows.push([`${l} ${comp}`, ...cols.map((col) => num((col.b[comp] ?? 0) / col.runs, 1))]);
    }
  }
  return table(head, rows, head.map((_, i) => i).slice(1));
}

/** Page faults the kernel handled, SIGSEGV included (as `boot` counts them). */
export function faultTotal(r: RunResult): number {
  return r.pageFaults.user + r.pageFaults.cow + r.pageFaults.vmalloc + r.pageFaults.segv;
}

/** Where and why a run stopped, for a banner; null when it completed. */
export function stopText(r: RunResult): string | null {
  const f = r.failure;
  if (!f) return null;
  return `${r.config.backend} stopped (${f.kind}) at ${f.statement ?? 'line ' + f.line}: ${f.message}`;
}

export function compareText(c: Comparison): string {
  const runs = c.runs;
  const first = runs[0]!;
  const names = runs.map((r) => r.config.backend);
  const cfg = first.config;
  const lines = [`${c.workload}: ${cfg.pae ? 'PAE' : '2-level'}, split ${cfg.split}, mem ${size(cfg.mem)}, cpu ${cfg.cpu}, kernel ${cfg.kernel}`];
  // A run that stopped early did less work: its cycles are no basis for a ratio.
  const stopped = runs.some((r) => r.failure !== null);
  const labels = [...new Set(runs.flatMap((r) => Object.keys(r.measures)))];
  const head = ['measure', 'runs', `${names[0]} cycles/run`];
  for (const n of names.slice(1)) head.push(`${n} cycles/run`, `${n}/${names[0]}`);
  const rows = labels.map((l) => {
    const ms = runs.map((r) => r.measures[l]);
    const counts = ms.map((m) => m?.runs ?? 0);
    const row = [l, counts.every((n) => n === counts[0]) ? num(counts[0]!) : counts.map((n) => num(n)).join('/'), num(ms[0]?.perRun ?? 0, 1)];
    for (const m of ms.slice(1)) row.push(num(m?.perRun ?? 0, 1), stopped ? 'stopped' : ratio(m?.perRun ?? 0, ms[0]?.perRun ?? 0));
    return row;
  });
  const work = (r: RunResult) => r.cycles - r.bootCycles;
  // No boot ratio: the boots do different work (natively lowmem is mapped with a few large
  // pages; under Xen every 4 KiB pte page is built, pinned and validated) and the model leaves
  // out everything else a boot does, so their quotient measures nothing.
  const boot = ['(boot)', '1', num(first.bootCycles)];
  const total = ['(workload)', '1', num(work(first))];
  for (const r of runs.slice(1)) {
    boot.push(num(r.bootCycles), '-');
    total.push(num(work(r)), stopped ? 'stopped' : ratio(work(r), work(first)));
  }
  rows.push(boot, total);
  lines.push(table(head, rows, head.map((_, i) => i).slice(1)));
  // No empty breakdown table for a workload without measures (cli).
  if (labels.length > 0) lines.push(breakdownTable(c, labels));
  const ev = (r: RunResult) => `walks ${num(r.walks.count)}, faults ${num(faultTotal(r))}, hypercalls ${num(hypercallTotal(r.hypercalls))}`;
  const w = Math.max(...names.map((n) => n.length)) + 1;
  for (const r of runs) lines.push(`${(r.config.backend + ':').padEnd(w)} ${ev(r)}`);
  for (const r of runs) {
    const t = stopText(r);
    if (t) lines.push(`STOPPED: ${t}`);
    if (r.failure?.refusal) lines.push(`  refusal: ${r.failure.refusal.op}: ${r.failure.refusal.log.join(' / ')}${r.failure.refusal.mfn ? ` (mfn ${r.failure.refusal.mfn})` : ''}`);
  }
  const all = runs.length === 2 ? 'both' : `all ${runs.length} backends`;
  if (c.equivalent) lines.push(`equivalent: the guest observed the same ${first.observations.length} results on ${all}; invariants clean`);
  else lines.push(`DIVERGENT:\n  ${c.divergences.join('\n  ')}`);
  return lines.join('\n');
}
