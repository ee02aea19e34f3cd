/**
 * The fault-injection sweep behind `pvmmu inject` (issue 6): a clean run
 * counts what the workload makes the guest do (allocations from the page
 * allocator and the slab; under Xen, mmu_update calls); then one run per
 * injection point k, failing the k-th: each run is classified (outcome.ts)
 * and, for allocation failures, torn down and compared with a clean boot
 * torn down the same way (accounts.ts).
 *
 * Allocation failures are injected after boot (failAt counts from there).
 * An injected mmu_update refusal kills the guest (Linux's Xen port BUGs on
 * a failed mmu_update), so those runs are not torn down: what is checked is
 * that the run stopped at the statement with the refusal named and that the
 * hypervisor's state is consistent (checkXenInvariants), i.e. the part of the
 * batch applied before the failure is a valid state, not a half-applied one.
 *
 * With checkpoints on (InjectOptions.checkpoints; on by default, see
 * DEFAULT_CHECKPOINTS), the machine boots once (issue 12): the clean
 * boot torn down and the clean run start from a snapshot of it, and each
 * injected run starts from the latest checkpoint (checkpoint.ts) before its
 * injection point, with the failure armed relative to it, instead of
 * booting and replaying.
 */
import type { Kernel } from '../../guest-kernel/kernel.js';
import { XEN_REASONS, checkXenInvariants } from '../../hypervisor/xen/index.js';
import type { Script } from '../workload/ast.js';
import type { RunConfig } from '../workload/config.js';
import { Interpreter, type RunOptions, type RunResult } from '../workload/interpreter.js';
import { accounts, allInvariants, isLeak, leakedOf, tearDown, vmallocAreas, type Accounts, type Leaked } from './accounts.js';
import { isKind } from '../../hypervisor/backend.js';
import { allocationOutcome, refusalOutcome } from './outcome.js';
import { recordCheckpoints, type Checkpoints } from './checkpoint.js';
import type { SweepTask, TaskRef } from '../sweep/pool.js';

export type InjectMode = 'allocation' | 'mmu_update';

export interface InjectOptions {
  seed?: number;
  /** The Xen machine layout (as --seed and --above-4g set it). */
  xenP2m?: 'identity' | 'shuffled';
  xenAbove4g?: boolean;
  /** At most this many injected runs (evenly spread over the injection points). */
  maxRuns?: number;
  /** What to fail: allocations (default) or mmu_update calls (Xen). */
  mode?: InjectMode;
  /** Only these injection points (1-based); default all. */
  only?: number[];
  /** Called before each run (progress). */
  onRun?: (i: number, n: number) => void;
  /** Applied to every booted kernel before it runs (test doubles: a kernel made to leak). Runs then boot afresh (no checkpoints). */
  patchKernel?: (kernel: Kernel) => void;
  /**
   * Start injected runs from checkpoints of the clean run (true, the
   * default) or boot and replay every run (false, the reference path the
   * tests compare with). The report is the same.
   */
  checkpoints?: boolean;
}

export interface InjectResult {
  failAt: number;
  /** Kernel function that met the failure (allocations) or "mmu_update (i of n applied)". */
  site: string;
  outcome: string;
  line: number | null;
  /** What leaked; null when the run was not torn down (a refusal stops the guest). */
  leaked: Leaked | null;
  /** What crashed, or null. */
  crash: string | null;
}

export interface InjectReport {
  workload: string;
  config: RunConfig;
  mode: InjectMode;
  /** The clean run: injection points found, whether it completed. */
  clean: {
    points: number;
    failure: string | null;
    leaked: Leaked;
    invariants: string[];
    /** A crash or broken invariant while tearing the clean run down (e.g. the seed's unbalanced release_pd, reported by the guest's own check under Xen PAE). */
    teardown: string | null;
  };
  runs: number;
  leaks: number;
  crashes: number;
  results: InjectResult[];
}

