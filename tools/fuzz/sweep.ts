/**
 * The fuzzing campaign as work items for the sweep pool (tools/sweep/pool.ts),
 * so `npm run fuzz` runs in N worker threads (--jobs) and in shards
 * (--shard, merged by `pvmmu merge`):
 *
 * - count mode (--seeds N from --start S): item i is workload seed S+i and
 *   MMU seed S+i. The report is the sum of the items' reports in item order,
 *   so it is the same, byte for byte, for every --jobs and for merged shards.
 * - time mode (--seconds T): workload seeds S, S+1, ... are started while
 *   two thirds of T remain unspent, then MMU seeds in batches of 50 until T
 *   is spent; every started item finishes and the report covers exactly the
 *   seeds started, in order. How many that is depends on the machine and on
 *   --jobs (that is what a time budget means); the seeds are always a
 *   contiguous range from S.
 *
 * Workers never write files: failing seeds are queued (FuzzOptions.saveLater)
 * and written by the main thread in item order (applySaves).
 */
import { performance } from 'node:perf_hooks';
import type { TaskRef, SweepTask } from '../sweep/pool.js';
import { runPool } from '../sweep/pool.js';
import { applySaves, emptyReport, fuzzMmuSeed, fuzzWorkloadSeed, type FuzzOptions, type FuzzReport, type SaveOp } from './campaign.js';
import type { GenOptions } from './workload-gen.js';

/** What an item is: a workload seed and an MMU seed ("seeds"), a workload seed, or a batch of MMU seeds. */
export type FuzzItemKind = 'seeds' | 'workload' | 'mmu-batch';

export const MMU_BATCH = 50;

export interface FuzzInit {
  kind: FuzzItemKind;
  start: number;
  saveRoot: string | null;
  gen?: GenOptions;
  shrinkBudget?: number;
}

interface FuzzCtx {
  init: FuzzInit;
  /** Test doubles (in-process only). */
  opts: FuzzOptions;
}

export interface FuzzItem {
  rep: FuzzReport;
  saves: SaveOp[];
}

export function runFuzzItem(ctx: FuzzCtx, i: number): FuzzItem {
  const rep = emptyReport();
  const saves: SaveOp[] = [];
  const { init } = ctx;
  const o: FuzzOptions = { ...ctx.opts, saveRoot: init.saveRoot, gen: init.gen, shrinkBudget: init.shrinkBudget, saveLater: saves };
  if (init.kind === 'mmu-batch') {
    for (let j = 0; j < MMU_BATCH; j++) fuzzMmuSeed(rep, init.start + i * MMU_BATCH + j, o);
  } else {
    fuzzWorkloadSeed(rep, init.start + i, o);
    if (init.kind === 'seeds') fuzzMmuSeed(rep, init.start + i, o);
  }
  return { rep, saves };
}

export const fuzzTask: SweepTask<FuzzInit, FuzzCtx, FuzzItem> = {
  setup: (init) => ({ init, opts: {} }),
  run: runFuzzItem,
};

export const FUZZ_TASK: TaskRef = { module: import.meta.url, name: 'fuzzTask' };

/** Add `b` into `a` (counts summed, lists appended in order). */
export function addReport(a: FuzzReport, b: FuzzReport): FuzzReport {
  a.workload.seeds += b.workload.seeds;
  a.workload.statements += b.workload.statements;
  a.workload.accesses += b.workload.accesses;
  a.workload.globalStale += b.workload.globalStale;
  a.workload.failures.push(...b.workload.failures);
  a.workload.expected.push(...b.workload.expected);
  a.mmu.seeds += b.mmu.seeds;
  a.mmu.portable += b.mmu.portable;
  a.mmu.accesses += b.mmu.accesses;
  a.mmu.failures.push(...b.mmu.failures);
  return a;
}

export interface FuzzSweepOptions {
  jobs: number;
  saveRoot: string | null;
  gen?: GenOptions;
  shrinkBudget?: number;
  /** Test doubles: only with jobs 1. */
  mutate?: FuzzOptions['mutate'];
  mmuMutate?: FuzzOptions['mmuMutate'];
  onDone?: (done: number, rep: FuzzReport) => void;
  /** Asked before each item is started: false starts no more (an interrupted sweep). */
  more?: () => boolean;
}

async function sweep(kind: FuzzItemKind, start: number, from: number, to: number, o: FuzzSweepOptions, into: FuzzReport, budget?: () => boolean): Promise<FuzzReport> {
  const more = o.more === undefined ? budget : budget === undefined ? o.more : () => o.more!() && budget();
  if ((o.mutate || o.mmuMutate) && o.jobs > 1) throw new RangeError('fuzz: test doubles (mutate) cannot cross to worker threads; use jobs 1');
  const init: FuzzInit = { kind, start, saveRoot: o.saveRoot, ...(o.gen ? { gen: o.gen } : {}), ...(o.shrinkBudget !== undefined ? { shrinkBudget: o.shrinkBudget } : {}) };
  const local: FuzzCtx = { init, opts: { mutate: o.mutate, mmuMutate: o.mmuMutate } };
  const items = await runPool<FuzzInit, FuzzCtx, FuzzItem>({ task: FUZZ_TASK, init, from, to, jobs: o.jobs, local, more, onDone: (d) => o.onDone?.(d, into) });
  for (const it of items) {
    applySaves(it.saves);
    addReport(into, it.rep);
  }
  return into;
}

/** Count mode: items from..to-1 of seeds start.., each a workload seed and an MMU seed. */
export function fuzzSeeds(start: number, from: number, to: number, o: FuzzSweepOptions): Promise<FuzzReport> {
  return sweep('seeds', start, from, to, o, emptyReport());
}

/** Time mode: about `seconds`, two thirds workload seeds, one third MMU seeds (at least one item of each). */
export async function fuzzForJobs(seconds: number, start: number, o: FuzzSweepOptions): Promise<FuzzReport> {
  const t0 = performance.now();
  const wlEnd = t0 + seconds * 1000 * (2 / 3);
  const end = t0 + seconds * 1000;
  const rep = emptyReport();
  let n = 0;
  await sweep('workload', start, 0, Infinity, o, rep, () => n++ === 0 || performance.now() < wlEnd);
  let m = 0;
  if (o.more?.() === false) return rep;
  await sweep('mmu-batch', start, 0, Infinity, o, rep, () => m++ === 0 || performance.now() < end);
  return rep;
}
