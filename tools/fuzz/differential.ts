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
import type { Mmu, MmuOptions } from '../../emulator/mmu.js';
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
import { Interpreter, type RunOptions, type RunResult } from '../workload/interpreter.js';
import type { MachineSnapshot } from '../workload/machine-snapshot.js';
import { partial, SnapshotError } from '../../emulator/snapshot.js';
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
  for (let level = 0; level < 2; level++) {
    const t = level === 0 ? l1 : mmu.tlbs.l2;
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

/**
 * What a checked run's interpreter options reach: the machine running (a
 * machine restored from a checkpoint takes the place of the one
 * snapshotted, whose options it shares), its incremental guest checker and
 * the line of the statement running.
 */
interface RunSlot {
  it: Interpreter | null;
  checker: IncrementalInvariantChecker;
  line: number;
}

function checkedRunOptions(slot: RunSlot, seed: number, xenP2m: P2mLayout, guestCheck: GuestCheck): RunOptions {
  return {
    seed,
    checkEachStatement: true,
    xenP2m,
    // A module function, so that a machine holding it (its MachineConfig) can be snapshotted.
    newMmu: partial(newCheckingMmu, guestCheck === 'incremental'),
    statementCheck: () => incrementalCheck(slot.it!, slot.checker),
    onStatement: (s) => {
      slot.line = s.line;
    },
  };
}

/** The fuzzer's processor: a checking one, on memory that remembers the frames written (for the incremental guest check) when `dirty`. */
function newCheckingMmu(dirty: boolean, o: MmuOptions): Mmu {
  return new CheckingMmu(dirty && o.mem === undefined ? { ...o, mem: new DirtyFrameMem() } : o);
}

function bootFailure(e: unknown): BackendRun {
  const msg = e instanceof HypervisorRefusal || e instanceof KernelBug ? `boot: ${e.message}` : `boot crashed: ${(e as Error).stack ?? e}`;
  return { result: null, accesses: 0, globalStale: 0, mismatches: [], crash: msg };
}

/** The checks armed on a booted (or restored) machine; `suspend()` takes them off for a snapshot and returns what puts them back. */
interface Armed {
  run: BackendRun;
  detach: () => void;
  suspend: () => () => void;
}

/**
 * Arm the checks on `slot.it`: the test doubles (mutate), then the TLB-vs-walk
 * checker. The `ops` double's own-property changes on the ops object are
 * recorded, so a snapshot can be taken without them (a restored machine gets
 * the double anew, bound to its own ops).
 */
function arm(slot: RunSlot, cfg: RunConfig, mutate?: Mutation): Armed {
  const it = slot.it!;
  const mmu = it.mmu as CheckingMmu;
  const defect = mutate?.translate;
  const setDefect = (): void => {
    if (defect) mmu.defect = (va, acc, r) => defect(va, acc, r, cfg.backend);
  };
  setDefect();
  const changed: { key: string; before: PropertyDescriptor | undefined; after: PropertyDescriptor | undefined }[] = [];
  if (mutate?.ops) {
    const o = it.ops as unknown as Record<string, unknown>;
    const before = new Map(Object.getOwnPropertyNames(o).map((k) => [k, Object.getOwnPropertyDescriptor(o, k)]));
    mutate.ops(it.ops, cfg.backend);
    for (const k of new Set([...before.keys(), ...Object.getOwnPropertyNames(o)])) {
      const b = before.get(k);
      const a = Object.getOwnPropertyDescriptor(o, k);
      if (b?.value !== a?.value || b?.get !== a?.get || b?.set !== a?.set) changed.push({ key: k, before: b, after: a });
    }
  }
  const setProps = (which: 'before' | 'after'): void => {
    const o = it.ops as unknown as Record<string, unknown>;
    for (const c of changed) {
      const d = c[which];
      if (d === undefined) delete o[c.key];
      else Object.defineProperty(o, c.key, d);
    }
  };
  const kernelBase = pageOffset(cfg.split);
  const globalOk = (va: number, acc: number, pa: number): boolean => {
    if ((acc & 1) !== 0 || va < kernelBase || !tlbEntryGlobal(it.mmu, va, acc)) return false;
    // The reference: what init_mm's tables (swapper_pg_dir) map the address
    // to, by a probe walk (no TLB, no A/D updates, no CR3 write).
    return referencePa(it, va, acc) === pa;
  };
  const { run, detach } = attachTlbChecker(mmu, cfg.backend, () => slot.line, globalOk);
  return {
    run,
    detach,
    suspend: () => {
      const observer = mmu.observer;
      mmu.observer = null;
      mmu.defect = null;
      setProps('before');
      return () => {
        setProps('after');
        setDefect();
        mmu.observer = observer;
      };
    },
  };
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
  const slot: RunSlot = { it: null, checker: new IncrementalInvariantChecker(), line: 0 };
  try {
    slot.it = new Interpreter(script, cfg, checkedRunOptions(slot, seed, xenP2m, guestCheck));
  } catch (e) {
    return bootFailure(e);
  }
  const { run, detach } = arm(slot, cfg, mutate);
  try {
    run.result = slot.it.run();
  } catch (e) {
    run.crash = `line ${slot.line}: ${(e as Error).stack ?? e}`;
  } finally {
    detach();
  }
  noteUnhooked(run, slot.it);
  return run;
}

/** lguest: how many in-place pte updates its 2.6.23 guest did not tell the host, in an unloaded mm with a cached shadow (expected-outcomes.ts). */
function noteUnhooked(run: BackendRun, it: Interpreter): void {
  if (isKind(it.handle, 'lguest')) run.unhookedStale = it.handle.ext.backend.unhookedStaleUpdates;
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
  // Saved in the module's scratch array (this runs at many accesses: no allocation); not re-entered.
  const saved = SAVED_PDPTES;
  const cr3 = cpu.cr3;
  for (let i = 0; i < 4; i++) {
    saved[i] = cpu.pdpteLo[i]!;
    saved[4 + i] = cpu.pdpteHi[i]!;
  }
  try {
    cpu.cr3 = ma;
    if (cpu.pae) {
      for (let i = 0; i < 4; i++) {
        // The two halves of the 64-bit entry (read64's low and high words).
        cpu.pdpteLo[i] = mmu.mem.read32(ma + 8 * i) | 0;
        cpu.pdpteHi[i] = mmu.mem.read32(ma + 8 * i + 4) | 0;
      }
    }
    return mmu.probePa(va, acc);
  } finally {
    cpu.cr3 = cr3;
    for (let i = 0; i < 4; i++) {
      cpu.pdpteLo[i] = saved[i]!;
      cpu.pdpteHi[i] = saved[4 + i]!;
    }
  }
}

/** referencePa's saved PDPTE registers: 4 low words, then 4 high words. */
const SAVED_PDPTES = new Int32Array(8);

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
    return invalidOutcome(e);
  }
  const { script, cfg } = loaded;
  const backends = backendsFor(cfg);
  const runs = backends.map((b) => runChecked(script, { ...cfg, backend: b }, seed, mutate, xenP2m));
  return outcomeOf(script, cfg, backends, runs);
}

