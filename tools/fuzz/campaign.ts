/**
 * A fuzzing campaign: both fuzzers over a range of seeds or a time budget
 * (the seeds as work items for --jobs and --shard: sweep.ts),
 * the totals (seeds, statements, accesses checked) and the failures, each
 * workload failure shrunk and saved as tests/regression/fuzz-found/seed-N.pvw,
 * each MMU failure saved as a vector in tests/vectors/fuzz-found.json. Used
 * by run.ts (`npm run fuzz`) and the test suite's fixed-seed slice.
 */
import { join } from 'node:path';
import type { RunConfig } from '../workload/config.js';
import type { GenOptions } from './workload-gen.js';
import { fuzzSeed, saveRegression, shrink, statementCount, type Mutation } from './differential.js';
import { checkMmuSeed, saveVectors, type MmuSeedOutcome } from './mmu-gen.js';
import type { Mmu } from '../../emulator/mmu.js';

export interface WorkloadFailure {
  seed: number;
  config: RunConfig;
  signature: string;
  failures: string[];
  statements: number;
  shrunkStatements: number;
  shrunk: string;
  saved: string | null;
}

export interface MmuFailure {
  seed: number;
  name: string;
  diffs: string[];
  saved: string | null;
}

export interface FuzzReport {
  workload: { seeds: number; statements: number; accesses: number; globalStale: number; failures: WorkloadFailure[]; expected: { seed: number; why: string }[] };
  mmu: { seeds: number; portable: number; accesses: number; failures: MmuFailure[] };
}

export interface FuzzOptions {
  /** Save shrunk workloads and failing vectors under this project root (null: do not save). */
  saveRoot?: string | null;
  mutate?: Mutation;
  mmuMutate?: (mmu: Mmu) => void;
  shrinkBudget?: number;
  /** Generator options (e.g. a shorter workload). */
  gen?: GenOptions;
  /**
   * With saveRoot: queue the writes here (in order) instead of writing, for
   * whoever assembles a parallel campaign (sweep.ts applySaves); `saved`
   * names the file all the same.
   */
  saveLater?: SaveOp[];
}

/** A deferred write of a failing seed (saveLater). */
export type SaveOp =
  | { kind: 'workload'; path: string; outcome: { seed: number; config: RunConfig; signature: string; text: string }; shrunk: string; failures: string[] }
  | { kind: 'mmu'; path: string; expectedPath: string; outcome: MmuSeedOutcome };

/** Perform deferred writes, in order. */
export function applySaves(ops: readonly SaveOp[]): void {
  for (const op of ops) {
    if (op.kind === 'workload') saveRegression(op.path, op.outcome, op.shrunk, op.failures);
    else saveVectors(op.path, op.expectedPath, [op.outcome]);
  }
}

export function emptyReport(): FuzzReport {
  return {
    workload: { seeds: 0, statements: 0, accesses: 0, globalStale: 0, failures: [], expected: [] },
    mmu: { seeds: 0, portable: 0, accesses: 0, failures: [] },
  };
}

/** Check one workload seed into `rep`; a failure is shrunk and (optionally) saved. */
export function fuzzWorkloadSeed(rep: FuzzReport, seed: number, opts: FuzzOptions = {}): WorkloadFailure | null {
  const o = fuzzSeed(seed, { mutate: opts.mutate, gen: opts.gen });
  rep.workload.seeds++;
  rep.workload.statements += o.statements;
  rep.workload.accesses += o.accesses;
  rep.workload.globalStale += o.globalStale;
  for (const why of o.expected) rep.workload.expected.push({ seed, why });
  if (!o.signature) return null;
  const s = shrink(o.text, seed, o.signature, opts.mutate, opts.shrinkBudget ?? 400);
  const failures = s.failures.length ? s.failures : o.failures;
  let saved: string | null = null;
  if (opts.saveRoot) {
    saved = join(opts.saveRoot, 'tests', 'regression', 'fuzz-found', `seed-${seed}.pvw`);
    if (opts.saveLater) opts.saveLater.push({ kind: 'workload', path: saved, outcome: { seed: o.seed, config: o.config, signature: o.signature, text: o.text }, shrunk: s.text, failures });
    else saveRegression(saved, o, s.text, failures);
  }
  const f: WorkloadFailure = {
    seed,
    config: o.config,
    signature: o.signature,
    failures,
    statements: statementCount(o.text),
    shrunkStatements: statementCount(s.text),
    shrunk: s.text,
    saved,
  };
  rep.workload.failures.push(f);
  return f;
}

/** Check one MMU seed into `rep`; a failing case is (optionally) saved as a vector. */
export function fuzzMmuSeed(rep: FuzzReport, seed: number, opts: FuzzOptions = {}): MmuSeedOutcome {
  const o = checkMmuSeed(seed, opts.mmuMutate);
  rep.mmu.seeds++;
  if (o.portable) {
    rep.mmu.portable++;
    rep.mmu.accesses += o.accesses;
  }
  if (o.diffs.length) {
    let saved: string | null = null;
    if (opts.saveRoot) {
      saved = join(opts.saveRoot, 'tests', 'vectors', 'fuzz-found.json');
      const expectedPath = join(opts.saveRoot, 'tests', 'vectors', 'fuzz-found.expected.json');
      if (opts.saveLater) opts.saveLater.push({ kind: 'mmu', path: saved, expectedPath, outcome: o });
      else saveVectors(saved, expectedPath, [o]);
    }
    rep.mmu.failures.push({ seed, name: o.raw.name, diffs: o.diffs, saved });
  }
  return o;
}

export function reportText(rep: FuzzReport, seconds: number | null, count: { start: number; seeds: number } | null = null): string {
  const w = rep.workload;
  const m = rep.mmu;
  const lines = [
    `workload fuzzer: ${w.seeds} seeds, ${w.statements} statements run (every backend the configuration allows: native, Xen, VMI, lguest in 2-level), ${w.accesses} accesses checked against the reference walk` +
      (w.globalStale ? ` (${w.globalStale} hits on global kernel entries another pgd filled, checked against swapper_pg_dir)` : ''),
    `mmu fuzzer:      ${m.seeds} seeds, ${m.portable} portable cases compared, ${m.accesses} accesses checked against ref-walker.mjs`,
  ];
  if (seconds !== null) lines.unshift(`pvmmu fuzz: ${seconds} s`);
  if (count !== null) lines.unshift(`pvmmu fuzz: seeds ${count.start}..${count.start + count.seeds - 1}`);
  if (w.expected.length) {
    lines.push(`expected outcomes (not failures; docs/reliability.md): ${w.expected.length} seeds`);
    for (const e of w.expected.slice(0, 10)) lines.push(`  seed ${e.seed}: ${e.why.replace(/\n/g, ' ').slice(0, 300)}`);
  }
  for (const f of w.failures) {
    lines.push(`FAIL workload seed ${f.seed} (${f.signature}), shrunk from ${f.statements} to ${f.shrunkStatements} statements${f.saved ? `, saved as ${f.saved}` : ''}:`);
    for (const x of f.failures.slice(0, 6)) lines.push(`  ${x}`);
    lines.push(...f.shrunk.trimEnd().split('\n').map((l) => `    | ${l}`));
  }
  for (const f of m.failures) {
    lines.push(`FAIL mmu seed ${f.seed} (${f.name})${f.saved ? `, saved in ${f.saved}` : ''}:`);
    for (const x of f.diffs.slice(0, 6)) lines.push(`  ${x}`);
  }
  lines.push(w.failures.length + m.failures.length === 0 ? 'no failures' : `${w.failures.length + m.failures.length} failing seeds`);
  return lines.join('\n');
}