/** Injection points to try: all of 1..n, or `max` of them evenly spread (first and last included). */
export function pickPoints(n: number, max: number | undefined): number[] {
  if (max === undefined || n <= max) return Array.from({ length: n }, (_, i) => i + 1);
  if (max <= 0) return [];
  if (max === 1) return [1];
  const out = new Set<number>();
  for (let i = 0; i < max; i++) out.add(1 + Math.floor((i * (n - 1)) / (max - 1)));
  return [...out];
}

/**
 * How injected runs start by default: from checkpoints. With the Xen frame
 * table in typed arrays a restore (about 12 ms for default.pvw on Xen) is
 * cheaper than the boot it replaces (about 50 ms), on every backend measured
 * (docs/reliability.md). The choice does not depend on host time, so how a
 * run starts is the same on every machine.
 */
export const DEFAULT_CHECKPOINTS = true;

const RULE = XEN_REASONS.injectedMmuUpdate(0, 0).rule.replace(/ at request.*$/, '');

function newRun(script: Script, cfg: RunConfig, o: InjectOptions, ro: RunOptions = {}): Interpreter {
  const it = new Interpreter(script, cfg, { seed: o.seed ?? 1, ...(o.xenP2m ? { xenP2m: o.xenP2m } : {}), ...(o.xenAbove4g ? { xenAbove4g: true } : {}), ...ro });
  o.patchKernel?.(it.kernel);
  return it;
}

/** Tear down and count; a throw or a broken invariant during teardown is returned as a crash. */
function settle(it: Interpreter, bootAreas: ReadonlySet<number>): { acc: Accounts | null; crash: string | null } {
  try {
    it.kernel.failAt(null);
    tearDown(it.kernel, bootAreas);
  } catch (e) {
    return { acc: null, crash: `teardown: ${e instanceof Error ? e.message : String(e)}` };
  }
  const v = allInvariants(it.kernel, it.handle);
  if (v.length > 0) return { acc: accounts(it.kernel, it.handle), crash: `invariants broken after teardown: ${v.slice(0, 3).join('; ')}` };
  return { acc: accounts(it.kernel, it.handle), crash: null };
}

const ZERO: Leaked = { frames: 0, slabObjects: 0, pgdList: 0, pins: 0, typeRefs: 0 };

/**
 * Everything the injected runs of a sweep need, built deterministically from
 * the script, configuration and options (by the caller and again by every
 * worker of a --jobs sweep): the clean boot's accounts, the clean run, the
 * report without its results, the injection points to run (the items) and
 * how a run toward a point starts (from a checkpoint or a fresh boot).
 */
export interface InjectContext {
  mode: InjectMode;
  bootAreas: ReadonlySet<number>;
  baseAcc: Accounts;
  cleanResult: RunResult;
  /** The report with no injected run yet. */
  head: InjectReport;
  /** The injection points, in order: item i fails point ks[i]. */
  ks: number[];
  /** A machine about to run toward injection point k, and k counted from where it starts. */
  start: (k: number) => { it: Interpreter; rel: number };
  /** A machine `start` gave that is done with: the next restore fills its buffers. */
  drop: (it: Interpreter) => void;
}

