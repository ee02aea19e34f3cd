/**
 * `npm run bench`, workload part: how fast the guest kernel and the backends
 * run whole operations, and how far they scale (issue 5, "Speed"). Called by
 * run.ts; its figures go under `workloads` in `--json`.
 *
 *  - forkExit: fork+exit/s of a process with 1 MiB mapped and touched
 *    (written, so 256 private pages, each pte write-protected by the fork),
 *    PAE, 3G split, 256 MiB guest, native and Xen. The child touches nothing
 *    and exits at once: the figure is the cost of copying and tearing down
 *    the page tables (and, under Xen, pinning/unpinning and validating
 *    them). Median of 7 timed batches of 0.25 s each (process.hrtime.bigint;
 *    also per CPU second, process.cpuUsage) after a warm-up. Target:
 *    20,000/s each.
 *  - compare: wall time of `compare` of tools/workloads/default.pvw in this
 *    process (read, parse, check, run on both backends, compare; node
 *    startup excluded), median of 5 after one cold run; and, for reference,
 *    the whole `node dist/tools/cli.js compare tools/workloads/default.pvw`
 *    process (median of 3). Target: under one second.
 *  - trace: the same compare with `--trace` (both backends' Chrome traces
 *    streamed to temporary files) against without: ratio of medians.
 *    Target: at most 3x.
 *  - scale: in a child node process (`--expose-gc`, so memory is measured
 *    in a fresh heap after a forced GC): Xen, PAE, 3G split, 1 GiB guest;
 *    init maps and writes one page, then 10,000 processes are forked from
 *    it and stay alive. At 1k, 2k, 4k, 6k, 8k and 10k processes a new vmalloc
 *    area filling one 2 MiB pmd range is made (its kernel pmd entry exists
 *    in swapper_pg_dir only) and vmalloc_sync_all() is timed: modelled cycles and host time,
 *    and the mmu_update hypercalls it issued (one per pgd). A least-squares
 *    line through (pgds, cycles) gives cycles per pgd and R². Memory: rss
 *    and heapUsed after gc() with all 10,000 processes alive, and the peak
 *    rss (getrusage maxrss). Target: rss at most 2 GiB, the curve linear.
 *
 * Speed targets are reported (the `met` fields, the table's last column),
 * never enforced: timings depend on the machine and its load. A check that
 * a benchmark did what it says (the processes exist, compare found both
 * backends equivalent, no frames leaked) failing makes the run exit 1.
 *
 * Flags (shared with run.ts): `--only NAME,...` also selects among
 * forkExit, compare, trace, scale (when --only names none of them, the
 * workload benchmarks are skipped); `--workloads-quick` uses fewer batches
 * and repetitions and a 2,000-process scale run (for a quick look).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootKernel, type Kernel } from '../../guest-kernel/kernel.js';
import { createNativeBackend } from '../../hypervisor/native.js';
import type { MachineConfig, ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { createXenBackend } from '../../hypervisor/xen/index.js';
import { loadWorkload } from '../workload/load.js';
import { compareRuns } from '../workload/compare.js';
import { num, table } from '../table.js';
import { TraceWriter } from '../trace/writer.js';
import { runWorkload } from '../workload/interpreter.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The repository root (this file runs from dist/tools/bench/). */
const ROOT = resolve(HERE, '..', '..', '..');
const CLI = join(ROOT, 'dist', 'tools', 'cli.js');
const DEFAULT_WORKLOAD = join(ROOT, 'tools', 'workloads', 'default.pvw');

export const TARGETS = {
  forkExitPerSec: 20_000,
  compareMs: 1000,
  traceRatio: 3,
  scaleProcesses: 10_000,
  scaleHostBytes: 2 * 1024 ** 3,
  /** R² of the vmalloc_sync_all cycles-vs-pgds line that counts as linear. */
  linearR2: 0.99,
} as const;

export const WORKLOAD_BENCHMARKS = ['forkExit', 'compare', 'trace', 'scale'] as const;
type Name = (typeof WORKLOAD_BENCHMARKS)[number];

