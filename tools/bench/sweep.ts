/**
 * `npm run bench`, sweep part (issue 12): how fast fault-injection sweeps and
 * the differential fuzzer go, and how they scale with workers and with the
 * workload's length. Called by run.ts; its figures go under `sweep` in
 * `--json`. Timings are wall time (performance.now) in this process unless
 * said otherwise; targets are reported (`met`), never enforced.
 *
 *  - injectRate: injected runs per second of `pvmmu inject
 *    tools/workloads/default.pvw --backend xen`, over a --max-runs subset of
 *    the injection points (evenly spread, as --max-runs picks them), in this
 *    thread; the clean runs before the sweep (prepareInject) are timed
 *    apart. `projectedFullSweepS` = the clean runs + every point at that rate.
 *  - injectVsBoot: the mean time of one injected run over that subset
 *    divided by the median time of one full boot+run of the same workload
 *    (the boot, the run and its end-of-run checks; median of five), both
 *    warm: one untimed boot+run before the timed ones, and the subset run
 *    twice, the second pass timed (it must give the same results; the
 *    first also pays for the garbage the boots left). The rate above is of
 *    the second pass. Target: at
 *    most 1/10.
 *  - jobs: the whole sweep of default.pvw on Xen (every injection point;
 *    --max-runs 300 with --sweep-quick) through the sweep pool with --jobs 1
 *    and with --jobs 2 (the main thread's clean runs, worker start-up and the
 *    worker's own clean runs included: what a user of `pvmmu inject` waits
 *    for); speedup = t(jobs 1) / t(jobs 2). Target: at
 *    least 1.7 (needs two idle cores; `cores` says how many the process may
 *    use). The CPU time of both (process.cpuUsage: all threads) shows the
 *    pool's overhead (worker start-up, cold JIT, the repeated clean runs)
 *    apart from the machine's load.
 *  - fuzz: differential fuzzing seeds per second per core, in steady state
 *    (a campaign runs thousands of seeds): `npm run fuzz -- --seeds N --jobs
 *    1` in this thread (each item a workload seed and an MMU seed). First
 *    seeds 1..16 (1..8 with --sweep-quick) are run untimed (JIT warm-up: the
 *    first seeds of a process run cold, each on another machine
 *    configuration); then seeds 17..64 (9..24) are timed: seeds per CPU
 *    second of this whole process (process.cpuUsage: user + system time of
 *    all its threads, garbage collection and background JIT compilation
 *    included) over that timed run only. Wall time is shown beside it. The
 *    process is not fully warm after 16 seeds (the same seeds run again
 *    after 300 take about half the CPU time), so the figure is on the low
 *    side of a long campaign's.
 *    Target: at least 10.
 *  - curve: sweep time against workload length: a fork-exit-like workload
 *    (tools/workloads/fork-exit.pvw's loop) repeated 1x, 10x and 100x, Xen.
 *    The sweep of each is estimated from a sample of its injection points
 *    (the clean runs timed, plus points x the mean time of the sampled
 *    runs), and printed as a chart with the time per repetition; the growth
 *    exponent k is the least-squares slope of log(time) against
 *    log(repetitions) between 10x and 100x (1 = linear, 2 = quadratic).
 *    Target: k at most 1.2 (linear).
 *
 * `--sweep-quick` halves the samples. The section is selected by `--only
 * sweep` (or any --only list naming it) and skipped by `--only` lists that
 * do not name it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { INJECT_TASK, pickPoints, prepareInject, runInjectItem, type InjectContext, type InjectResult } from '../inject/sweep.js';
import { fuzzSeeds } from '../fuzz/sweep.js';
import { startPool } from '../sweep/pool.js';
import { parseScript } from '../workload/parser.js';
import { checkScript } from '../workload/check.js';
import { resolveConfig } from '../workload/config.js';
import { Interpreter } from '../workload/interpreter.js';
import type { Script } from '../workload/ast.js';
import type { RunConfig } from '../workload/config.js';
import { num, table } from '../table.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DEFAULT_WORKLOAD = join(ROOT, 'tools', 'workloads', 'default.pvw');

export const SWEEP_TARGETS = {
  injectVsBoot: 1 / 10,
  jobsSpeedup: 1.7,
  fuzzSeedsPerCoreSec: 10,
  growthExponent: 1.2,
} as const;

/** Timed boot+runs of default.pvw (the median is taken). */
const BOOT_RUNS = 5;

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function load(file: string, text: string, backend: 'xen'): { script: Script; cfg: RunConfig } {
  const script = parseScript(file, text);
  const cfg = resolveConfig(file, script.machine, { backend });
  checkScript(script, cfg);
  return { script, cfg };
}

