/**
 * The summary of one run (cli.md): the `boot --json` document and the text
 * table `boot` prints: cycles, TLB, walks by depth, page faults by kind,
 * hypercalls by kind, pgds alive, frames used, measures.
 */
import { breakdownNonZero, breakdownSum, type CostBreakdown } from '../../emulator/cost-model.js';
import { num, size, table } from '../table.js';
import type { RunConfig } from './config.js';
import type { RunResult } from './interpreter.js';

/** Hypercalls made: the parents only (`mmuext_op:CMD` counts are a breakdown of `mmuext_op`, not more calls). */
export function hypercallTotal(rec: Record<string, number>, prefix = ''): number {
  let n = 0;
  for (const [k, v] of Object.entries(rec)) if (k.startsWith(prefix) && !k.slice(prefix.length).includes(':')) n += v;
  return n;
}

/** The --json document: cli.md's fields first, then the rest. */
export function bootJson(r: RunResult): Record<string, unknown> {
  const measures: Record<string, unknown> = {};
  for (const [k, m] of Object.entries(r.measures)) {
    measures[k] = { runs: m.runs, cycles: m.cycles, perRun: m.perRun, events: m.events, breakdown: breakdownNonZero(m.breakdown) };
  }
  return {
    workload: r.workload,
    config: r.config,
    cycles: r.cycles,
    bootCycles: r.bootCycles,
    breakdown: breakdownNonZero(r.breakdown),
    bootBreakdown: breakdownNonZero(r.bootBreakdown),
    tlb: r.tlb,
    walks: r.walks,
    pageFaults: r.pageFaults,
    hypercalls: r.hypercalls,
    measures,
    guest: r.guest,
    refusals: r.refusals,
    refusal: r.failure?.refusal ?? null,
    traps: r.traps,
    invariants: r.invariants,
    failure: r.failure,
  };
}

/** "kernel 1,234 (12.0%), tlb ...": the non-zero components in display order, with their share. */
export function breakdownText(b: CostBreakdown): string {
  const total = breakdownSum(b);
  const parts = Object.entries(breakdownNonZero(b)).map(([k, v]) => `${k} ${num(v)} (${((100 * v) / total).toFixed(1)}%)`);
  return parts.length ? parts.join(', ') : '(none)';
}

export function bootText(r: RunResult): string {
  const c = r.config;
  const lines: string[] = [];
  lines.push(`${r.workload}: backend ${c.backend}, ${c.pae ? 'PAE' : '2-level'}, split ${c.split}, mem ${size(c.mem)}, cpu ${c.cpu}, kernel ${c.kernel}`);
  lines.push('');
  // Sub-commands (`mmuext_op:PIN_L3_TABLE`) inside their hypercall's count, not beside it.
  const hc = Object.entries(r.hypercalls)
    .filter(([k]) => !k.includes(':'))
    .map(([k, v]) => {
      const subs = Object.entries(r.hypercalls).filter(([s]) => s.startsWith(`${k}:`));
      return `${k} ${num(v)}${subs.length ? ` (${subs.map(([s, n]) => `${s.slice(k.length + 1)} ${num(n)}`).join(', ')})` : ''}`;
    })
    .join(', ');
  const rows: string[][] = [
    ['cycles', `${num(r.cycles)} (boot ${num(r.bootCycles)}, workload ${num(r.cycles - r.bootCycles)})`],
    ['breakdown', breakdownText(r.breakdown)],
    ['boot', breakdownText(r.bootBreakdown)],
    ['TLB', `hits ${num(r.tlb.hits)} (second level ${num(r.tlb.l2Hits)}), misses ${num(r.tlb.misses)}, flushes ${num(r.tlb.flushes)}, invlpg ${num(r.tlb.invlpg)}`],
    ['page walks', `${num(r.walks.count)} (1 entry ${num(r.walks.byDepth['1'] ?? 0)}, 2 entries ${num(r.walks.byDepth['2'] ?? 0)}), ${num(r.walks.cycles)} cycles`],
    ['page faults', `user ${num(r.pageFaults.user)}, cow ${num(r.pageFaults.cow)}, vmalloc ${num(r.pageFaults.vmalloc)}, segv ${num(r.pageFaults.segv)}`],
    ['hypercalls', hc],
    ['guest', `pgds alive ${num(r.guest.pgdsAlive)}, frames used ${num(r.guest.framesUsed)} of ${num(r.guest.framesTotal)}, statements ${num(r.guest.statements)}`],
  ];
  const traps = Object.entries(r.traps).filter(([, v]) => v > 0);
  if (traps.length) rows.push(['traps', traps.map(([k, v]) => `${k} ${num(v)}`).join(', ')]);
  const refusals = Object.entries(r.refusals).filter(([, v]) => v > 0);
  if (refusals.length) rows.push(['refusals', refusals.map(([k, v]) => `${k} ×${v}`).join('; ')]);
  const rf = r.failure?.refusal;
  if (rf) rows.push(['refused', `${rf.op}${rf.mfn ? ` (mfn ${rf.mfn})` : ''} at ${rf.statement}: ${rf.log.join(' / ')}`]);
  const w = Math.max(...rows.map((x) => x[0]!.length));
  for (const [k, v] of rows) lines.push(`${k!.padEnd(w)}  ${v}`);
  const ms = Object.entries(r.measures);
  if (ms.length) {
    lines.push('');
    lines.push(
      table(
        ['measure', 'runs', 'cycles', 'cycles/run', 'walks/run', 'faults/run', 'hypercalls/run'],
        ms.map(([k, m]) => {
          const hcs = hypercallTotal(m.events, 'hypercalls.');
          return [k, num(m.runs), num(m.cycles), num(m.perRun, 2), num((m.events['walks'] ?? 0) / m.runs, 1), num((m.events['pageFaults'] ?? 0) / m.runs, 1), num(hcs / m.runs, 1)];
        }),
        [1, 2, 3, 4, 5, 6],
      ),
    );
  }
  lines.push('');
  lines.push(r.failure ? `FAILED: ${r.failure.message}` : r.invariants.length ? `invariants broken: ${r.invariants.length}` : 'ok: run completed, invariants clean');
  return lines.join('\n');
}

/** The configuration a trace carries as metadata (its `otherData`). */
export function traceMetadata(workload: string, cfg: RunConfig, layout: { seed: number; xenP2m: string; xenAbove4g: boolean }): Record<string, unknown> {
  return {
    workload,
    backend: cfg.backend,
    paging: cfg.pae ? 'PAE' : '2-level',
    split: cfg.split,
    mem: size(cfg.mem),
    cpu: cfg.cpu,
    kernel: cfg.kernel,
    ...(cfg.backend === 'xen' ? { p2m: layout.xenP2m + (layout.xenAbove4g ? ', above 4 GiB' : ''), ...(layout.xenP2m === 'shuffled' ? { seed: layout.seed } : {}) } : {}),
  };
}
