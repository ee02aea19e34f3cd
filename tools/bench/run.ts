/**
 * `npm run bench`: translation speed of the emulated MMU, measured with
 * benchmark.js, next to the same work written in plain C (tools/bench/c/
 * mmu_bench.c, built with gcc -O2 and run in the same invocation).
 *
 * Why a C baseline: the targets are absolute (M translations/s) and
 * relative ("within 2.5x / 3x of C -O2", issue 12), and a ratio measured on the same
 * machine in the same run is the honest one. The four benchmarks mirror the
 * C program's setup exactly: the core2 preset (DTLB0 16 x 4-way, DTLB1
 * 256 x 4-way), VA base 0x40000000, user reads at offset (i >> 2) & 0xffc,
 * CR0.WP, CR4.PGE, EFER.NXE and data frames above 4 GiB under PAE, the same
 * xorshift32 Fisher-Yates visiting order of 8192 pages, and a warm-up pass.
 *
 * The modelled TLB must stay honest, so every run checks the counters: a
 * "hit" benchmark must count exactly one modelled TLB hit per translation
 * and a "walk" benchmark exactly one two-level walk (a miss in DTLB0 and
 * DTLB1) per translation, with no faults; every batch's sum of physical
 * addresses is checked against the mapping. A benchmark that fails a check
 * makes the run exit 1.
 *
 * The C program runs before and after the emulator's benchmarks and its two
 * figures are averaged, so a change in machine load during the run weighs on
 * both sides of the ratio.
 *
 * Output: an aligned table and the checked counters on stdout, or with
 * `--json` exactly one JSON document on stdout (counters then go to stderr):
 *   { "mmu": { "translateHit": { "opsPerSec", "cOpsPerSec", "ratioToC" }, ... } }
 * where ratioToC = C ops/s divided by emulator ops/s (how many times slower
 * than C; the target is at most 2.5 for hits and 3 for walks); without gcc the
 * C fields are left out. Progress goes to stderr. Options: `--time SECONDS` (benchmark.js maxTime per
 * benchmark, default 2; the C side runs for the same time per benchmark, at
 * most 2 s), `--only NAME,...` (run only the named benchmarks) and, with
 * `--json`, `--out FILE` (the document in FILE rather than on stdout: `npm
 * run bench` prints its "> pvmmu bench" banner on stdout; `npm run -s bench
 * -- --json` or `--out` keep the JSON clean).
 */
import Benchmark from 'benchmark';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR4_PAE,
  CR4_PGE,
  CR4_PSE,
  EFER_NXE,
  Mmu,
  MmuCounters,
  PTE_NX_HI,
  PTE_P,
  PTE_RW,
  PTE_US,
} from '../../emulator/index.js';
import { runWorkloadBenchmarks } from './workloads.js';
import { runSweepBenchmarks } from './sweep.js';
import { writeOutputFile } from '../output-file.js';

// ---- the address spaces (tools/bench/c/mmu_bench.c "address spaces used by the benchmarks") ----
const NPAGES = 8192;
const HOT_PAGES = 16;
const VA_BASE = 0x40000000;
const PT_BASE_PFN = 0x10;
/** Translations per benchmark.js call; the visiting sequence repeats with this period. */
const BATCH = 16384;
const ACC_USER_READ = 1; // accessClass(ACCESS_READ, true)

/** PAE data frames sit above 4 GiB so the 36-bit path is exercised. */
const paePfnOf = (page: number): number => 0x123000 + page * 5;
const twoPfnOf = (page: number): number => 0x20000 + page * 3;
const off = (i: number): number => (i >>> 2) & 0xffc;

