/**
 * `pvmmu lmbench`: the lmbench latency table (lmbench 2/3 "Processor,
 * Processes", "Context switching" and "File & VM system latencies" rows that
 * concern the MMU), each row one workload in tools/workloads/lmbench/ that a
 * user can read and change. Each row's figure is its measure's cycles per
 * run (page fault: per fault counted), in µs at the preset's clock, one
 * column per backend run (native, Xen, VMI, lguest) with each one's ratio to
 * native.
 */
import { join } from 'node:path';
import { getPreset } from '../../emulator/cost-model.js';
import { ROOT } from '../regression/matrix.js';
import { num, table } from '../table.js';
import type { RunResult } from '../workload/interpreter.js';
import { runWorkload } from '../workload/interpreter.js';
import type { Backend } from '../workload/config.js';
import { loadWorkload } from '../workload/load.js';

export interface LmbenchRowSpec {
  /** The row as lmbench's summary names it. */
  label: string;
  /** The workload under tools/workloads/lmbench/. */
  file: string;
  /** The measure the figure comes from. */
  measure: string;
  /** Cycles per run, or per event counted (page fault: per fault). */
  per: 'run' | 'faults.user';
}

export const LMBENCH_ROWS: readonly LmbenchRowSpec[] = [
  { label: 'null syscall', file: 'null-syscall.pvw', measure: 'null-syscall', per: 'run' },
  { label: 'fork+exit', file: 'fork-exit.pvw', measure: 'fork-exit', per: 'run' },
  { label: 'fork+exec', file: 'fork-exec.pvw', measure: 'fork-exec', per: 'run' },
  { label: 'ctxsw 2p/0K', file: 'ctxsw-0k.pvw', measure: 'ctxsw', per: 'run' },
  { label: 'ctxsw 2p/16K', file: 'ctxsw-16k.pvw', measure: 'ctxsw', per: 'run' },
  { label: 'mmap+munmap 4M', file: 'mmap-munmap.pvw', measure: 'mmap-munmap', per: 'run' },
  { label: 'prot fault', file: 'prot-fault.pvw', measure: 'prot-fault', per: 'run' },
  { label: 'page fault', file: 'page-fault.pvw', measure: 'page-fault', per: 'faults.user' },
];

export const LMBENCH_DIR = join(ROOT, 'tools', 'workloads', 'lmbench');

export interface LmbenchOptions {
  backends: Backend[];
  pae?: boolean;
  cpu?: string;
  seed?: number;
}

export interface LmbenchCell {
  cycles: number;
  us: number;
  /** The measure's cycles by component, per operation. */
  breakdown: Record<string, number>;
}

export interface LmbenchRow {
  label: string;
  workload: string;
  native?: LmbenchCell;
  xen?: LmbenchCell;
  vmi?: LmbenchCell;
  lguest?: LmbenchCell;
  /** xen / native, when both ran. */
  ratio?: number;
  /** Each other backend / native, when native ran. */
  ratios?: Partial<Record<Backend, number>>;
}

export interface LmbenchResult {
  cpu: string;
  clockMhz: number;
  pae: boolean;
  rows: LmbenchRow[];
}

function cell(r: RunResult, spec: LmbenchRowSpec, mhz: number): LmbenchCell {
  if (r.failure) throw new Error(`lmbench ${spec.file}: ${r.failure.message}`);
  const m = r.measures[spec.measure];
  if (m === undefined) throw new Error(`lmbench ${spec.file}: no measure '${spec.measure}'`);
  const ops = spec.per === 'run' ? m.runs : (m.events[spec.per] ?? 0);
  if (!(ops > 0)) throw new Error(`lmbench ${spec.file}: nothing counted for '${spec.per}'`);
  const breakdown: Record<string, number> = {};
  for (const [k, v] of Object.entries(m.breakdown)) if (v !== 0) breakdown[k] = Math.round((v / ops) * 10) / 10;
  const cycles = m.cycles / ops;
  return { cycles: Math.round(cycles * 10) / 10, us: Math.round((cycles / mhz) * 1000) / 1000, breakdown };
}

/** Load every row's workload (all input errors first), then run them. */
export function runLmbench(opts: LmbenchOptions): LmbenchResult {
  const overrides = { ...(opts.pae !== undefined ? { pae: opts.pae } : {}), ...(opts.cpu !== undefined ? { cpu: opts.cpu } : {}) };
  const loaded = LMBENCH_ROWS.map((spec) => ({ spec, ...loadWorkload(join(LMBENCH_DIR, spec.file), overrides, { backends: opts.backends }) }));
  const cfg0 = loaded[0]!.cfg;
  const mhz = getPreset(cfg0.cpu).clockMhz;
  const rows: LmbenchRow[] = loaded.map(({ spec, script, cfg }) => {
    const row: LmbenchRow = { label: spec.label, workload: `tools/workloads/lmbench/${spec.file}` };
    for (const b of opts.backends) row[b] = cell(runWorkload(script, { ...cfg, backend: b }, { seed: opts.seed ?? 1 }), spec, mhz);
    if (row.native && row.xen) row.ratio = Math.round((row.xen.cycles / row.native.cycles) * 100) / 100;
    if (row.native && opts.backends.some((b) => b !== 'native' && b !== 'xen')) {
      row.ratios = {};
      for (const b of opts.backends) if (b !== 'native' && row[b]) row.ratios[b] = Math.round((row[b]!.cycles / row.native.cycles) * 100) / 100;
    }
    return row;
  });
  return { cpu: cfg0.cpu, clockMhz: mhz, pae: cfg0.pae, rows };
}

const KINDS = ['native', 'xen', 'vmi', 'lguest'] as const;

export function lmbenchText(r: LmbenchResult): string {
  const ran = KINDS.filter((b) => r.rows.some((x) => x[b]));
  const hasNative = ran.includes('native');
  const head = ['lmbench row'];
  for (const b of ran) {
    head.push(`${b} µs`, `${b} cycles`);
    if (b !== 'native' && hasNative) head.push(`${b}/native`);
  }
  const rows = r.rows.map((x) => {
    const out = [x.label];
    for (const b of ran) {
      const c = x[b];
      out.push(c ? num(c.us, 3) : '-', c ? num(c.cycles, 0) : '-');
      if (b !== 'native' && hasNative) out.push(c && x.native ? `${(Math.round((c.cycles / x.native.cycles) * 100) / 100).toFixed(2)}x` : '-');
    }
    return out;
  });
  const lines = [
    `lmbench latencies: cpu ${r.cpu} at ${r.clockMhz} MHz, ${r.pae ? 'PAE' : '2-level'} paging (workloads: tools/workloads/lmbench/)`,
    table(head, rows, head.map((_, i) => i).slice(1)),
  ];
  if (r.cpu !== 'p6') {
    lines.push(
      `note: the kernel's fixed path costs are calibrated on a native P6 lmbench (Pentium III, 997 MHz) and carried to ${r.cpu} in cycles (GUESS); see docs/cost-model.md`,
    );
  }
  return lines.join('\n');
}

export function lmbenchJson(r: LmbenchResult): Record<string, unknown> {
  return { cpu: r.cpu, clockMhz: r.clockMhz, pae: r.pae, rows: r.rows };
}
