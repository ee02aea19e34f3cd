/**
 * The differential workload fuzzer. For one seed: generate a random valid
 * workload (workload-gen.ts), run it on every backend the configuration
 * allows (native, Xen, VMI; lguest in 2-level paging) (PAE or 2-level,
 * split, memory and cpu from the seed; Xen's p2m shuffled by the seed, so
 * pseudo-physical and machine frames differ) and check
 *   1. all backends agree on everything the guest observes (compareAll),
 *      and all run to the end (a generated script meets all its expects);
 *   2. the guest invariants hold after every statement (checkEachStatement);
 *   3. at every processor access a statement makes (boot's own accesses
 *      are not checked: the checker is installed once the kernel is up), the TLB-backed
 *      translation equals the reference walk with no TLB (Mmu.probePa on the
 *      same tables, same CR3/PDPTEs, same access class).
 * A failing seed is shrunk (delta debugging over statements and blocks,
 * keeping the same kind of failure) and can be saved as a regression
 * workload.
 *
 * The TLB check runs in a checking processor (checking-mmu.ts) the backend
 * is built on (MachineConfig.newMmu, through the interpreter's `newMmu`
 * option); the statement running is named through the interpreter's
 * `onStatement` option. Nothing is patched: other runs use a plain Mmu.
 * Every backend the configuration allows runs (native, Xen, VMI, and lguest
 * in 2-level paging); on the shadow-paging backends the check compares the
 * processor with a walk of the shadow tables it runs on.
 *
 * The architecture lets a TLB keep a translation the tables no longer give,
 * so "TLB == fresh walk" is a property of a correct guest, not of the
 * hardware. Linux flushes after every change that removes or reduces a
 * mapping, so on this guest every TLB-backed result must equal the walk,
 * with one legitimate exception, counted and reported as `globalStale`:
 * a global kernel translation survives MOV CR3, so a supervisor access to a
 * kernel address may hit a global entry filled under another pgd while the
 * current pgd does not (yet) map it (a vmalloc area whose pmd this pgd has
 * not synced: vmalloc_fault would sync it on a miss). Such a hit is
 * accepted only when the entry is global and the pa it gives is what the
 * kernel's reference page tables (swapper_pg_dir) map the address to.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Mmu } from '../../emulator/mmu.js';
import { TLBF_G } from '../../emulator/tlb.js';
import { backendKind, isKind } from '../../hypervisor/backend.js';
import { CheckingMmu } from './checking-mmu.js';
import { DirtyFrameMem } from './dirty-frames.js';
import { IncrementalInvariantChecker } from '../../guest-kernel/invariants.js';
import type { ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { HypervisorRefusal } from '../../hypervisor/types.js';
import { KernelBug } from '../../guest-kernel/kernel.js';
import { compareAll } from '../workload/compare.js';
import type { Script, Stmt } from '../workload/ast.js';
import { checkScript } from '../workload/check.js';
import { resolveConfig, pageOffset, type Backend, type RunConfig } from '../workload/config.js';
import { Interpreter, type RunResult } from '../workload/interpreter.js';
import { parseScript } from '../workload/parser.js';
import { generateWorkload, type GenOptions } from './workload-gen.js';
import { cpaContractBreach, lguestUnhookedUpdate } from './expected-outcomes.js';
import { hex } from '../../emulator/hex.js';

/** The Xen p2m layouts a fuzz run may use (hypervisor/xen/p2m.ts). */
export type P2mLayout = 'identity' | 'shuffled';

/** A deliberate defect, for proving that the checks can fail (tests only). */
export interface Mutation {
  /** A wrong processor: applied to every translation result of each run after boot, underneath the check. */
  translate?: (va: number, acc: number, result: number, backend: Backend) => number;
  /** Called on the backend of each run after boot. */
  ops?: (ops: ParavirtOps, backend: Backend) => void;
}

export interface TlbMismatch {
  backend: Backend;
  line: number;
  va: number;
  acc: number;
  tlb: number;
  walk: number;
}