/** CR3 0x1000 -> PDPT; four PDPTEs -> PDs at pfn 2..5; 16 page tables at pfn 0x10.., user RW, NX. */
function setupPae(): Mmu {
  const mmu = new Mmu({ cpu: 'core2' });
  const mem = mmu.mem;
  for (let i = 0; i < 4; i++) mem.setWord(1, i * 2, ((2 + i) << 12) | PTE_P);
  const pdPfn = 2 + (VA_BASE >>> 30);
  for (let k = 0; k < NPAGES / 512; k++) {
    const pdeIdx = ((VA_BASE >>> 21) & 511) + k;
    mem.setWord(pdPfn, pdeIdx * 2, ((PT_BASE_PFN + k) << 12) | PTE_P | PTE_RW | PTE_US);
    for (let j = 0; j < 512; j++) {
      const pfn = paePfnOf(k * 512 + j);
      mem.setWord(PT_BASE_PFN + k, j * 2, (pfn << 12) | PTE_P | PTE_RW | PTE_US);
      mem.setWord(PT_BASE_PFN + k, j * 2 + 1, (pfn >>> 20) | PTE_NX_HI);
    }
  }
  mmu.writeEfer(EFER_NXE);
  mmu.writeCr4(CR4_PAE | CR4_PGE);
  mmu.writeCr3(0x1000);
  if (mmu.writeCr0(CR0_PE | CR0_PG | CR0_WP) !== 'ok') throw new Error('PAE setup: PDPTE load #GP');
  return mmu;
}

/** CR3 0x1000 -> PD; VA_BASE is PDE 256; 8 page tables of 1024 PTEs at pfn 0x10.. */
function setup2(): Mmu {
  const mmu = new Mmu({ cpu: 'core2' });
  const mem = mmu.mem;
  for (let k = 0; k < NPAGES / 1024; k++) {
    mem.setWord(1, (VA_BASE >>> 22) + k, ((PT_BASE_PFN + k) << 12) | PTE_P | PTE_RW | PTE_US);
    for (let j = 0; j < 1024; j++) {
      mem.setWord(PT_BASE_PFN + k, j, (twoPfnOf(k * 1024 + j) << 12) | PTE_P | PTE_RW | PTE_US);
    }
  }
  mmu.writeCr4(CR4_PSE | CR4_PGE);
  mmu.writeCr3(0x1000);
  if (mmu.writeCr0(CR0_PE | CR0_PG | CR0_WP) !== 'ok') throw new Error('2-level setup: #GP');
  return mmu;
}

