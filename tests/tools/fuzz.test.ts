/**
 * The fuzzers' fixed-seed slice: generated workloads are valid, a slice of
 * workload seeds and MMU seeds checks clean with non-zero counts, the
 * saved regressions still pass, and deliberately broken machines (a wrong
 * translation, a backend that loses a write-protect, an MMU with a wrong
 * pa) are caught, shrunk to a small workload and saved.
 */
import { lostWrprotect, wrongPa } from './fuzz-mutations.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Mmu } from '../../emulator/mmu.js';
import type { ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { checkScript } from '../../tools/workload/check.js';
import { resolveConfig } from '../../tools/workload/config.js';
import { parseScript } from '../../tools/workload/parser.js';
import { generateWorkload } from '../../tools/fuzz/workload-gen.js';
import { checkText, fuzzSeed, loadText, primaryFailure, statementCount, type Mutation } from '../../tools/fuzz/differential.js';
import { emptyReport, fuzzMmuSeed, fuzzWorkloadSeed } from '../../tools/fuzz/campaign.js';
import { cpaContractBreach, lguestUnhookedUpdate } from '../../tools/fuzz/expected-outcomes.js';
import type { RunFailure } from '../../tools/workload/interpreter.js';
import { parseVectors } from '../../tools/vectors/format.js';
import { compareResults, runVectors } from '../../tools/vectors/run-vectors.js';

const gen = suite('fuzz: workload generator');

gen('200 seeds: every generated script parses and passes checkScript under its own machine line', () => {
  const ops = new Set<string>();
  for (let seed = 0; seed < 200; seed++) {
    const w = generateWorkload(seed);
    const script = parseScript(`seed-${seed}.pvw`, w.text);
    const cfg = resolveConfig(`seed-${seed}.pvw`, script.machine, {});
    checkScript(script, cfg);
    assert.equal(cfg, w.config, `seed ${seed}: the machine line is the generated configuration`);
    for (const l of w.text.split('\n')) ops.add(l.trim().split(' ')[0]!);
  }
  for (const op of ['process', 'fork', 'exec', 'exit', 'switch', 'mmap', 'munmap', 'touch', 'write', 'read', 'vmalloc', 'vfree', 'kwrite', 'kread', 'cpa', 'repeat', 'measure']) {
    assert.ok(ops.has(op), `the generator never wrote '${op}'`);
  }
});

gen('every forced configuration gives valid scripts (PAE on/off, each split)', () => {
  for (const pae of [true, false]) {
    for (const split of ['3G', '2G', '1G'] as const) {
      for (let seed = 0; seed < 10; seed++) {
        const w = generateWorkload(seed, { config: { pae, split } });
        const { cfg } = loadText('x.pvw', w.text);
        assert.is(cfg.pae, pae);
        assert.is(cfg.split, split);
      }
    }
  }
});

gen('deterministic: the same seed gives the same text, other seeds other texts', () => {
  assert.is(generateWorkload(42).text, generateWorkload(42).text);
  assert.is.not(generateWorkload(42).text, generateWorkload(43).text);
});

gen.run();

const slice = suite('fuzz: fixed-seed slice');

slice('20 workload seeds: native and Xen agree, invariants hold, TLB == reference walk at every access', () => {
  const rep = emptyReport();
  for (let seed = 1; seed <= 20; seed++) fuzzWorkloadSeed(rep, seed, { saveRoot: null, shrinkBudget: 50, gen: { statements: 40 } });
  assert.equal(rep.workload.failures.map((f) => `${f.seed}: ${f.failures[0]}`), []);
  assert.is(rep.workload.seeds, 20);
  assert.ok(rep.workload.statements > 800, `${rep.workload.statements} statements`);
  assert.ok(rep.workload.accesses > 800, `${rep.workload.accesses} accesses`);
});

slice('200 MMU seeds agree with ref-walker.mjs', () => {
  const rep = emptyReport();
  for (let seed = 1; seed <= 200; seed++) fuzzMmuSeed(rep, seed, { saveRoot: null });
  assert.equal(rep.mmu.failures.map((f) => `${f.seed}: ${f.diffs[0]}`), []);
  assert.is(rep.mmu.seeds, 200);
  assert.ok(rep.mmu.portable > 150, `only ${rep.mmu.portable} portable cases`);
  assert.ok(rep.mmu.accesses > 500, `${rep.mmu.accesses} accesses`);
});

slice('saved regressions (tests/regression/fuzz-found/*.pvw) pass on both backends', () => {
  const dir = join(process.cwd(), 'tests', 'regression', 'fuzz-found');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.pvw')) : [];
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8');
    const seed = Number(/seed (\d+)/.exec(text)?.[1] ?? 1);
    const r = checkText(f, text, seed);
    assert.equal(r.failures, [], f);
  }
  const vec = join(process.cwd(), 'tests', 'vectors', 'fuzz-found.json');
  if (existsSync(vec)) {
    const cases = parseVectors(vec, JSON.parse(readFileSync(vec, 'utf8')));
    const exp = JSON.parse(readFileSync(vec.replace(/\.json$/, '.expected.json'), 'utf8'));
    assert.equal(compareResults(runVectors(vec, cases, 'core2'), exp), []);
  }
});