/** The outcome of a workload that does not load. */
function invalidOutcome(e: unknown): CheckOutcome {
  return { failures: [`invalid workload: ${(e as Error).message}`], signature: 'invalid', details: { invalid: 'invalid' }, statements: 0, accesses: 0, globalStale: 0, cfg: null, expected: [] };
}

/** Every backend the configuration allows (native, Xen, VMI; lguest in 2-level paging). */
function backendsFor(cfg: RunConfig): Backend[] {
  return (['native', 'xen', 'vmi', 'lguest'] as const).filter((b) => backendKind(b).unsupported({ pae: cfg.pae, memBytes: cfg.mem }) === null);
}

/** The outcome of the checked runs of `script` on `backends`: failures, their signature and details, expected outcomes, totals. */
function outcomeOf(script: Script, cfg: RunConfig, backends: readonly Backend[], runs: readonly BackendRun[]): CheckOutcome {
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

function renderItem(x: Item, ind: string, out: string[]): void {
  if ('line' in x) out.push(ind + x.line);
  else {
    out.push(ind + x.head);
    for (const y of x.body) renderItem(y, ind + '  ', out);
    out.push(ind + '}');
  }
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

/** One checkpoint of a backend's run: the machine at a top-level boundary, and what the checks had counted by then. */
interface RunCheckpoint {
  snapshot: MachineSnapshot;
  accesses: number;
  globalStale: number;
  mismatches: TlbMismatch[];
  line: number;
}

/** At most this many checkpoints per backend in one shrink (the boot one is never dropped). */
export const MAX_SHRINK_CHECKPOINTS = 6;
/**
 * A checkpoint after boot is taken at least this many top-level statements
 * past the one a run starts from: a snapshot and its restores copy the
 * machine's bookkeeping (milliseconds), worth it only for a longer prefix.
 */
export const MIN_CHECKPOINT_GAP = 8;

/**
 * checkText for the scripts of one shrink, starting each backend's run from
 * a checkpoint instead of from boot: the scripts share their header (machine
 * line: the same boot) and the seed, and a candidate resumes from the
 * checkpoint after the longest top-level prefix it shares, as written, with
 * a script already run (Interpreter.resumeWith); the boot snapshot is the
 * prefix of length 0. A run takes a checkpoint where the caller says the
 * next candidates will depart from (`keep`), when that is far enough
 * (MIN_CHECKPOINT_GAP). The outcome is the from-boot
 * one (a test compares the two shrinks): a snapshot copies the whole
 * machine, the run's check counters are kept with it, the guest checker
 * starts afresh (every frame counts as written: the same findings), and the
 * test doubles are taken off for the snapshot and put on the restored
 * machine. One difference: a crash's message keeps the first lines of its
 * stack, whose outer frames name the path the run took (from boot or from a
 * checkpoint); shrinking compares only the first line. A backend whose
 * machine cannot be snapshotted (SnapshotError) runs from boot.
 */
export class CheckpointedChecker {
  private readonly cps = new Map<Backend, Map<string, RunCheckpoint>>();
  private readonly noSnapshots = new Set<Backend>();
  /** Per backend, the slot its machines' options reach (a restored machine shares the options of the one snapshotted): runs of a backend take turns in it. */
  private readonly slots = new Map<Backend, RunSlot>();
  /** Runs started from a checkpoint, and from boot (tests). */
  resumed = 0;
  booted = 0;

  constructor(
    private readonly file: string,
    private readonly header: string[],
    private readonly seed: number,
    private readonly mutate?: Mutation,
    private readonly xenP2m: P2mLayout = 'shuffled',
  ) {}

  /** checkText(file, render(header, items), seed, mutate, xenP2m); `keep`: take a checkpoint after that many top-level statements. */
  check(items: Item[], keep: number): CheckOutcome {
    const text = render(this.header, items);
    let loaded: { script: Script; cfg: RunConfig };
    try {
      loaded = loadText(this.file, text);
    } catch (e) {
      return invalidOutcome(e);
    }
    const { script, cfg } = loaded;
    if (script.body.length !== items.length) return checkText(this.file, text, this.seed, this.mutate, this.xenP2m);
    // keys[k]: the first k top-level statements as written (the header is the same for every script).
    const keys: string[] = [''];
    for (const x of items) {
      const out: string[] = [];
      renderItem(x, '', out);
      keys.push(keys[keys.length - 1]! + out.join('\n') + '\n');
    }
    const backends = backendsFor(cfg);
    const runs = backends.map((b) => this.runOne(script, { ...cfg, backend: b }, keys, Math.min(Math.max(keep, 0), items.length)));
    return outcomeOf(script, cfg, backends, runs);
  }

  private runOne(script: Script, cfg: RunConfig, keys: string[], keep: number): BackendRun {
    const b = cfg.backend;
    let cps = this.cps.get(b);
    if (cps === undefined) this.cps.set(b, (cps = new Map()));
    let slot = this.slots.get(b);
    if (slot === undefined) this.slots.set(b, (slot = { it: null, checker: new IncrementalInvariantChecker(), line: 0 }));
    slot.it = null;
    slot.checker = new IncrementalInvariantChecker();
    slot.line = 0;
    const snapshots = !this.noSnapshots.has(b);
    let at = -1;
    let from: RunCheckpoint | undefined;
    if (snapshots) {
      for (let k = keys.length - 1; k >= 0 && from === undefined; k--) {
        from = cps.get(keys[k]!);
        if (from !== undefined) at = k;
      }
    }
    if (from !== undefined) {
      this.resumed++;
      const it = from.snapshot.restore();
      it.resumeWith(script, at);
      slot.it = it;
      slot.line = from.line;
    } else {
      this.booted++;
      try {
        slot.it = new Interpreter(script, cfg, checkedRunOptions(slot, this.seed, this.xenP2m, 'incremental'));
      } catch (e) {
        return bootFailure(e);
      }
      at = 0;
      if (snapshots) this.take(cps, keys[0]!, slot, null);
    }
    const armed = arm(slot, cfg, this.mutate);
    const { run, detach } = armed;
    if (from !== undefined) {
      run.accesses = from.accesses;
      run.globalStale = from.globalStale;
      run.mismatches.push(...from.mismatches);
    }
    const it = slot.it!;
    try {
      if (snapshots && keep >= at + MIN_CHECKPOINT_GAP && !cps.has(keys[keep]!)) {
        // Run to the boundary after `keep` top-level statements and take a checkpoint there.
        for (;;) {
          const d = it.topLevelDone();
          if (d === keep) {
            this.take(cps, keys[keep]!, slot, armed);
            break;
          }
          if ((d > keep) || !it.advance()) break;
        }
      }
      run.result = it.run();
    } catch (e) {
      run.crash = `line ${slot.line}: ${(e as Error).stack ?? e}`;
    } finally {
      detach();
    }
    noteUnhooked(run, it);
    return run;
  }

  /** A checkpoint of `slot.it` under `key` (the checks taken off for the snapshot); a machine that cannot be snapshotted turns checkpoints off for its backend. */
  private take(cps: Map<string, RunCheckpoint>, key: string, slot: RunSlot, armed: Armed | null): void {
    const b = slot.it!.cfg.backend;
    const resume = armed?.suspend();
    try {
      const snapshot = slot.it!.snapshot();
      const r = armed?.run;
      cps.set(key, { snapshot, accesses: r?.accesses ?? 0, globalStale: r?.globalStale ?? 0, mismatches: r ? [...r.mismatches] : [], line: slot.line });
      if (cps.size > MAX_SHRINK_CHECKPOINTS) {
        for (const k of cps.keys()) {
          if (k === '') continue;
          cps.delete(k);
          break;
        }
      }
    } catch (e) {
      if (!(e instanceof SnapshotError)) throw e;
      this.noSnapshots.add(b);
      cps.clear();
    } finally {
      resume?.();
    }
  }
}

/**
 * Shrink a failing workload text: remove chunks of statements (halves, then
 * quarters, ... single statements) at every nesting level, unwrap blocks and
 * lower repeat counts, as long as the result is a valid script that still
 * fails with the signature's primary failure (primaryFailure) and the same
 * message (numbers and positions aside): a shrink that drifted to another
 * kernel BUG would report the wrong bug. `budget` bounds the number of runs.
 * `resumed`: backend runs started from a checkpoint (0 with `checkpoints` false).
 */
export function shrink(
  text: string,
  seed: number,
  signature: string,
  mutate?: Mutation,
  budget = 400,
  /** Start the candidates' runs from checkpoints (CheckpointedChecker; the same result), or each from boot (false: the reference path). */
  checkpoints = true,
): { text: string; runs: number; failures: string[]; resumed: number } {
  const { header, items } = toItems(text.split('\n'));
  const primary = primaryFailure(signature);
  const file = `seed-${seed}.pvw`;
  const cc = checkpoints ? new CheckpointedChecker(file, header, seed, mutate) : null;
  const check = (xs: Item[], keep: number): CheckOutcome => (cc !== null ? cc.check(xs, keep) : checkText(file, render(header, xs), seed, mutate));
  const want = check(items, 0).details[primary];
  let tries = 0;
  let lastFailures: string[] = [];
  let root = items;
  /** Where a change to `list` departs from the current script: its index at the top level, or that of the top-level block holding it. */
  const topOf = new Map<Item[], Item>();
  const departs = (list: Item[], i: number): number => {
    if (list === root) return i;
    const top = topOf.get(list);
    const j = top === undefined ? -1 : root.indexOf(top);
    return j < 0 ? 0 : j;
  };
  const fails = (xs: Item[], keep: number): boolean => {
    if (tries >= budget) return false;
    tries++;
    const r = check(xs, keep);
    if (r.signature !== null && r.signature.split(',').includes(primary) && r.details[primary] === want) {
      lastFailures = r.failures;
      return true;
    }
    return false;
  };
  let changed = true;
  while (changed && tries < budget) {
    changed = false;
    // Chunk removal in one list, addressed by a path of block indices.
    const lists: Item[][] = [];
    topOf.clear();
    const collect = (xs: Item[], top: Item | undefined): void => {
      lists.push(xs);
      if (top !== undefined) topOf.set(xs, top);
      for (const x of xs) if (!('line' in x)) collect(x.body, top ?? x);
    };
    collect(root, undefined);
    for (const list of lists) {
      for (let chunk = Math.max(1, list.length >> 1); chunk >= 1; chunk >>= 1) {
        for (let start = 0; start < list.length; ) {
          const keep = departs(list, start);
          const removed = list.splice(start, chunk);
          if (removed.length && fails(root, keep)) {
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
        const keep = departs(list, i);
        list.splice(i, 1, ...x.body);
        if (fails(root, keep)) {
          changed = true;
          continue;
        }
        list.splice(i, x.body.length, x);
        const m = /^repeat\s+(\S+)\s*\{$/.exec(x.head);
        if (m && m[1] !== '1') {
          const head = x.head;
          x.head = 'repeat 1 {';
          if (fails(root, departs(list, i))) changed = true;
          else x.head = head;
        }
      }
    }
    root = [...root];
  }
  return { text: render(header, root), runs: tries, failures: lastFailures, resumed: cc?.resumed ?? 0 };
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