/** A fork-exit-like workload: fork-exit.pvw's loop body, `reps` times. */
export function forkExitLike(reps: number): string {
  return [
    `# fork-exit.pvw's loop, ${reps} times (bench: sweep time against workload length)`,
    'machine mem=64M',
    'process init',
    'mmap init 0x08048000 256K rw',
    'touch init 0x08048000 256K write',
    `repeat ${reps} {`,
    '  fork init child',
    '  touch child 0x08048000 16K write',
    '  exit child',
    '}',
    'read init 0x08048000 expect 0',
    '',
  ].join('\n');
}

interface Sampled {
  points: number;
  sampled: number;
  prepareMs: number;
  meanRunMs: number;
  results: InjectResult[];
}

/** The clean runs, then `max` injected runs spread over the points, timed in this thread. */
function sample(script: Script, cfg: RunConfig, max: number): { ctx: InjectContext; s: Sampled } {
  const t0 = performance.now();
  const ctx = prepareInject(script, cfg, { maxRuns: max });
  const prepareMs = performance.now() - t0;
  const t1 = performance.now();
  const results = ctx.ks.map((_, i) => runInjectItem(ctx, i));
  const runMs = performance.now() - t1;
  return { ctx, s: { points: ctx.head.clean.points, sampled: ctx.ks.length, prepareMs, meanRunMs: runMs / Math.max(1, ctx.ks.length), results } };
}

export interface SweepBench {
  json: Record<string, unknown>;
  text: string;
  ok: boolean;
}

export function sweepSelected(argv: string[]): boolean {
  const oi = argv.indexOf('--only');
  return oi < 0 || (argv[oi + 1] ?? '').split(',').includes('sweep');
}