slice('generator: a repeat body whose mmap/munmap overlaps an older mapping is not generated (seeds 101508 and 102055 failed on every backend alike)', () => {
  for (const seed of [101508, 102055]) {
    const o = fuzzSeed(seed);
    assert.equal(o.failures, [], `seed ${seed}`);
    assert.ok(o.statements > 100, `seed ${seed}: ${o.statements} statements`);
  }
});

slice.run();

const broken = suite('fuzz: a broken machine is caught and shrunk');



/** The first seed (1..seeds) whose primary failure matches `want`, then shrunk and saved under a temporary root. */
function firstCaught(m: Mutation, want: RegExp, seeds: number): { seed: number; rep: ReturnType<typeof emptyReport>; root: string } {
  for (let seed = 1; seed <= seeds; seed++) {
    const o = fuzzSeed(seed, { mutate: m, gen: { statements: 20 } });
    if (!o.signature || !want.test(primaryFailure(o.signature))) continue;
    const root = mkdtempSync(join(tmpdir(), 'pvmmu-fuzz-'));
    const rep = emptyReport();
    fuzzWorkloadSeed(rep, seed, { mutate: m, saveRoot: root, shrinkBudget: 150, gen: { statements: 20 } });
    return { seed, rep, root };
  }
  assert.unreachable(`the defect was not caught in ${seeds} seeds`);
  throw new Error('unreachable');
}