export interface BackendRun {
  result: RunResult | null;
  /** lguest: in-place pte changes its 2.6.23 guest did not tell the host, in an mm whose cached shadow was not loaded (0 elsewhere). */
  unhookedStale?: number;
  accesses: number;
  globalStale: number;
  mismatches: TlbMismatch[];
  crash: string | null;
}

export interface SeedOutcome {
  seed: number;
  config: RunConfig;
  text: string;
  /** Statements run (every backend the configuration allows). */
  statements: number;
  /** Accesses checked against the reference walk (every backend). */
  accesses: number;
  globalStale: number;
  /** Empty when the seed passed. */
  failures: string[];
  /** What kind of failure (kept while shrinking), or null. */
  signature: string | null;
  /** Expected outcomes (expected-outcomes.ts), not failures. */
  expected: string[];
}

export interface DiffOptions {
  gen?: GenOptions;
  mutate?: Mutation;
}

const ACC = ['read', 'read/user', 'write', 'write/user', 'fetch', 'fetch/user'];

function describeResult(r: number): string {
  return r >= 0 ? `pa ${hex(r)}` : `#PF ec=${hex(-1 - r)}`;
}

/**
 * Start the TLB-vs-walk check on a checking processor. `lineOf()` names the
 * statement running; `globalOk(va, pa)` decides the global-entry exception.
 */
export function attachTlbChecker(
  mmu: CheckingMmu,
  backend: Backend,
  lineOf: () => number,
  globalOk: (va: number, acc: number, pa: number) => boolean,
): { run: BackendRun; detach: () => void } {
  const run: BackendRun = { result: null, accesses: 0, globalStale: 0, mismatches: [], crash: null };
  mmu.observer = (m, va, acc, r) => {
    run.accesses++;
    const ref = m.probePa(va, acc);
    if (ref !== r) {
      if (r >= 0 && ref < 0 && globalOk(va >>> 0, acc, r)) run.globalStale++;
      else if (run.mismatches.length < 20) run.mismatches.push({ backend, line: lineOf(), va: va >>> 0, acc, tlb: r, walk: ref });
    }
  };
  return {
    run,
    detach: () => {
      mmu.observer = null;
    },
  };
}

/** Is the first-level TLB entry that serves `va` for access class `acc` global? (Side-effect-free lookups.) */
function tlbEntryGlobal(mmu: Mmu, va: number, acc: number): boolean {
  const l1 = acc >= 4 ? mmu.tlbs.itlb : mmu.tlbs.dtlb;
  const pae = mmu.cpu.pae;
  for (const t of [l1, mmu.tlbs.l2]) {
    let s = t.lookupSmall(va >>> 12);
    if (s < 0) s = t.lookupLarge(pae ? va >>> 21 : va >>> 22);
    if (s >= 0) return (t.flags[s]! & TLBF_G) !== 0;
  }
  return false;
}

/**
 * The guest check after a statement: 'incremental' (the default) redoes the
 * census of only the mms whose tables were written since the last check
 * (IncrementalInvariantChecker; the same findings as 'full', which a test
 * checks statement by statement), 'full' runs the whole check every time.
 */
export type GuestCheck = 'incremental' | 'full';

/** The incremental guest check of `it`'s kernel, the written frames from its memory (a full check without DirtyFrameMem). */
export function incrementalCheck(it: Interpreter, checker: IncrementalInvariantChecker): string[] {
  const mem = it.mmu.mem;
  if (!(mem instanceof DirtyFrameMem)) return it.kernel.checkInvariants();
  const v = it.kernel.checkInvariantsIncremental(checker, (pfn) => {
    const ma = it.handle.machineAddress(pfn * 4096);
    return ma < 0 || mem.written(Math.floor(ma / 4096));
  });
  mem.forget();
  return v;
}

