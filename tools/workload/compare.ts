/**
 * Comparing a native and a Xen run of the same workload: what the guest
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
  native: RunResult;
  xen: RunResult;
}

export function compareRuns(native: RunResult, xen: RunResult): string[] {
  const d: string[] = [];
  const n = native.observations;
  const x = xen.observations;
  for (let i = 0; i < Math.max(n.length, x.length); i++) {
    if (n[i] !== x[i]) {
      d.push(`observation ${i}: native ${n[i] ?? '(none)'} / xen ${x[i] ?? '(none)'}`);
      if (d.length >= 20) break;
    }
  }
  const nf = native.failure?.message ?? null;
  const xf = xen.failure?.message ?? null;
  if (nf !== xf) d.push(`outcome: native ${nf ?? 'completed'} / xen ${xf ?? 'completed'}`);
  for (const v of native.invariants) d.push(`native invariant: ${v}`);
  for (const v of xen.invariants) d.push(`xen invariant: ${v}`);
  return d;
}

/** The `compare --json` document. */
export function compareJson(out: Comparison[]): Record<string, unknown> {
  return { workloads: out.map((c) => ({ workload: c.workload, equivalent: c.equivalent, divergences: c.divergences, native: bootJson(c.native), xen: bootJson(c.xen) })) };
}

function ratio(x: number, n: number): string {
  return n > 0 ? `${(x / n).toFixed(2)}x` : '-';
}

/** Cycles per run by cost component, native and Xen side by side, one column pair per measure. */
function breakdownTable(c: Comparison, labels: string[]): string {
  const head = ['cycles/run by component'];
  const cols: { n: Record<string, number>; x: Record<string, number>; nr: number; xr: number }[] = [];
  for (const l of labels) {
    const n = c.native.measures[l];
    const x = c.xen.measures[l];
    head.push(`${l} native`, `${l} xen`);
    cols.push({ n: (n?.breakdown ?? {}) as Record<string, number>, x: (x?.breakdown ?? {}) as Record<string, number>, nr: n?.runs ?? 1, xr: x?.runs ?? 1 });
  }
  const rows: string[][] = [];
  for (const comp of COST_COMPONENTS) {
    if (!cols.some((col) => (col.n[comp] ?? 0) !== 0 || (col.x[comp] ?? 0) !== 0)) continue;
    const row: string[] = [comp];
    for (const col of cols) row.push(num((col.n[comp] ?? 0) / col.nr, 1), num((col.x[comp] ?? 0) / col.xr, 1));
    rows.push(row);
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
  const cfg = c.native.config;
  const lines = [`${c.workload}: ${cfg.pae ? 'PAE' : '2-level'}, split ${cfg.split}, mem ${size(cfg.mem)}, cpu ${cfg.cpu}, kernel ${cfg.kernel}`];
  // A run that stopped early did less work: its cycles are no basis for a ratio.
  const stopped = c.native.failure !== null || c.xen.failure !== null;
  const labels = [...new Set([...Object.keys(c.native.measures), ...Object.keys(c.xen.measures)])];
  const rows = labels.map((l) => {
    const n = c.native.measures[l];
    const x = c.xen.measures[l];
    const runs = (n?.runs ?? 0) === (x?.runs ?? 0) ? num(n?.runs ?? 0) : `${num(n?.runs ?? 0)}/${num(x?.runs ?? 0)}`;
    const r = stopped ? 'stopped' : ratio(x?.perRun ?? 0, n?.perRun ?? 0);
    return [l, runs, num(n?.perRun ?? 0, 1), num(x?.perRun ?? 0, 1), r];
  });
  const work = (r: RunResult) => r.cycles - r.bootCycles;
  // No boot ratio: the two boots do different work (natively lowmem is mapped with a few large
  // pages; under Xen every 4 KiB pte page is built, pinned and validated) and the model leaves
  // out everything else a boot does, so their quotient measures nothing.
  rows.push(['(boot)', '1', num(c.native.bootCycles), num(c.xen.bootCycles), '-']);
  rows.push(['(workload)', '1', num(work(c.native)), num(work(c.xen)), stopped ? 'stopped' : ratio(work(c.xen), work(c.native))]);
  lines.push(table(['measure', 'runs', 'native cycles/run', 'xen cycles/run', 'xen/native'], rows, [1, 2, 3, 4]));
  if (labels.length > 0) lines.push(breakdownTable(c, labels));
  const ev = (r: RunResult) => `walks ${num(r.walks.count)}, faults ${num(faultTotal(r))}, hypercalls ${num(hypercallTotal(r.hypercalls))}`;
  lines.push(`native: ${ev(c.native)}`);
  lines.push(`xen:    ${ev(c.xen)}`);
  for (const r of [c.native, c.xen]) {
    const t = stopText(r);
    if (t) lines.push(`STOPPED: ${t}`);
    if (r.failure?.refusal) lines.push(`  refusal: ${r.failure.refusal.op}: ${r.failure.refusal.log.join(' / ')}${r.failure.refusal.mfn ? ` (mfn ${r.failure.refusal.mfn})` : ''}`);
  }
  if (c.equivalent) lines.push(`equivalent: the guest observed the same ${c.native.observations.length} results on both; invariants clean`);
  else lines.push(`DIVERGENT:\n  ${c.divergences.join('\n  ')}`);
  return lines.join('\n');
}