const MIB = 1 << 20;
/** PMD_SIZE under PAE. */
const PMD = 2 * MIB;
const HEAP = 0x08048000;

// ---- small helpers ----

function nowNs(): bigint {
  return process.hrtime.bigint();
}

function msSince(t0: bigint): number {
  return Number(nowNs() - t0) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const round = (x: number, digits = 0): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Bytes as MiB (or KiB below 1 MiB), one decimal. */
function mib(bytes: number): string {
  return bytes < MIB ? `${num(bytes / 1024, 1)} KiB` : `${num(bytes / MIB, 1)} MiB`;
}

/** CPU time (user + system, all threads of this process) since `c0`, in ms. */
function cpuMsSince(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

/** Least squares y = a + b x, with R². */
export function linearFit(xs: number[], ys: number[]): { slope: number; intercept: number; r2: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  const intercept = my - slope * mx;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { slope, intercept, r2 };
}

function machine(backend: 'native' | 'xen', memBytes: number): ParavirtOps {
  const mc: MachineConfig = { pae: true, memBytes, cpu: 'core2', pageOffset: 0xc0000000, seed: 1 };
  return backend === 'xen' ? createXenBackend(mc) : createNativeBackend(mc);
}

/** A check failed: the benchmark did not do what it claims. */
class BenchCheck extends Error {}

function check(cond: boolean, what: string): void {
  if (!cond) throw new BenchCheck(what);
}

// ---- (a) fork+exit ----

export interface ForkExitResult {
  /** Median over the batches of ops per wall-clock second. */
  opsPerSec: number;
  /** Median over the batches of ops per CPU second of this process (less sensitive to other load on the machine). */
  opsPerCpuSec: number;
  /** ops/s (wall) of each timed batch. */
  batches: number[];
  /** The most iterations a batch ran (batches are 0.25 s each). */
  iterationsPerBatch: number;
  /** Modelled cycles per fork+exit (deterministic). */
  cyclesPerOp: number;
  met: boolean;
}

function forkExitOnce(k: Kernel): void {
  k.fork('init', 'child');
  k.exit('child');
}

export function benchForkExit(backend: 'native' | 'xen', batches: number): ForkExitResult {
  const ops = machine(backend, 256 * MIB);
  const k = bootKernel({ ops });
  check(k.createProcess('init') === 0, 'fork+exit: create init');
  check(k.mmap('init', HEAP, MIB, 'rw') === 0, 'fork+exit: mmap 1 MiB');
  check(k.touch('init', HEAP, MIB, 'write') === 'ok', 'fork+exit: touch 1 MiB');
  // Warm-up (JIT): at least 1,000 iterations and 0.6 s. Then time-boxed
  // batches: iterations in chunks of 25 until 0.25 s have passed.
  let t0 = nowNs();
  for (let i = 0; i < 1000 || msSince(t0) < 600; i++) forkExitOnce(k);
  const used = k.framesUsed;
  const rates: number[] = [];
  const cpuRates: number[] = [];
  const c0 = ops.stats.cycles;
  let total = 0;
  let n = 0;
  for (let b = 0; b < batches; b++) {
    t0 = nowNs();
    const u0 = process.cpuUsage();
    let count = 0;
    let ms = 0;
    do {
      for (let i = 0; i < 25; i++) forkExitOnce(k);
      count += 25;
      ms = msSince(t0);
    } while (ms < 250);
    const cpuMs = cpuMsSince(u0);
    rates.push(count / (ms / 1000));
    cpuRates.push(count / (Math.max(cpuMs, 1e-3) / 1000));
    total += count;
    n = Math.max(n, count);
  }
  const cyclesPerOp = (ops.stats.cycles - c0) / total;
  check(k.framesUsed === used, `fork+exit (${backend}): ${k.framesUsed - used} frames leaked`);
  check(k.processes.length === 1, `fork+exit (${backend}): processes left behind`);
  check(k.checkInvariants().length === 0, `fork+exit (${backend}): guest invariants broken`);
  const opsPerSec = Math.round(median(rates));
  return {
    opsPerSec,
    opsPerCpuSec: Math.round(median(cpuRates)),
    batches: rates.map((r) => Math.round(r)),
    iterationsPerBatch: n,
    cyclesPerOp: round(cyclesPerOp, 1),
    met: opsPerSec >= TARGETS.forkExitPerSec,
  };
}

// ---- (b) compare, (c) tracing ----

/** Used while tools/workloads/default.pvw does not exist. */
const FALLBACK_WORKLOAD = `# bench fallback: fork+exit, COW, switches, vmalloc faults
process init
mmap init 0x08048000 128K rw
touch init 0x08048000 128K write
repeat 8 {
  measure fork+exit {
    fork init child
    touch child 0x08048000 16K write
    exit child
  }
}
repeat 6 {
  fork init p#
}
repeat 6 {
  measure cow {
    write p# 0x08048000 0xbbbb
  }
}
vmalloc cur 16K
kwrite cur 0 0xfeed
repeat 6 {
  measure kread {
    switch p#
    kread cur 0 expect 0xfeed
  }
}
repeat 6 {
  exit p#
}
`;

export interface CompareResult {
  workload: string;
  /** Median wall time of an in-process compare (ms). */
  inProcessMs: number;
  /** Median CPU time of an in-process compare (ms). */
  inProcessCpuMs: number;
  /** The first (cold: JIT not warm) in-process compare (ms). */
  coldMs: number;
  /** Median wall time of the whole `node dist/tools/cli.js compare FILE` process (ms), when dist/tools/cli.js exists. */
  wholeProcessMs: number | null;
  equivalent: boolean;
  met: boolean;
}

export interface TraceResult {
  offMs: number;
  onMs: number;
  /** onMs / offMs (wall-clock medians). */
  ratio: number;
  /** The same ratio on CPU time. */
  cpuRatio: number;
  /** Trace events and bytes written per compare (both backends). */
  events: number;
  traceBytes: number;
  met: boolean;
}

/** One compare of the workload in this process; with `traceDir`, both backends traced. Returns ms and the outcome. */
function compareOnce(file: string, traceDir?: string): { ms: number; cpuMs: number; equivalent: boolean; events: number; bytes: number } {
  const t0 = nowNs();
  const u0 = process.cpuUsage();
  const { script, cfg } = loadWorkload(file, {});
  const tw = (b: string): TraceWriter | undefined => (traceDir === undefined ? undefined : new TraceWriter(join(traceDir, `${b}.json`)));
  const nt = tw('native');
  const xt = tw('xen');
  const native = runWorkload(script, { ...cfg, backend: 'native' }, { seed: 1, trace: nt });
  const xen = runWorkload(script, { ...cfg, backend: 'xen' }, { seed: 1, trace: xt });
  const equivalent = compareRuns(native, xen).length === 0;
  const ms = msSince(t0);
  const cpuMs = cpuMsSince(u0);
  let bytes = 0;
  if (traceDir !== undefined) for (const b of ['native', 'xen']) bytes += statSync(join(traceDir, `${b}.json`)).size;
  return { ms, cpuMs, equivalent, events: (nt?.events ?? 0) + (xt?.events ?? 0), bytes };
}

export function benchCompare(file: string, reps: number): CompareResult {
  const cold = compareOnce(file);
  const times: number[] = [];
  const cpu: number[] = [];
  let equivalent = cold.equivalent;
  for (let i = 0; i < reps; i++) {
    const r = compareOnce(file);
    times.push(r.ms);
    cpu.push(r.cpuMs);
    equivalent &&= r.equivalent;
  }
  check(equivalent, `compare ${file}: the backends diverged`);
  let wholeProcessMs: number | null = null;
  if (existsSync(CLI)) {
    const w: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = nowNs();
      const r = spawnSync(process.execPath, [CLI, 'compare', file], { stdio: 'ignore' });
      w.push(msSince(t0));
      check(r.status === 0, `node dist/tools/cli.js compare ${file}: exit ${r.status}`);
    }
    wholeProcessMs = round(median(w), 1);
  }
  const inProcessMs = round(median(times), 1);
  return { workload: file, inProcessMs, inProcessCpuMs: round(median(cpu), 1), coldMs: round(cold.ms, 1), wholeProcessMs, equivalent, met: inProcessMs < TARGETS.compareMs };
}

export function benchTrace(file: string, reps: number): TraceResult {
  const dir = mkdtempSync(join(tmpdir(), 'pvmmu-bench-trace-'));
  try {
    compareOnce(file, dir); // warm-up of the traced path
    const off: number[] = [];
    const on: number[] = [];
    const offCpu: number[] = [];
    const onCpu: number[] = [];
    let events = 0;
    let bytes = 0;
    // Interleaved, so a change in machine load affects both alike.
    for (let i = 0; i < reps; i++) {
      const o = compareOnce(file);
      off.push(o.ms);
      offCpu.push(o.cpuMs);
      const r = compareOnce(file, dir);
      on.push(r.ms);
      onCpu.push(r.cpuMs);
      events = r.events;
      bytes = r.bytes;
    }
    check(events > 0, 'trace: no events written');
    const offMs = median(off);
    const onMs = median(on);
    const ratio = round(onMs / offMs, 2);
    const cpuRatio = round(median(onCpu) / median(offCpu), 2);
    return { offMs: round(offMs, 1), onMs: round(onMs, 1), ratio, cpuRatio, events, traceBytes: bytes, met: ratio <= TARGETS.traceRatio };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- (d) scale ----

export interface ScalePoint {
  processes: number;
  /** pgds on pgd_list (the processes and init). */
  pgds: number;
  /** Modelled cycles of one vmalloc_sync_all(). */
  cycles: number;
  /** Host time of that call (ms). */
  hostMs: number;
  /** mmu_update hypercalls it issued (pmd entries set in other pgds). */
  mmuUpdates: number;
  /** Host time to fork the processes added since the previous point, per fork (µs). */
  forkUs: number;
}

export interface ScaleResult {
  processes: number;
  guestMemBytes: number;
  curve: ScalePoint[];
  /** cycles = intercept + cyclesPerPgd * pgds (least squares). */
  fit: { cyclesPerPgd: number; intercept: number; r2: number };
  hostFit: { usPerPgd: number; interceptMs: number; r2: number };
  memory: {
    /** After gc() with every process alive. */
    rssBytes: number;
    heapUsedBytes: number;
    arrayBuffersBytes: number;
    /** getrusage maxrss over the whole run. */
    peakRssBytes: number;
    /** rss at boot (before any process), after gc(). */
    bootRssBytes: number;
    /** (rss - bootRss) / processes. */
    bytesPerProcess: number;
    /** Guest frames with host storage (PhysMem touched frames), and their bytes. */
    framesTouched: number;
    gcForced: boolean;
  };
  linear: boolean;
  met: boolean;
}

function gcNow(): boolean {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g === undefined) return false;
  g();
  g();
  return true;
}

/** The scale run itself (in the child process). */
export function scaleRun(processes: number, checkpoints: number[]): ScaleResult {
  const memBytes = 1024 * MIB;
  const ops = createXenBackend({ pae: true, memBytes, cpu: 'core2', pageOffset: 0xc0000000, seed: 1 });
  const k = bootKernel({ ops });
  const mmu = ops.domain.mmu;
  gcNow();
  const bootRss = process.memoryUsage().rss;
  check(k.createProcess('init') === 0, 'scale: create init');
  check(k.mmap('init', HEAP, 4096, 'rw') === 0 && k.touch('init', HEAP, 4096, 'write') === 'ok', 'scale: init heap');
  // Each checkpoint's area must need exactly one new kernel pmd entry: pad
  // the vmalloc space up to a pmd (2 MiB) boundary, so that every area of
  // 2 MiB - 4 KiB (plus its guard page) fills one pmd range exactly.
  const probe = k.vmalloc(4096);
  check(probe !== null, 'scale: vmalloc probe');
  k.vfree(probe!);
  let pad = ((PMD - (probe!.addr % PMD)) % PMD) - 4096;
  if (pad < 0) pad += PMD;
  if (pad > 0) check(k.vmalloc(pad) !== null, 'scale: vmalloc pad');
  k.vmallocSyncAll();
  const curve: ScalePoint[] = [];
  let n = 0;
  for (const cp of checkpoints) {
    const t0 = nowNs();
    const from = n;
    for (; n < cp; n++) check(k.fork('init', `p${n}`) === 0, `scale: fork p${n} (out of memory)`);
    const forkUs = n > from ? (msSince(t0) * 1000) / (n - from) : 0;
    // A new vmalloc area: its one pmd entry is in swapper_pg_dir only.
    const area = k.vmalloc(PMD - 4096);
    check(area !== null && area.addr % PMD === 0, 'scale: vmalloc (or its area is not pmd-aligned)');
    gcNow(); // no collection of the forks' garbage inside the timed call
    const upd0 = ops.stats.hypercalls['mmu_update'] ?? 0;
    const c0 = ops.stats.cycles;
    const h0 = nowNs();
    k.vmallocSyncAll();
    const hostMs = msSince(h0);
    const cycles = ops.stats.cycles - c0;
    const mmuUpdates = (ops.stats.hypercalls['mmu_update'] ?? 0) - upd0;
    curve.push({ processes: n, pgds: k.pgdListLength, cycles, hostMs: round(hostMs, 2), mmuUpdates, forkUs: round(forkUs, 1) });
  }
  check(k.processes.length === processes + 1, `scale: ${k.processes.length - 1} processes alive, not ${processes}`);
  const gcForced = gcNow();
  const mu = process.memoryUsage();
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  const fit = linearFit(
    curve.map((p) => p.pgds),
    curve.map((p) => p.cycles),
  );
  const hostFit = linearFit(
    curve.map((p) => p.pgds),
    curve.map((p) => p.hostMs),
  );
  const linear = fit.r2 >= TARGETS.linearR2 && fit.slope > 0;
  return {
    processes,
    guestMemBytes: memBytes,
    curve,
    fit: { cyclesPerPgd: round(fit.slope, 1), intercept: round(fit.intercept), r2: round(fit.r2, 5) },
    hostFit: { usPerPgd: round(hostFit.slope * 1000, 3), interceptMs: round(hostFit.intercept, 2), r2: round(hostFit.r2, 4) },
    memory: {
      rssBytes: mu.rss,
      heapUsedBytes: mu.heapUsed,
      arrayBuffersBytes: mu.arrayBuffers,
      peakRssBytes,
      bootRssBytes: bootRss,
      bytesPerProcess: Math.round((mu.rss - bootRss) / processes),
      framesTouched: mmu.mem.framesTouched,
      gcForced,
    },
    linear,
    met: linear && peakRssBytes <= TARGETS.scaleHostBytes && processes >= TARGETS.scaleProcesses,
  };
}

const SCALE_FLAG = '--scale-child';

/** Run the scale benchmark in a fresh node with --expose-gc; its JSON comes back on stdout. */
export function benchScale(processes: number): ScaleResult {
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=4096', fileURLToPath(import.meta.url), SCALE_FLAG, String(processes)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * MIB,
  });
  if (r.status !== 0) throw new BenchCheck(`scale: the child process failed (exit ${r.status ?? r.signal})`);
  return JSON.parse(r.stdout) as ScaleResult;
}