broken('a wrong translation is caught by the TLB-vs-walk check, shrunk and saved', () => {
  const { seed, rep, root } = firstCaught(wrongPa, /^tlb:/, 5);
  try {
    const f = rep.workload.failures[0]!;
    assert.ok(f.shrunkStatements <= 6, `shrunk to ${f.shrunkStatements} statements:\n${f.shrunk}`);
    assert.ok(f.shrunkStatements < f.statements);
    assert.match(f.failures.join('\n'), /TLB-backed .* gave pa 0x[0-9a-f]+, the reference walk pa/);
    const saved = readFileSync(f.saved!, 'utf8');
    assert.match(saved, new RegExp(`^# fuzz-found: differential workload fuzzer, seed ${seed}`));
    assert.match(saved, /# failure \(.*tlb:/);
    // The saved file is a valid workload: it fails with the defect and passes without it.
    assert.ok(checkText('saved.pvw', saved, seed, wrongPa).signature?.includes('tlb:'));
    assert.equal(checkText('saved.pvw', saved, seed).failures, []);
    assert.is(statementCount(saved), f.shrunkStatements);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

broken('a backend whose pte_update undoes the fork write-protect is caught (invariant after the statement, divergence) and shrunk', () => {
  const { rep, root } = firstCaught(lostWrprotect, /^(run:native:(invariant|expect)|divergence)$/, 10);
  try {
    const f = rep.workload.failures[0]!;
    assert.ok(f.shrunkStatements <= 10, `shrunk to ${f.shrunkStatements} statements:\n${f.shrunk}`);
    assert.match(f.shrunk, /\bfork\b/, 'the shrunk workload still forks');
    assert.equal(checkText('saved.pvw', readFileSync(f.saved!, 'utf8'), f.seed).failures, []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

broken('an MMU with a wrong pa on writes is caught by the MMU fuzzer and saved as a valid vector', () => {
  const root = mkdtempSync(join(tmpdir(), 'pvmmu-fuzzv-'));
  try {
    const rep = emptyReport();
    const bad = (mmu: Mmu): void => {
      const inner = mmu.translate;
      (mmu as { translate: Mmu['translate'] }).translate = function (this: Mmu, va: number, acc: number): number {
        const r = inner.call(this, va, acc);
        return r >= 0 && acc >> 1 === 1 ? r + 8 : r;
      };
    };
    for (let seed = 1; seed <= 100; seed++) fuzzMmuSeed(rep, seed, { saveRoot: root, mmuMutate: bad });
    assert.ok(rep.mmu.failures.length >= 5, `${rep.mmu.failures.length} failures`);
    const vec = join(root, 'tests', 'vectors', 'fuzz-found.json');
    const cases = parseVectors(vec, JSON.parse(readFileSync(vec, 'utf8')));
    assert.is(cases.length, rep.mmu.failures.length);
    // The saved vectors hold the reference's answers: the real emulator passes them.
    const exp = JSON.parse(readFileSync(join(root, 'tests', 'vectors', 'fuzz-found.expected.json'), 'utf8'));
    assert.equal(compareResults(runVectors(vec, cases, 'core2'), exp), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

broken.run();

const contract = suite('fuzz: expected outcomes (a cpa that breaks change_page_attr\'s caller contract)');

contract('seeds 7004 and 7061 (Xen only) are expected outcomes, not failures; native, VMI and lguest complete them', () => {
  const dir = join(process.cwd(), 'tests', 'regression', 'fuzz-found');
  for (const [f, re] of [
    ['seed-7004.pvw', /line 14 made pfn 0x7c01 read-only, then the kernel stored to it/],
    ['seed-7061.pvw', /line 42 asked a writable direct-map pte for a page Xen has typed as a page table.*Bad type \(saw l2 != exp writable\)/],
  ] as const) {
    const text = readFileSync(join(dir, f), 'utf8');
    const r = checkText(f, text, Number(/seed (\d+)/.exec(text)![1]));
    assert.equal(r.failures, [], f);
    assert.is(r.signature, null, f);
    assert.is(r.expected.length, 1, f);
    assert.match(r.expected[0]!, re);
  }
});

contract('only the two contract breaches are classified: any other Xen stop stays a failure', () => {
  const script = parseScript('t.pvw', 'machine pae=on\nprocess p0\ncpa 0x2000000 2 ro\nfork p0 p1\ncpa 0x3000000 1 rw\ncpa 0x3001000 1 ro\ncpa 0x2000000 1 rw\nfork p0 p2\n');
  const bug = (pfn: number, line: number): RunFailure => ({
    kind: 'bug',
    line,
    col: 1,
    message: `t.pvw:${line}:1: fork: kernel BUG in do_page_fault: unable to handle kernel paging request at virtual address x (a store through the read-only direct-map pte of pfn 0x${pfn.toString(16)}; Xen bounced the #PF, error code 0x3)`,
  });
  assert.ok(cpaContractBreach(script, bug(0x2001, 4)), 'a pfn the cpa on line 3 made read-only');
  assert.is(cpaContractBreach(script, bug(0x2002, 4)), null, 'a pfn no cpa made read-only');
  assert.is(cpaContractBreach(script, bug(0x2001, 3)), null, 'a store before the cpa ran');
  assert.is(cpaContractBreach(script, { ...bug(0x2001, 4), message: 'kernel BUG in pgd_dtor' }), null, 'another BUG');
  assert.is(cpaContractBreach(script, bug(0x2000, 8)), null, 'a pfn restored (line 7) before the store');
  assert.ok(cpaContractBreach(script, bug(0x2001, 8)), 'its neighbour, still read-only');
  const refusal = (line: number, log: string[]): RunFailure => ({
    kind: 'refusal',
    line,
    col: 1,
    message: `t.pvw:${line}:1: cpa: hypervisor refused`,
    refusal: { op: 'ptwr_emulated_update', reason: log[0]!, mfn: null, log, statement: 'cpa', line, col: 1 },
  });
  const badType = ['Error getting mfn 41 (pfn 3000) from L1 entry 0 for dom1', 'Bad type (saw l2 != exp writable) for mfn 41 (pfn 3000)', 'ptwr_emulate: could not get_page_from_l1e()'];
  assert.ok(cpaContractBreach(script, refusal(5, badType)), 'cpa rw onto a page table');
  assert.is(cpaContractBreach(script, refusal(5, badType.map((l) => l.replace('pfn 3000', 'pfn 3001')))), null, 'a page table the cpa does not change');
  assert.is(cpaContractBreach(script, refusal(6, badType)), null, 'a cpa ro never asks a writable pte');
  assert.is(cpaContractBreach(script, refusal(4, badType)), null, 'not a cpa statement');
  assert.is(cpaContractBreach(script, refusal(5, ['Bad L1 flags 800000'])), null, 'another refusal');
  assert.is(cpaContractBreach(script, { ...bug(0x2001, 4), kind: 'expect' }), null, 'another failure kind');
});

contract('lguest 2.6.23 (pte_update unhooked): the four campaign-3 seeds are expected outcomes; every other backend completes them and agrees', () => {
  const dir = join(process.cwd(), 'tests', 'regression', 'fuzz-expected');
  const files = readdirSync(dir).filter((f) => f.endsWith('.pvw'));
  assert.equal(files.sort(), ['seed-50091.pvw', 'seed-70018.pvw', 'seed-70048.pvw', 'seed-9006.pvw']);
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8');
    const r = checkText(f, text, Number(/seed (\d+)/.exec(text)![1]));
    assert.equal(r.failures, [], f);
    assert.is(r.signature, null, f);
    assert.is(r.expected.length, 1, f);
    assert.match(r.expected[0]!, /^lguest 2\.6\.23: \d+ pte change\(s\) in place in an mm that was not loaded/, f);
  }
});

contract('lguest: a stale shadow without an unhooked update of an unloaded mm stays a failure (a planted defect: flush_tlb_user does nothing)', () => {
  // Everything runs in the current process, so no update goes unhooked; the
  // defect leaves the parent's shadow writable after fork's wrprotect.
  const text = 'machine pae=off\nprocess p0\nmmap p0 0x8000000 0x1000 rw\nwrite p0 0x8000000 1\nfork p0 p1\nwrite p0 0x8000000 2\nread p1 0x8000000 expect 1\n';
  assert.equal(checkText('t.pvw', text, 1).failures, [], 'clean without the defect');
  const mutate: Mutation = {
    ops: (ops, backend) => {
      if (backend === 'lguest') ops.flush_tlb_user = () => {};
    },
  };
  const r = checkText('t.pvw', text, 1, mutate);
  assert.ok(r.failures.length > 0, 'reported');
  assert.equal(r.expected, []);
  assert.match(r.signature ?? '', /lguest|divergence/);
  // The classifier itself: nothing without a counted update, nothing when another backend is off.
  assert.is(lguestUnhookedUpdate(0, true), null);
  assert.is(lguestUnhookedUpdate(2, false), null);
  assert.match(lguestUnhookedUpdate(2, true) ?? '', /^lguest 2\.6\.23: 2 pte change/);
});

contract.run();