/** Run one checked script on one backend with the TLB checker and per-statement invariants. */
export function runChecked(
  script: Script,
  cfg: RunConfig,
  seed: number,
  mutate?: Mutation,
  xenP2m: P2mLayout = 'identity',
  guestCheck: GuestCheck = 'incremental',
): BackendRun {
  let it: Interpreter;
  let line = 0;
  const checker = new IncrementalInvariantChecker();
  try {
    it = new Interpreter(script, cfg, {
      seed,
      checkEachStatement: true,
      xenP2m,
      // The machine's memory remembers the frames written, for the incremental guest check.
      newMmu: (o) => new CheckingMmu(guestCheck === 'incremental' && o.mem === undefined ? { ...o, mem: new DirtyFrameMem() } : o),
      statementCheck: () => incrementalCheck(it, checker),
      onStatement: (s) => {
        line = s.line;
      },
    });
  } catch (e) {
    const msg = e instanceof HypervisorRefusal || e instanceof KernelBug ? `boot: ${e.message}` : `boot crashed: ${(e as Error).stack ?? e}`;
    return { result: null, accesses: 0, globalStale: 0, mismatches: [], crash: msg };
  }
  const mmu = it.mmu as CheckingMmu;
  const defect = mutate?.translate;
  if (defect) mmu.defect = (va, acc, r) => defect(va, acc, r, cfg.backend);
  mutate?.ops?.(it.ops, cfg.backend);
  const kernelBase = pageOffset(cfg.split);
  const globalOk = (va: number, acc: number, pa: number): boolean => {
    if ((acc & 1) !== 0 || va < kernelBase || !tlbEntryGlobal(it.mmu, va, acc)) return false;
    // The reference: what init_mm's tables (swapper_pg_dir) map the address
    // to, by a probe walk (no TLB, no A/D updates, no CR3 write).
    return referencePa(it, va, acc) === pa;
  };
  const { run, detach } = attachTlbChecker(mmu, cfg.backend, () => line, globalOk);
  try {
    run.result = it.run();
  } catch (e) {
    run.crash = `line ${line}: ${(e as Error).stack ?? e}`;
  } finally {
    detach();
  }
  if (isKind(it.handle, 'lguest')) run.unhookedStale = it.handle.ext.backend.unhookedStaleUpdates;
  return run;
}

/**
 * The machine address init_mm (swapper_pg_dir) maps `va` to for access
 * class `acc`, or -1: a walk of the reference tables from their machine
 * address, with the current PDPTE registers swapped out for the duration.
 */
function referencePa(it: Interpreter, va: number, acc: number): number {
  const mmu = it.mmu;
  const cpu = mmu.cpu;
  const ma = it.handle.machineAddress(it.kernel.k.swapper_pg_dir);
  if (ma < 0) return -1;
  const saved = { cr3: cpu.cr3, lo: [...cpu.pdpteLo], hi: [...cpu.pdpteHi] };
  try {
    cpu.cr3 = ma;
    if (cpu.pae) {
      for (let i = 0; i < 4; i++) {
        const e = mmu.mem.read64(ma + 8 * i);
        cpu.pdpteLo[i] = Number(e & 0xffffffffn) | 0;
        cpu.pdpteHi[i] = Number(e >> 32n) | 0;
      }
    }
    return mmu.probePa(va, acc);
  } finally {
    cpu.cr3 = saved.cr3;
    for (let i = 0; i < 4; i++) {
      cpu.pdpteLo[i] = saved.lo[i]!;
      cpu.pdpteHi[i] = saved.hi[i]!;
    }
  }
}

/** Parse and check a workload text under its own machine line. */
export function loadText(file: string, text: string): { script: Script; cfg: RunConfig } {
  const script = parseScript(file, text);
  const cfg = resolveConfig(file, script.machine, {});
  checkScript(script, cfg);
  return { script, cfg };
}