function checkpointsFor(processes: number): number[] {
  return [0.1, 0.2, 0.4, 0.6, 0.8, 1].map((f) => Math.round(processes * f));
}

// ---- all of it, for run.ts ----

export interface WorkloadBench {
  /** The `workloads` object of `--json`. */
  json: Record<string, unknown>;
  /** The human-readable report. */
  text: string;
  /** False if a benchmark failed one of its checks (run.ts exits 1). */
  ok: boolean;
}

/** Run the workload benchmarks selected by run.ts's argv; undefined when `--only` selects none of them. */
export function runWorkloadBenchmarks(argv: string[]): WorkloadBench | undefined {
  const oi = argv.indexOf('--only');
  const only = oi >= 0 ? new Set((argv[oi + 1] ?? '').split(',')) : undefined;
  const want = (n: Name): boolean => only === undefined || only.has(n);
  if (!WORKLOAD_BENCHMARKS.some(want)) return undefined;
  const quick = argv.includes('--workloads-quick');
  const file = existsSync(DEFAULT_WORKLOAD) ? DEFAULT_WORKLOAD : fallbackWorkload();
  const rel = file === DEFAULT_WORKLOAD ? 'tools/workloads/default.pvw' : file;
  const json: Record<string, unknown> = {};
  const text: string[] = [];
  let ok = true;
  const log = (s: string): void => {
    process.stderr.write(`workloads: ${s}\n`);
  };
  const guard = (name: string, fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      ok = false;
      const msg = e instanceof BenchCheck ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
      process.stderr.write(`bench: ${name}: ${msg}\n`);
      json[name] = { error: e instanceof Error ? e.message : String(e) };
    }
  };
  const yes = (b: boolean): string => (b ? 'yes' : 'no');

  if (want('forkExit')) {
    guard('forkExit', () => {
      const batches = quick ? 3 : 7;
      log(`fork+exit, 1 MiB touched, PAE: ${batches} batches per backend...`);
      const native = benchForkExit('native', batches);
      const xen = benchForkExit('xen', batches);
      json['forkExit'] = { target: TARGETS.forkExitPerSec, native, xen };
      text.push(
        'fork+exit of a process with 1 MiB mapped and written (child touches nothing), PAE, 3G split, 256 MiB guest',
        table(
          ['backend', 'fork+exit/s', 'per CPU s', 'batches (ops/s)', 'max per batch', 'cycles/op', 'target', 'met'],
          [native, xen].map((r, i) => [
            i === 0 ? 'native' : 'xen',
            num(r.opsPerSec),
            num(r.opsPerCpuSec),
            `${num(Math.min(...r.batches))}..${num(Math.max(...r.batches))}`,
            num(r.iterationsPerBatch),
            num(r.cyclesPerOp, 1),
            `>= ${num(TARGETS.forkExitPerSec)}/s`,
            yes(r.met),
          ]),
          [1, 2, 3, 4, 5],
        ),
        '(medians over the batches: per wall-clock second, and per second of this process\'s CPU time; the target is on wall time)',
        '',
      );
    });
  }
  if (want('compare')) {
    guard('compare', () => {
      log(`compare ${rel} in-process (1 cold + ${quick ? 2 : 5}) and as a whole process (3)...`);
      const r = benchCompare(file, quick ? 2 : 5);
      json['compare'] = { target: TARGETS.compareMs, ...r, workload: rel };
      text.push(
        `compare ${rel} (both backends)`,
        table(
          ['what', 'wall time', 'target', 'met'],
          [
            ['in-process (median; node startup excluded)', `${num(r.inProcessMs, 1)} ms`, `< ${num(TARGETS.compareMs)} ms`, yes(r.met)],
            ['in-process, CPU time (median)', `${num(r.inProcessCpuMs, 1)} ms`, '', ''],
            ['in-process, first run (cold JIT)', `${num(r.coldMs, 1)} ms`, '', ''],
            [`node dist/tools/cli.js compare ${rel}`, r.wholeProcessMs === null ? '-' : `${num(r.wholeProcessMs, 1)} ms`, '(reference)', ''],
          ],
          [1],
        ),
        '',
      );
    });
  }
  if (want('trace')) {
    guard('trace', () => {
      log(`compare ${rel} with and without --trace (${quick ? 2 : 5} each, interleaved)...`);
      const r = benchTrace(file, quick ? 2 : 5);
      json['trace'] = { target: TARGETS.traceRatio, ...r };
      text.push(
        `tracing: compare ${rel} with both backends traced to temporary files`,
        table(
          ['trace off', 'trace on', 'on/off', 'on/off (CPU)', 'events', 'trace size', 'target', 'met'],
          [[`${num(r.offMs, 1)} ms`, `${num(r.onMs, 1)} ms`, `${r.ratio.toFixed(2)}x`, `${r.cpuRatio.toFixed(2)}x`, num(r.events), mib(r.traceBytes), `<= ${TARGETS.traceRatio}x`, yes(r.met)]],
          [0, 1, 2, 3, 4, 5],
        ),
        '',
      );
    });
  }
  if (want('scale')) {
    guard('scale', () => {
      const n = quick ? 2000 : TARGETS.scaleProcesses;
      log(`scale: ${num(n)} live processes, Xen, PAE, 3G split, 1 GiB guest (child node --expose-gc)...`);
      const r = benchScale(n);
      json['scale'] = { targetHostBytes: TARGETS.scaleHostBytes, targetR2: TARGETS.linearR2, ...r };
      const m = r.memory;
      text.push(
        `scale: ${num(r.processes)} live processes forked from init (one written page each, shared COW), Xen, PAE, 3G split, ${mib(r.guestMemBytes)} guest`,
        'vmalloc_sync_all() after a new vmalloc area (one new kernel pmd entry), by number of pgds:',
        table(
          ['processes', 'pgds', 'cycles', 'cycles/pgd', 'mmu_update', 'host ms', 'fork µs (host)'],
          r.curve.map((p) => [num(p.processes), num(p.pgds), num(p.cycles), num(p.cycles / p.pgds, 1), num(p.mmuUpdates), num(p.hostMs, 2), num(p.forkUs, 1)]),
          [0, 1, 2, 3, 4, 5, 6],
        ),
        `linear fit: cycles = ${num(r.fit.intercept)} + ${num(r.fit.cyclesPerPgd, 1)} x pgds, R² = ${r.fit.r2.toFixed(5)}` +
          ` (linear: ${yes(r.linear)}, target R² >= ${TARGETS.linearR2}); host: ${r.hostFit.usPerPgd.toFixed(3)} µs/pgd, R² = ${r.hostFit.r2.toFixed(4)}`,
        `host memory with all processes alive (after gc()${m.gcForced ? '' : ' - NOT available, no --expose-gc'}): rss ${mib(m.rssBytes)},` +
          ` heapUsed ${mib(m.heapUsedBytes)}, arrayBuffers ${mib(m.arrayBuffersBytes)} (boot: rss ${mib(m.bootRssBytes)});` +
          ` peak rss ${mib(m.peakRssBytes)} (budget ${mib(TARGETS.scaleHostBytes)}: ${yes(m.peakRssBytes <= TARGETS.scaleHostBytes)});` +
          ` ${mib(m.bytesPerProcess)} per process; ${num(m.framesTouched)} guest frames have host storage (${mib(m.framesTouched * 4096)})`,
        '',
      );
    });
  }
  if (file !== DEFAULT_WORKLOAD) rmSync(dirname(file), { recursive: true, force: true });
  return { json, text: text.length > 0 ? `\nworkload benchmarks\n${text.join('\n')}` : '', ok };
}

function fallbackWorkload(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pvmmu-bench-wl-'));
  const f = join(dir, 'fallback.pvw');
  writeFileSync(f, FALLBACK_WORKLOAD);
  return f;
}

// ---- the scale child ----

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.argv[2] === SCALE_FLAG) {
  const n = Number(process.argv[3] ?? TARGETS.scaleProcesses);
  const r = scaleRun(n, checkpointsFor(n));
  process.stdout.write(JSON.stringify(r) + '\n');
}