/** Plan the sweep: the clean boot and clean run, the items and the checkpoints. A failure of the clean run leaves no items. */
export function prepareInject(script: Script, cfg: RunConfig, o: InjectOptions = {}): InjectContext {
  const mode = o.mode ?? 'allocation';
  if (mode === 'mmu_update' && cfg.backend !== 'xen') throw new RangeError('mmu_update injection needs the Xen backend');

  // One boot: a snapshot of it starts the clean boot torn down, the clean run and the checkpoints.
  const policy = o.patchKernel !== undefined ? false : (o.checkpoints ?? DEFAULT_CHECKPOINTS);
  const first = policy ? newRun(script, cfg, o) : null;
  const booted = first !== null ? first.snapshot() : null;
  const boot = (): Interpreter => (booted !== null ? booted.restore() : newRun(script, cfg, o));

  // A clean boot torn down: the accounts every run must come back to.
  const base = boot();
  const bootAreas = vmallocAreas(base.kernel);
  const baseSettled = settle(base, bootAreas);
  if (baseSettled.acc === null || baseSettled.crash !== null) throw new Error(`a clean boot does not tear down cleanly: ${baseSettled.crash}`);
  const baseAcc = baseSettled.acc;

  // The clean run: count the injection points.
  const clean = boot();
  const allocs0 = clean.kernel.allocations;
  const mmu0 = clean.ops.stats.hypercalls['mmu_update'] ?? 0;
  const pointsDone = (it: Interpreter): number =>
    mode === 'allocation' ? it.kernel.allocations - allocs0 : (it.ops.stats.hypercalls['mmu_update'] ?? 0) - mmu0;
  // Injection points made by the end of each statement (statement 0: boot), for placing checkpoints.
  const doneAfter: number[] = [0];
  if (booted !== null) while (clean.advance()) doneAfter.push(pointsDone(clean));
  const cleanResult = clean.run();
  const points = pointsDone(clean);
  const head: InjectReport = {
    workload: script.file,
    config: cfg,
    mode,
    clean: { points, failure: cleanResult.failure?.message ?? null, leaked: ZERO, invariants: cleanResult.invariants, teardown: null },
    runs: 0,
    leaks: 0,
    crashes: 0,
    results: [],
  };
  if (cleanResult.failure === null) {
    const s = settle(clean, bootAreas);
    if (s.acc !== null) head.clean.leaked = leakedOf(s.acc, baseAcc);
    head.clean.teardown = s.crash;
  }

  // A workload that fails on its own (e.g. the pre-patch kernel on Xen) has nothing to sweep.
  const ks = cleanResult.failure !== null ? [] : (o.only ?? pickPoints(points, o.maxRuns)).filter((k) => k >= 1 && k <= points);
  const cps: Checkpoints | null = booted !== null && ks.length > 0 ? recordCheckpoints(booted, doneAfter, ks) : null;
  /** A machine about to run toward injection point k: from the latest checkpoint before it, or a fresh boot; `rel` is k counted from there. */
  // The machine of the last injected run, once done with (its buffers serve the next restore).
  let dropped: Interpreter | undefined;
  const start = (k: number): { it: Interpreter; rel: number } => {
    const cp = cps?.startFor(k);
    if (cp === undefined) return { it: newRun(script, cfg, o), rel: k };
    const reuse = dropped;
    dropped = undefined;
    return { it: cp.snapshot.restore(reuse), rel: k - cp.done };
  };
  const drop = (it: Interpreter): void => {
    dropped = it;
  };
  return { mode, bootAreas, baseAcc, cleanResult, head, ks, start, drop };
}

/** Run item i of the sweep: the injected run failing point ks[i]. Its result holds nothing of its machine (plain data), which is dropped after. */
export function runInjectItem(ctx: InjectContext, i: number): InjectResult {
  const k = ctx.ks[i]!;
  const s = ctx.start(k);
  const r = ctx.mode === 'allocation' ? allocationRun(s, k, ctx.cleanResult, ctx.bootAreas, ctx.baseAcc) : refusalRun(s, k);
  ctx.drop(s.it);
  return r;
}

/** The report of a sweep (or of a shard of it): the head with these results, in item order, counted. */
export function assembleInject(head: InjectReport, results: readonly InjectResult[]): InjectReport {
  const report: InjectReport = { ...head, clean: { ...head.clean }, runs: 0, leaks: 0, crashes: 0, results: [] };
  for (const r of results) {
    report.results.push(r);
    report.runs++;
    if (r.crash !== null) report.crashes++;
    if (r.leaked !== null && isLeak(r.leaked)) report.leaks++;
  }
  return report;
}