/** Check one workload text on both backends; failures and the failure signature. */
export function checkText(
  file: string,
  text: string,
  seed: number,
  mutate?: Mutation,
  xenP2m: P2mLayout = 'shuffled',
): CheckOutcome {
  let loaded: { script: Script; cfg: RunConfig };
  try {
    loaded = loadText(file, text);
  } catch (e) {
    return { failures: [`invalid workload: ${(e as Error).message}`], signature: 'invalid', details: { invalid: 'invalid' }, statements: 0, accesses: 0, globalStale: 0, cfg: null, expected: [] };
  }
  const { script, cfg } = loaded;
  const backends = (['native', 'xen', 'vmi', 'lguest'] as const).filter((b) => backendKind(b).unsupported({ pae: cfg.pae, memBytes: cfg.mem }) === null);
  const runs = backends.map((b) => runChecked(script, { ...cfg, backend: b }, seed, mutate, xenP2m));
  // An expected outcome (expected-outcomes.ts): only Xen stopped, for a
  // reason the script's own `cpa` caused; everything else ran clean and the
  // runs agree on all Xen observed before it stopped.
  let statements = 0;
  let accesses = 0;
  let globalStale = 0;
  const expected: string[] = [];
  const xi = backends.indexOf('xen');
  const xf = xi >= 0 ? runs[xi]!.result?.failure : null;
  if (xf && runs.every((r, i) => r.crash === null && r.mismatches.length === 0 && (i === xi || r.result!.failure === null))) {
    const why = cpaContractBreach(script, xf);
    const xo = runs[xi]!.result!.observations;
    const others = runs.filter((_, i) => i !== xi);
    if (why !== null && others.every((r) => r.result!.observations.slice(0, xo.length).every((o, k) => o === xo[k]))) {
      expected.push(`xen: ${why}: ${xf.message}`);
      runs.forEach((r) => {
        accesses += r.accesses;
        globalStale += r.globalStale;
        statements += r.result!.guest.statements;
      });
      const d = compareAll(others.map((r) => r.result!));
      const failures = d.slice(0, 8).map((x) => `divergence: ${x}`);
      return { failures, signature: d.length ? 'divergence' : null, details: d.length ? { divergence: 'divergence' } : {}, statements, accesses, globalStale, cfg, expected };
    }
  }
  // The other expected outcome: only lguest failed or disagreed, after an
  // in-place pte change its 2.6.23 guest does not tell the host.
  const li = backends.indexOf('lguest');
  if (li >= 0 && (runs[li]!.unhookedStale ?? 0) > 0) {
    const others = runs.filter((_, i) => i !== li);
    const clean = (r: BackendRun): boolean => r.crash === null && r.mismatches.length === 0 && r.result!.failure === null;
    const othersClean = others.every(clean) && compareAll(others.map((r) => r.result!)).length === 0;
    const lr = runs[li]!;
    // A crash or a TLB-vs-walk mismatch is never this (the stale shadow is what the processor walks).
    const lguestOff = lr.crash === null && lr.mismatches.length === 0 && (lr.result!.failure !== null || compareAll(runs.map((r) => r.result!)).length > 0);
    const why = lguestOff ? lguestUnhookedUpdate(lr.unhookedStale!, othersClean) : null;
    if (why !== null) {
      expected.push(why);
      runs.forEach((r) => {
        accesses += r.accesses;
        globalStale += r.globalStale;
        statements += r.result?.guest.statements ?? 0;
      });
      return { failures: [], signature: null, details: {}, statements, accesses, globalStale, cfg, expected };
    }
  }
  const failures: string[] = [];
  const sig: string[] = [];
  const details: Record<string, string> = {};
  runs.forEach((r, i) => {
    const b = backends[i]!;
    accesses += r.accesses;
    globalStale += r.globalStale;
    if (r.crash) {
      failures.push(`${b}: crash: ${r.crash.split('\n').slice(0, 4).join(' | ')}`);
      sig.push(`crash:${b}`);
      details[`crash:${b}`] = normalise(r.crash.split('\n')[0]!);
      return;
    }
    const res = r.result!;
    statements += res.guest.statements;
    if (res.failure) {
      failures.push(`${b}: run failed (${res.failure.kind}): ${res.failure.message}`);
      sig.push(`run:${b}:${res.failure.kind}`);
      details[`run:${b}:${res.failure.kind}`] = normalise(res.failure.message);
    }
    for (const m of r.mismatches.slice(0, 5)) {
      failures.push(
        `${b}: line ${m.line}: TLB-backed ${ACC[m.acc]} of ${hex(m.va)} gave ${describeResult(m.tlb)}, the reference walk ${describeResult(m.walk)}`,
      );
    }
    if (r.mismatches.length) {
      sig.push(`tlb:${b}`);
      details[`tlb:${b}`] = 'tlb';
    }
  });
  if (runs.every((r) => r.result !== null)) {
    const d = compareAll(runs.map((r) => r.result!));
    if (d.length) {
      failures.push(...d.slice(0, 8).map((x) => `divergence: ${x}`));
      sig.push('divergence');
      // The first divergence, numbers aside: a shrink must keep it (any
      // divergence would do otherwise, and shrinking drifts to one of its own making).
      details['divergence'] = normalise(d[0]!);
    }
  }
  const uniq = [...new Set(sig)].sort();
  return { failures, signature: uniq.length ? uniq.join(',') : null, details, statements, accesses, globalStale, cfg, expected };
}

