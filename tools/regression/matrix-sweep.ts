/**
 * The regression matrix as a sweep (`pvmmu matrix`, `npm run golden:update`):
 * one work item per (workload, configuration) of matrix.ts, in the order of
 * listWorkloads and configsFor, for the sweep pool (--jobs) and shards
 * (--shard, `pvmmu merge`). An item's result is plain data: each backend's
 * outcome and golden figures, the divergences, and the figures' differences
 * from tests/golden for that configuration. The report (rows in item order,
 * totals) is the same for every --jobs and for merged shards.
 */
import { configsFor, listWorkloads, loadScript, runConfig, matrixBackends } from './matrix.js';
import { backendFigures, diffGolden, formatChange, goldenOf, readGolden, type GoldenBackend, type GoldenChange, type GoldenFile } from './golden.js';
import type { SweepTask, TaskRef } from '../sweep/pool.js';
import { plural, table } from '../table.js';

export interface MatrixItem {
  workload: string;
  config: string;
}

export interface MatrixRow {
  workload: string;
  config: string;
  /** Backend -> "completed" or the failure kind. */
  outcomes: Record<string, string>;
  divergences: string[];
  /** Differences from tests/golden for this configuration (empty: matches). */
  changes: GoldenChange[];
}

export interface MatrixItemResult {
  row: MatrixRow;
  /** The figures golden:update writes. */
  figures: GoldenFile['configs'][string];
}

export interface MatrixReport {
  workloads: number;
  runs: number;
  divergent: number;
  changed: number;
  rows: MatrixRow[];
}

/** The items: every workload (sorted) in every configuration it runs under. */
export function matrixItems(workloads = listWorkloads()): MatrixItem[] {
  return workloads.flatMap((w) => configsFor(loadScript(w)).map((c) => ({ workload: w, config: c.label })));
}

export function runMatrixItem(items: MatrixItem[], i: number): MatrixItemResult {
  const { workload, config } = items[i]!;
  const script = loadScript(workload);
  const c = configsFor(script).find((x) => x.label === config)!;
  const run = runConfig(workload, script, c);
  const figures: GoldenFile['configs'][string] = { native: backendFigures(run.native.result), xen: backendFigures(run.xen.result), vmi: backendFigures(run.vmi.result) };
  if (run.lguest !== null) figures.lguest = backendFigures(run.lguest.result);
  const outcomes: Record<string, string> = {};
  for (const b of matrixBackends(run)) outcomes[b.name] = (figures[b.name] as GoldenBackend).outcome;
  const old = readGolden(workload);
  const now = goldenOf(workload, [run]);
  const g = old?.configs[config];
  const changes = diffGolden(old === null ? null : { ...old, configs: g ? { [config]: g } : {} }, now);
  return { row: { workload, config, outcomes, divergences: run.divergences, changes }, figures };
}

export const matrixTask: SweepTask<{ workloads: string[] }, MatrixItem[], MatrixItemResult> = {
  setup: (init) => matrixItems(init.workloads),
  run: runMatrixItem,
};

export const MATRIX_TASK: TaskRef = { module: import.meta.url, name: 'matrixTask' };

export function assembleMatrix(rows: MatrixRow[]): MatrixReport {
  return {
    workloads: new Set(rows.map((r) => r.workload)).size,
    runs: rows.length,
    divergent: rows.filter((r) => r.divergences.length > 0).length,
    changed: rows.filter((r) => r.changes.length > 0).length,
    rows,
  };
}

/** Exit 1: a configuration whose figures differ from tests/golden. */
export function matrixFailed(rep: MatrixReport): boolean {
  return rep.changed > 0;
}

export function matrixText(rep: MatrixReport): string {
  const lines = [
    table(
      ['workload', 'config', 'outcomes', 'divergences', 'golden'],
      rep.rows.map((r) => [
        r.workload,
        r.config,
        Object.entries(r.outcomes)
          .map(([b, o]) => `${b} ${o}`)
          .join(', '),
        String(r.divergences.length),
        r.changes.length === 0 ? 'matches' : `${plural(r.changes.length, 'change')}`,
      ]),
      [3],
    ),
  ];
  const changes = rep.rows.flatMap((r) => r.changes);
  if (changes.length > 0) {
    lines.push('', 'changed figures (accept with npm run golden:update, after review):');
    for (const c of changes.slice(0, 40)) lines.push(`  ${formatChange(c)}`);
    if (changes.length > 40) lines.push(`  … and ${changes.length - 40} more`);
  }
  lines.push(
    '',
    `${matrixFailed(rep) ? 'FAILED' : 'ok'}: ${plural(rep.runs, 'configuration')} of ${plural(rep.workloads, 'workload')}, ${rep.changed} differing from tests/golden; ${rep.divergent} with backend divergences (expected for the seed-* and prepatch workloads: tests/regression/expected-outcomes.json)`,
  );
  return lines.join('\n');
}