export async function runSweepBenchmarks(argv: string[]): Promise<SweepBench | undefined> {
  if (!sweepSelected(argv)) return undefined;
  const quick = argv.includes('--sweep-quick');
  const log = (s: string): void => {
    process.stderr.write(`sweep: ${s}\n`);
  };
  const json: Record<string, unknown> = { targets: SWEEP_TARGETS, cores: availableParallelism() };
  const text: string[] = [];
  let ok = true;
  const yes = (b: boolean): string => (b ? 'yes' : 'no');

  // ---- injected runs/s and one injected run against one boot+run (default.pvw, Xen) ----
  if (!existsSync(DEFAULT_WORKLOAD)) throw new Error(`bench sweep: ${DEFAULT_WORKLOAD} is missing`);
  const { script, cfg } = load('tools/workloads/default.pvw', readFileSync(DEFAULT_WORKLOAD, 'utf8'), 'xen');
  const maxRuns = quick ? 20 : 40;
  log(`inject default.pvw --backend xen --max-runs ${maxRuns}, in this thread: ${BOOT_RUNS} boot+runs, then the injected runs twice (the first pass a warm-up)...`);
  const bootRun = (): number => {
    const t = performance.now();
    const r = new Interpreter(script, cfg, { seed: 1 }).run();
    if (r.failure !== null) {
      ok = false;
      process.stderr.write(`bench: sweep: default.pvw fails on Xen: ${r.failure.message}\n`);
    }
    return performance.now() - t;
  };
  // Both sides warm: one untimed boot+run before the timed ones; the
  // injected runs' first pass (which also pays for the garbage the boots
  // left) before the timed one.
  bootRun();
  const boots: number[] = [];
  for (let r = 0; r < BOOT_RUNS; r++) boots.push(bootRun());
  const { ctx: injCtx, s: inj } = sample(script, cfg, maxRuns);
  const n = injCtx.ks.length;
  const t2 = performance.now();
  const again = injCtx.ks.map((_, i) => runInjectItem(injCtx, i));
  const injectedMs = performance.now() - t2;
  if (JSON.stringify(again) !== JSON.stringify(inj.results)) {
    ok = false;
    process.stderr.write('bench: sweep: an injected run gave another result the second time\n');
  }
  inj.meanRunMs = injectedMs / Math.max(1, n);
  const bootRunMs = median(boots);
  const ratio = inj.meanRunMs / bootRunMs;
  const rate = 1000 / inj.meanRunMs;
  json['injectRate'] = {
    workload: 'tools/workloads/default.pvw',
    backend: 'xen',
    points: inj.points,
    sampledRuns: inj.sampled,
    runsPerSec: round(rate, 1),
    meanRunMs: round(inj.meanRunMs),
    cleanRunsMs: round(inj.prepareMs),
    projectedFullSweepS: round((inj.prepareMs + inj.points * inj.meanRunMs) / 1000, 1),
  };
  json['injectVsBoot'] = { injectedRunMs: round(inj.meanRunMs), bootRunMs: round(bootRunMs), ratio: round(ratio, 3), target: SWEEP_TARGETS.injectVsBoot, met: ratio <= SWEEP_TARGETS.injectVsBoot };

  // ---- --jobs 2 against --jobs 1: the whole sweep, through the pool ----
  // The sweep a user runs (every point), so the fixed cost of a worker
  // (start-up, cold JIT, its own clean runs and checkpoints) is the part of
  // it that it is in practice.
  const jobsRuns = quick ? 300 : undefined;
  log(`${jobsRuns === undefined ? 'the whole sweep' : `--max-runs ${jobsRuns}`} with --jobs 1 and --jobs 2 (pool, workers' own clean runs included)...`);
  const timePool = async (jobs: number): Promise<{ ms: number; cpuS: number; out: string; runs: number }> => {
    const t = performance.now();
    const c = process.cpuUsage();
    // As `pvmmu inject --jobs N` does it: the workers plan the sweep while this thread does.
    const pool = startPool<unknown, InjectContext, InjectResult>(INJECT_TASK, { script, cfg, o: { maxRuns: jobsRuns } }, jobs);
    const ctx = prepareInject(script, cfg, { maxRuns: jobsRuns });
    const res = await pool.run({ from: 0, to: ctx.ks.length, local: ctx });
    const u = process.cpuUsage(c);
    return { ms: performance.now() - t, cpuS: (u.user + u.system) / 1e6, out: JSON.stringify(res), runs: res.length };
  };
  const j1 = await timePool(1);
  const j2 = await timePool(2);
  if (j1.out !== j2.out) {
    ok = false;
    process.stderr.write('bench: sweep: --jobs 2 gave other results than --jobs 1\n');
  }
  const speedup = j1.ms / j2.ms;
  json['jobs'] = { runs: j1.runs, jobs1Ms: round(j1.ms), jobs2Ms: round(j2.ms), jobs1CpuS: round(j1.cpuS), jobs2CpuS: round(j2.cpuS), speedup: round(speedup), identical: j1.out === j2.out, target: SWEEP_TARGETS.jobsSpeedup, met: speedup >= SWEEP_TARGETS.jobsSpeedup };

  // ---- differential fuzzing seeds/s/core, steady state ----
  // A campaign runs thousands of seeds in one warm process: the first seeds
  // (cold JIT) are run untimed, then the next ones are timed.
  const warmSeeds = quick ? 8 : 16;
  const seeds = quick ? 16 : 48;
  log(`fuzz --seeds ${warmSeeds} --jobs 1 (warm-up, untimed), then --start ${1 + warmSeeds} --seeds ${seeds} --jobs 1...`);
  await fuzzSeeds(1, 0, warmSeeds, { jobs: 1, saveRoot: null });
  const c0 = process.cpuUsage();
  const f0 = performance.now();
  const rep = await fuzzSeeds(1 + warmSeeds, 0, seeds, { jobs: 1, saveRoot: null });
  const fuzzMs = performance.now() - f0;
  const cpu = process.cpuUsage(c0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const perCore = rep.workload.seeds / cpuS;
  json['fuzz'] = {
    warmUpSeeds: `1..${warmSeeds}`,
    timedSeeds: `${1 + warmSeeds}..${warmSeeds + seeds}`,
    seeds: rep.workload.seeds,
    statements: rep.workload.statements,
    wallS: round(fuzzMs / 1000),
    cpuS: round(cpuS),
    seedsPerSec: round(rep.workload.seeds / (fuzzMs / 1000)),
    seedsPerCoreSec: round(perCore),
    target: SWEEP_TARGETS.fuzzSeedsPerCoreSec,
    met: perCore >= SWEEP_TARGETS.fuzzSeedsPerCoreSec,
  };

  // ---- sweep time against workload length ----
  const reps = [1, 10, 100];
  const per = quick ? 6 : 12;
  const curve: { reps: number; points: number; sampled: number; cleanRunsMs: number; meanRunMs: number; sweepS: number; msPerRep: number }[] = [];
  for (const r of reps) {
    log(`sweep of fork-exit x${r} (Xen), ${per} sampled injected runs...`);
    const w = load(`fork-exit-x${r}.pvw`, forkExitLike(r), 'xen');
    const { s } = sample(w.script, w.cfg, per);
    const sweepMs = s.prepareMs + s.points * s.meanRunMs;
    curve.push({ reps: r, points: s.points, sampled: s.sampled, cleanRunsMs: round(s.prepareMs), meanRunMs: round(s.meanRunMs), sweepS: round(sweepMs / 1000, 3), msPerRep: round(sweepMs / r) });
  }
  const a = curve[1]!;
  const b = curve[2]!;
  const k = Math.log(b.sweepS / a.sweepS) / Math.log(b.reps / a.reps);
  json['curve'] = { workload: "fork-exit.pvw's loop", backend: 'xen', sampledRunsPerLength: per, points: curve, growthExponent: round(k), target: SWEEP_TARGETS.growthExponent, linear: k <= SWEEP_TARGETS.growthExponent, met: k <= SWEEP_TARGETS.growthExponent };

  // ---- text ----
  text.push(
    '',
    `sweeps (issue 12; ${availableParallelism()} core(s) available; timings are wall time in one process unless said)`,
    table(
      ['figure', 'value', 'target', 'met'],
      [
        ['injected runs/s, default.pvw, Xen', `${num(rate, 1)} (${inj.sampled} of ${num(inj.points)} points sampled; full sweep ≈ ${num((inj.prepareMs + inj.points * inj.meanRunMs) / 1000, 1)} s)`, '-', '-'],
        ['one injected run / one boot+run', `${round(ratio, 3)} (${num(inj.meanRunMs, 1)} ms / ${num(bootRunMs, 1)} ms)`, '<= 0.1', yes(ratio <= SWEEP_TARGETS.injectVsBoot)],
        ['--jobs 2 vs --jobs 1', `${round(speedup)}x (${num(j1.ms / 1000, 2)} s / ${num(j2.ms / 1000, 2)} s wall, ${num(j1.cpuS, 1)} / ${num(j2.cpuS, 1)} CPU s, ${num(j1.runs)} runs, output identical: ${yes(j1.out === j2.out)})`, '>= 1.7x', yes(speedup >= SWEEP_TARGETS.jobsSpeedup)],
        ['fuzz seeds/s/core (warm)', `${round(perCore)} (seeds ${1 + warmSeeds}..${warmSeeds + seeds} after ${warmSeeds} untimed: ${rep.workload.seeds} seeds in ${num(cpuS, 1)} CPU s, ${num(fuzzMs / 1000, 1)} s wall)`, '>= 10', yes(perCore >= SWEEP_TARGETS.fuzzSeedsPerCoreSec)],
        ['sweep growth exponent (10x..100x)', `${round(k)}`, '<= 1.2 (linear)', yes(k <= SWEEP_TARGETS.growthExponent)],
      ],
    ),
    '',
    `sweep time against workload length (fork-exit loop, Xen; estimated from ${per} sampled runs per length):`,
    chart(curve),
  );
  return { json, text: text.join('\n'), ok };
}

/** A bar per length, on a log scale (each bar: log10 of the sweep time), with the figures. */
export function chart(curve: { reps: number; points: number; sweepS: number; msPerRep: number }[]): string {
  const min = Math.min(...curve.map((c) => c.sweepS));
  const max = Math.max(...curve.map((c) => c.sweepS));
  const width = 40;
  const span = Math.log10(max / min) || 1;
  const rows = curve.map((c) => {
    const n = 1 + Math.round(((width - 1) * Math.log10(c.sweepS / min)) / span);
    return `  ${`${c.reps}x`.padStart(5)}  ${'#'.repeat(n).padEnd(width)}  ${num(c.sweepS, 2).padStart(9)} s  ${num(c.points).padStart(6)} points  ${num(c.msPerRep, 1).padStart(8)} ms per repetition`;
  });
  return [...rows, `  (log scale: ${width} columns = a factor ${num(max / min, 1)}; linear growth keeps "ms per repetition" flat, quadratic grows it with the length)`].join('\n');
}