/** Run the sweep in this thread. A failure of the clean run is reported in `clean.failure`, with no injected runs. */
export function injectSweep(script: Script, cfg: RunConfig, o: InjectOptions = {}): InjectReport {
  const ctx = prepareInject(script, cfg, o);
  const results = ctx.ks.map((_, i) => {
    o.onRun?.(i, ctx.ks.length);
    return runInjectItem(ctx, i);
  });
  return assembleInject(ctx.head, results);
}

/** What a worker of a --jobs sweep is given (plain data: no callbacks, no test doubles). */
export interface InjectInit {
  script: Script;
  cfg: RunConfig;
  o: Omit<InjectOptions, 'onRun' | 'patchKernel'>;
}

/** The sweep as a pool task (tools/sweep/pool.ts): each worker plans the sweep again and runs the items it is given. */
export const injectTask: SweepTask<InjectInit, InjectContext, InjectResult> = {
  setup: (init) => prepareInject(init.script, init.cfg, init.o),
  run: runInjectItem,
};

export const INJECT_TASK: TaskRef = { module: import.meta.url, name: 'injectTask' };

function runGuarded(it: Interpreter): { r: RunResult | null; crash: string | null } {
  try {
    return { r: it.run(), crash: null };
  } catch (e) {
    return { r: null, crash: `internal error: ${e instanceof Error ? e.message : String(e)}` };
  }
}

function allocationRun(
  { it, rel }: { it: Interpreter; rel: number },
  k: number,
  clean: RunResult,
  bootAreas: ReadonlySet<number>,
  baseAcc: Accounts,
): InjectResult {
  it.kernel.failAt(rel);
  const { r, crash } = runGuarded(it);
  const inj = it.kernel.injected;
  const site = inj?.site ?? '(not reached)';
  if (r === null) return { failAt: k, site, outcome: 'crashed', line: null, leaked: null, crash };
  const out = allocationOutcome(r, clean.observations);
  if (inj === null) {
    return { failAt: k, site, outcome: out.text, line: out.line, leaked: null, crash: `allocation ${k} was not reached (the clean run made it)` };
  }
  // A run stopped by a BUG or a refusal cannot be torn down meaningfully.
  if (r.failure?.kind === 'bug' || r.failure?.kind === 'refusal') {
    return { failAt: k, site, outcome: out.text, line: out.line, leaked: null, crash: out.crash };
  }
  const s = settle(it, bootAreas);
  return {
    failAt: k,
    site,
    outcome: out.text,
    line: out.line,
    leaked: s.acc === null ? null : leakedOf(s.acc, baseAcc),
    crash: out.crash ?? s.crash,
  };
}

function refusalRun({ it, rel }: { it: Interpreter; rel: number }, k: number): InjectResult {
  const h = it.handle;
  if (!isKind(h, 'xen')) throw new RangeError('mmu_update injection needs the Xen backend');
  const xen = h.ext.backend;
  xen.hv.failMmuUpdateAt(rel);
  const { r, crash } = runGuarded(it);
  const inj = xen.hv.injectedMmuUpdate;
  const site = inj === null ? '(not reached)' : `mmu_update${inj.inMulticall ? ' in a multicall' : ''} (${inj.done} of ${inj.of} applied)`;
  if (r === null) return { failAt: k, site, outcome: 'crashed', line: null, leaked: null, crash };
  if (inj === null) return { failAt: k, site, outcome: 'not reached', line: null, leaked: null, crash: `mmu_update ${k} was not reached` };
  const out = refusalOutcome(r, RULE);
  const v = h.checkInvariants();
  const broken = v.length > 0 ? `hypervisor state corrupted: ${v.slice(0, 3).join('; ')}` : null;
  return { failAt: k, site, outcome: out.text, line: out.line, leaked: null, crash: out.crash ?? broken };
}