export interface CheckOutcome {
  failures: string[];
  /** The kinds of failure, sorted, comma-separated ('tlb:native', 'run:xen:bug', 'divergence', ...), or null. */
  signature: string | null;
  /** Per kind: its message without positions and numbers (what a shrink must keep). */
  details: Record<string, string>;
  statements: number;
  accesses: number;
  globalStale: number;
  cfg: RunConfig | null;
  /** Expected outcomes (expected-outcomes.ts): a run that stopped for a reason the script caused, as the real kernel and hypervisor would. Not failures. */
  expected: string[];
}

/**
 * A failure message without FILE:LINE:COL, numbers and any further items of
 * a list ('a; b; c' keeps 'a'), so a shrunk script's failure compares equal.
 */
function normalise(msg: string): string {
  return msg
    .split('; ')[0]!
    .replace(/^\S+:\d+:\d+: /, '').replace(/line \d+/g, 'line N').replace(/\b(0x)?[0-9a-f]*\d[0-9a-f]*\b/gi, 'N');
}

/** Generate and check one seed. */
export function fuzzSeed(seed: number, opts: DiffOptions = {}): SeedOutcome {
  const w = generateWorkload(seed, opts.gen);
  const r = checkText(`seed-${seed}.pvw`, w.text, seed, opts.mutate);
  return {
    seed,
    config: w.config,
    text: w.text,
    statements: r.statements,
    accesses: r.accesses,
    globalStale: r.globalStale,
    failures: r.failures,
    signature: r.signature,
    expected: r.expected,
  };
}

// ---- shrinking ----

type Item = { line: string } | { head: string; body: Item[] };