/** The C program's visiting order: Fisher-Yates driven by xorshift32 from 0x9e3779b9. */
function visitingOrder(): Int32Array {
  const perm = new Int32Array(NPAGES);
  for (let i = 0; i < NPAGES; i++) perm[i] = i;
  let x = 0x9e3779b9;
  for (let i = NPAGES - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}

// ---- the benchmarks ----

interface Target {
  minOpsPerSec: number;
  maxRatioToC: number;
}

interface Case {
  name: string;
  target: Target;
  /** True for all-walk benchmarks, false for all-hit ones. */
  walks: boolean;
  mmu: Mmu;
  /** One batch of BATCH translations; returns nothing, counts and checks itself. */
  fn: () => void;
  calls: () => number;
  badBatches: () => number;
  before: MmuCounters;
}

// Issue 12: a translate-hit loop within 2.5x of C, a PAE-walk loop within 3x
// (the absolute figures are the earlier issue's).
const HIT_TARGET: Target = { minOpsPerSec: 170e6, maxRatioToC: 2.5 };
const WALK_TARGET: Target = { minOpsPerSec: 50e6, maxRatioToC: 3 };

function snapshot(c: MmuCounters): MmuCounters {
  const s = new MmuCounters();
  Object.assign(s, c);
  s.walksByDepth = [...c.walksByDepth];
  return s;
}

/**
 * Build a benchmark over `mmu`: op i translates page pageOf(i) at offset
 * off(i) for a user read. The warm-up pass checks every translation against
 * the mapping and yields the expected sum of one batch.
 */
function makeCase(name: string, mmu: Mmu, pages: Int32Array, pfnOf: (p: number) => number, walks: boolean): Case {
  const vas = new Int32Array(BATCH);
  let want = 0;
  for (let i = 0; i < BATCH; i++) {
    const page = pages[i]!;
    vas[i] = VA_BASE + (page << 12) + off(i);
    const expect = pfnOf(page) * 4096 + off(i);
    const pa = mmu.translate(vas[i]!, ACC_USER_READ);
    if (pa !== expect) throw new Error(`${name}: warm-up translation of 0x${(vas[i]! >>> 0).toString(16)}: got ${pa}, expected ${expect}`);
    want += expect;
  }
  const state = { calls: 0, bad: 0 };
  // The loop recomputes the address like the C loop does (a table lookup of
  // the page for walks, arithmetic for hits) rather than reading it from
  // `vas`. Each case gets its own compiled copy of the loop (new Function),
  // as benchmark.js itself does when it can: otherwise V8 shares one
  // function's type feedback between the cases and the order in which they
  // run changes their speed.
  const page = walks ? 'pages[i & ' + (NPAGES - 1) + ']' : '(i & ' + (HOT_PAGES - 1) + ')';
  const fn = new Function(
    'mmu',
    'pages',
    'want',
    'state',
    `return function ${name}Batch() {
      let sum = 0;
      for (let i = 0; i < ${BATCH}; i++) {
        sum += mmu.translate(${VA_BASE} + (${page} << 12) + ((i >>> 2) & 0xffc), ${ACC_USER_READ});
      }
      if (sum !== want) state.bad++;
      state.calls++;
    };`,
  )(mmu, pages, want, state) as () => void;
  return {
    name,
    target: walks ? WALK_TARGET : HIT_TARGET,
    walks,
    mmu,
    fn,
    calls: () => state.calls,
    badBatches: () => state.bad,
    before: snapshot(mmu.counters),
  };
}

function hotPages(): Int32Array {
  const p = new Int32Array(BATCH);
  for (let i = 0; i < BATCH; i++) p[i] = i & (HOT_PAGES - 1);
  return p;
}

function walkPages(perm: Int32Array): Int32Array {
  const p = new Int32Array(BATCH);
  for (let i = 0; i < BATCH; i++) p[i] = perm[i & (NPAGES - 1)]!;
  return p;
}

/** Check the modelled counters over the timed calls; returns a one-line summary or throws. */
function checkCounters(c: Case): string {
  const now = c.mmu.counters;
  const b = c.before;
  const ops = c.calls() * BATCH;
  const hits = now.tlbHits - b.tlbHits;
  const l2 = now.l2TlbHits - b.l2TlbHits;
  const misses = now.tlbMisses - b.tlbMisses;
  const walks2 = now.walksByDepth[2]! - b.walksByDepth[2]!;
  const walks = now.walks - b.walks;
  const faults = now.pageFaults - b.pageFaults;
  const ad = now.adUpdates - b.adUpdates;
  const wch = now.walkCacheHits - b.walkCacheHits;
  const wcm = now.walkCacheMisses - b.walkCacheMisses;
  const summary =
    `${c.name}: ops=${ops} tlbHits=${hits} l2TlbHits=${l2} tlbMisses=${misses} walks(depth 2)=${walks2} ` +
    `faults=${faults} adUpdates=${ad} walkCacheHits=${wch} walkCacheMisses=${wcm} ` +
    `cycles=${c.mmu.cycles - (b.otherCycles + b.tlbHits * c.mmu.preset.cycles.tlbHit)}`;
  const problems: string[] = [];
  if (c.badBatches() !== 0) problems.push(`${c.badBatches()} batches returned a wrong sum of physical addresses`);
  if (faults !== 0) problems.push(`${faults} page faults`);
  if (c.walks) {
    if (walks2 !== ops || walks !== ops || misses !== ops) problems.push(`expected ${ops} two-level walks, got ${walks2}`);
    if (hits !== 0 || l2 !== 0) problems.push(`expected no TLB hits, got ${hits} + ${l2} (L2)`);
  } else {
    if (hits !== ops) problems.push(`expected ${ops} TLB hits, got ${hits}`);
    if (misses !== 0 || l2 !== 0 || walks !== 0) problems.push(`expected no misses, got ${misses} misses, ${walks} walks`);
  }
  if (problems.length) throw new Error(`${c.name} is not doing the work it claims: ${problems.join('; ')}\n${summary}`);
  return summary;
}

// ---- the C baseline ----

type COps = Record<string, number>;

function cSource(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [resolve(here, '../../../tools/bench/c/mmu_bench.c'), resolve(here, 'c/mmu_bench.c'), resolve('tools/bench/c/mmu_bench.c')]) {
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** The C baseline built with gcc -O2 into a temp dir, or undefined (with a warning) if that is impossible. */
interface CBaseline {
  exe: string;
  dir: string;
}

function buildC(): CBaseline | undefined {
  const src = cSource();
  if (src === undefined) {
    process.stderr.write('warning: tools/bench/c/mmu_bench.c not found; ratios to C omitted\n');
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'pvmmu-bench-'));
  const exe = join(dir, 'mmu_bench');
  const cc = spawnSync('gcc', ['-O2', '-std=c99', '-o', exe, src], { encoding: 'utf8' });
  if (cc.error !== undefined || cc.status !== 0) {
    const why = cc.error !== undefined ? cc.error.message : cc.stderr.trim();
    process.stderr.write(`warning: cannot build the C baseline with gcc (${why}); ratios to C omitted\n`);
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  process.stderr.write(`C baseline: gcc -O2 -std=c99 ${src}\n`);
  return { exe, dir };
}

/** One run of the C baseline (all four benchmarks, `seconds` each); undefined if it fails. */
function runC(c: CBaseline, seconds: number): COps | undefined {
  process.stderr.write(`C baseline: ${seconds} s per benchmark...\n`);
  const r = spawnSync(c.exe, ['-t', String(seconds), '-v'], { encoding: 'utf8' });
  if (r.stderr) process.stderr.write(`${r.stderr.trimEnd().replace(/^/gm, '  C: ')}\n`);
  if (r.error !== undefined || r.status !== 0) {
    process.stderr.write(`warning: the C baseline failed (status ${r.status}); ratios to C omitted\n`);
    return undefined;
  }
  const doc = JSON.parse(r.stdout) as Record<string, { opsPerSec: number }>;
  const out: COps = {};
  for (const [k, v] of Object.entries(doc)) out[k] = v.opsPerSec;
  return out;
}

/** Mean of the runs that succeeded, per benchmark. */
function meanC(runs: (COps | undefined)[]): COps | undefined {
  const ok = runs.filter((r): r is COps => r !== undefined);
  if (ok.length === 0) return undefined;
  const out: COps = {};
  for (const k of Object.keys(ok[0]!)) out[k] = Math.round(ok.reduce((a, r) => a + (r[k] ?? 0), 0) / ok.length);
  return out;
}

// ---- main ----

interface Result {
  opsPerSec: number;
  cOpsPerSec?: number;
  ratioToC?: number;
}

function fmtRate(n: number | undefined): string {
  return n === undefined ? '-' : `${(n / 1e6).toFixed(1)} M/s`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const json = argv.includes('--json');
  const ti = argv.indexOf('--time');
  const seconds = ti >= 0 ? Number(argv[ti + 1]) : 2;
  if (!(seconds > 0)) {
    process.stderr.write('bench: --time needs a positive number of seconds\n');
    process.exit(2);
  }

  // The C side runs before and after the emulator and the two runs are
  // averaged, so a change in machine load during the run shows in both.
  const cBin = buildC();
  const cSecs = Math.min(seconds, 2) / 2;
  const cBefore = cBin !== undefined ? runC(cBin, cSecs) : undefined;

  const perm = visitingOrder();
  const cases: Case[] = [];
  const suite = new Benchmark.Suite('mmu');
  const defs: [string, () => Mmu, Int32Array, (p: number) => number, boolean][] = [
    ['translateHit', setupPae, hotPages(), paePfnOf, false],
    ['translateWalkPae', setupPae, walkPages(perm), paePfnOf, true],
    ['translateHit2Level', setup2, hotPages(), twoPfnOf, false],
    ['translateWalk2Level', setup2, walkPages(perm), twoPfnOf, true],
  ];
  const oi = argv.indexOf('--only');
  const only = oi >= 0 ? new Set(argv[oi + 1]!.split(',')) : undefined;
  for (const [name, setup, pages, pfnOf, walks] of defs) {
    if (only !== undefined && !only.has(name)) continue;
    // Each case has its own machine, built and warmed up here, and its own
    // loop function, which benchmark.js calls directly.
    const cs = makeCase(name, setup(), pages, pfnOf, walks);
    cases.push(cs);
    suite.add(name, { fn: cs.fn, maxTime: seconds });
  }
  suite.on('cycle', (ev: Benchmark.Event) => process.stderr.write(`  ${String(ev.target)} (x${BATCH} translations per op)\n`));
  suite.on('error', (ev: Benchmark.Event) => {
    const t = ev.target as unknown as Benchmark;
    const err: unknown = t.error;
    process.stderr.write(`bench: ${t.name}: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
  process.stderr.write(`emulator: benchmark.js, maxTime ${seconds} s per benchmark...\n`);
  suite.run({ async: false });

  const cAfter = cBin !== undefined ? runC(cBin, cSecs) : undefined;
  if (cBin !== undefined) rmSync(cBin.dir, { recursive: true, force: true });
  const c = cBin !== undefined ? meanC([cBefore, cAfter]) : undefined;

  const results: Record<string, Result> = {};
  const rme: Record<string, number> = {};
  const counterLines: string[] = [];
  let ok = process.exitCode !== 1;
  for (const b of suite.map((x: Benchmark) => x) as Benchmark[]) {
    const cs = cases.find((x) => x.name === b.name);
    if (cs === undefined || b.error) {
      ok = false;
      continue;
    }
    try {
      counterLines.push(checkCounters(cs));
    } catch (e) {
      process.stderr.write(`bench: ${(e as Error).message}\n`);
      ok = false;
    }
    const opsPerSec = Math.round(b.hz * BATCH);
    const r: Result = { opsPerSec };
    const cOps = c?.[b.name!];
    if (cOps !== undefined) {
      r.cOpsPerSec = cOps;
      r.ratioToC = Math.round((cOps / opsPerSec) * 100) / 100;
    }
    results[b.name!] = r;
    rme[b.name!] = b.stats.rme;
  }

  // The workload benchmarks (workloads.ts): fork+exit, compare, tracing, scale.
  const workloads = runWorkloadBenchmarks(argv);
  if (workloads !== undefined && !workloads.ok) ok = false;

  // The sweep benchmarks (sweep.ts): inject, --jobs, fuzz, sweep time against workload length.
  const sweep = await runSweepBenchmarks(argv);
  if (sweep !== undefined && !sweep.ok) ok = false;

  if (json) {
    for (const l of counterLines) process.stderr.write(`  counters ${l}\n`);
    const doc = `${JSON.stringify({ mmu: results, workloads: workloads?.json, sweep: sweep?.json }, null, 2)}\n`;
    // --out FILE: the document in a file, whatever npm prints on stdout around the script.
    const oo = argv.indexOf('--out');
    if (oo >= 0 && argv[oo + 1] !== undefined) writeOutputFile('--out', argv[oo + 1]!, doc);
    else process.stdout.write(doc);
  } else {
    const rows: string[][] = [['benchmark', 'emulator', '±', 'C -O2', 'C/TS', 'target', 'met']];
    for (const cs of cases) {
      const r = results[cs.name];
      if (r === undefined) continue;
      const t = cs.target;
      const met = r.opsPerSec >= t.minOpsPerSec && (r.ratioToC === undefined || r.ratioToC <= t.maxRatioToC);
      rows.push([
        cs.name,
        fmtRate(r.opsPerSec),
        `${(rme[cs.name] ?? 0).toFixed(1)}%`,
        fmtRate(r.cOpsPerSec),
        r.ratioToC === undefined ? '-' : `${r.ratioToC.toFixed(2)}x`,
        `>= ${t.minOpsPerSec / 1e6} M/s, <= ${t.maxRatioToC}x C`,
        r.ratioToC === undefined ? (met ? 'yes (no C)' : 'no') : met ? 'yes' : 'no',
      ]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) {
      process.stdout.write(`${r.map((cell, i) => (i === 0 || i >= 5 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd()}\n`);
    }
    process.stdout.write(
      `(${BATCH} translations per benchmark.js op; ± = benchmark.js relative margin of error; C/TS = C ops/s / emulator ops/s;\n` +
        ' C runs before and after the emulator and is averaged)\n',
    );
    process.stdout.write('modelled counters over the timed runs (checked: hits all TLB hits, walks all two-level walks):\n');
    for (const l of counterLines) process.stdout.write(`  ${l}\n`);
    if (workloads !== undefined) process.stdout.write(`${workloads.text}\n`);
    if (sweep !== undefined) process.stdout.write(`${sweep.text}\n`);
  }
  if (!ok) process.exitCode = 1;
}

await main();