function toItems(lines: string[]): { header: string[]; items: Item[] } {
  const header: string[] = [];
  let i = 0;
  while (i < lines.length && (/^\s*(#|$)/.test(lines[i]!) || /^\s*machine\b/.test(lines[i]!))) header.push(lines[i++]!);
  const stack: Item[][] = [[]];
  const heads: { head: string; body: Item[] }[] = [];
  for (; i < lines.length; i++) {
    const t = lines[i]!.trim();
    if (t === '' || t.startsWith('#')) continue;
    if (t.endsWith('{')) {
      const b = { head: t, body: [] as Item[] };
      stack[stack.length - 1]!.push(b);
      stack.push(b.body);
      heads.push(b);
    } else if (t === '}') {
      stack.pop();
      heads.pop();
    } else stack[stack.length - 1]!.push({ line: t });
  }
  return { header, items: stack[0]! };
}

function render(header: string[], items: Item[]): string {
  const out = [...header];
  const walk = (xs: Item[], ind: string): void => {
    for (const x of xs) {
      if ('line' in x) out.push(ind + x.line);
      else {
        out.push(ind + x.head);
        walk(x.body, ind + '  ');
        out.push(ind + '}');
      }
    }
  };
  walk(items, '');
  return out.join('\n') + '\n';
}

function countItems(xs: Item[]): number {
  let n = 0;
  for (const x of xs) n += 'line' in x ? 1 : 1 + countItems(x.body);
  return n;
}

/**
 * The failure a shrink keeps: the most specific part of a signature. A TLB
 * mismatch or a crash first, then a broken invariant or kernel BUG, then any
 * other failed run, then a divergence (which the others usually cause).
 */
export function primaryFailure(signature: string): string {
  const parts = signature.split(',');
  const rank = (p: string): number =>
    p.startsWith('tlb:') ? 0 : p.startsWith('crash:') ? 1 : /:(invariant|bug)$/.test(p) ? 2 : p.startsWith('run:') ? 3 : p === 'divergence' ? 4 : 5;
  return [...parts].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1))[0]!;
}

/**
 * Shrink a failing workload text: remove chunks of statements (halves, then
 * quarters, ... single statements) at every nesting level, unwrap blocks and
 * lower repeat counts, as long as the result is a valid script that still
 * fails with the signature's primary failure (primaryFailure) and the same
 * message (numbers and positions aside): a shrink that drifted to another
 * kernel BUG would report the wrong bug. `budget` bounds the number of runs.
 */
export function shrink(
  text: string,
  seed: number,
  signature: string,
  mutate?: Mutation,
  budget = 400,
): { text: string; runs: number; failures: string[] } {
  const { header, items } = toItems(text.split('\n'));
  const primary = primaryFailure(signature);
  const want = checkText(`seed-${seed}.pvw`, text, seed, mutate).details[primary];
  let tries = 0;
  let lastFailures: string[] = [];
  const fails = (xs: Item[]): boolean => {
    if (tries >= budget) return false;
    tries++;
    const r = checkText(`seed-${seed}.pvw`, render(header, xs), seed, mutate);
    if (r.signature !== null && r.signature.split(',').includes(primary) && r.details[primary] === want) {
      lastFailures = r.failures;
      return true;
    }
    return false;
  };
  let root = items;
  let changed = true;
  while (changed && tries < budget) {
    changed = false;
    // Chunk removal in one list, addressed by a path of block indices.
    const lists: Item[][] = [];
    const collect = (xs: Item[]): void => {
      lists.push(xs);
      for (const x of xs) if (!('line' in x)) collect(x.body);
    };
    collect(root);
    for (const list of lists) {
      for (let chunk = Math.max(1, list.length >> 1); chunk >= 1; chunk >>= 1) {
        for (let start = 0; start < list.length; ) {
          const removed = list.splice(start, chunk);
          if (removed.length && fails(root)) {
            changed = true;
          } else {
            list.splice(start, 0, ...removed);
            start += chunk;
          }
        }
      }
    }
    // Blocks: unwrap, then repeat N -> repeat 1.
    for (const list of lists) {
      for (let i = 0; i < list.length; i++) {
        const x = list[i]!;
        if ('line' in x) continue;
        list.splice(i, 1, ...x.body);
        if (fails(root)) {
          changed = true;
          continue;
        }
        list.splice(i, x.body.length, x);
        const m = /^repeat\s+(\S+)\s*\{$/.exec(x.head);
        if (m && m[1] !== '1') {
          const head = x.head;
          x.head = 'repeat 1 {';
          if (fails(root)) changed = true;
          else x.head = head;
        }
      }
    }
    root = [...root];
  }
  return { text: render(header, root), runs: tries, failures: lastFailures };
}

export function statementCount(text: string): number {
  return countItems(toItems(text.split('\n')).items);
}

/** Save a shrunk failing workload with a header naming seed, config and failure. */
export function saveRegression(path: string, outcome: Pick<SeedOutcome, 'seed' | 'config' | 'signature' | 'text'>, shrunk: string, failures: string[]): void {
  const c = outcome.config;
  const head = [
    `# fuzz-found: differential workload fuzzer, seed ${outcome.seed}`,
    `# config: pae=${c.pae ? 'on' : 'off'} split=${c.split} mem=${c.mem >> 20}M cpu=${c.cpu} kernel=${c.kernel}; Xen p2m shuffled by the seed (replay: npm run fuzz -- --seed ${outcome.seed})`,
    `# failure (${outcome.signature}):`,
    ...failures.slice(0, 6).map((f) => `#   ${f.replace(/\n/g, ' ').slice(0, 300)}`),
    `# shrunk from ${statementCount(outcome.text)} to ${statementCount(shrunk)} statements`,
  ];
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, head.join('\n') + '\n' + shrunk);
}
