/**
 * Shrinking from checkpoints (tools/fuzz/differential.ts CheckpointedChecker,
 * Interpreter.topLevelDone/resumeWith): a candidate's runs start from a
 * snapshot of the machine after boot, or after the longest top-level prefix
 * it shares with a script already run, and the shrink gives exactly what the
 * reference path (every candidate run from boot) gives, on planted failures:
 * a wrong translation (the TLB check), a native backend that undoes fork's
 * write-protect (an invariant and a divergence), and lguest as 2.6.23 had it
 * (pte_update unhooked: a stale cached shadow). Plus the interpreter's
 * resumption on its own.
 */
import { lostWrprotect, wrongPa } from './fuzz-mutations.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Mmu, type MmuOptions } from '../../emulator/mmu.js';
import { partial } from '../../emulator/snapshot.js';
import type { ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { CheckpointedChecker, checkText, fuzzSeed, loadText, shrink, statementCount, type Mutation } from '../../tools/fuzz/differential.js';
import { DirtyFrameMem } from '../../tools/fuzz/dirty-frames.js';
import { Interpreter } from '../../tools/workload/interpreter.js';

const s = suite('fuzz: shrinking from checkpoints');



/** lguest as 2.6.23 had it: pte_update and pte_update_defer not hooked. */
const lguest2623: Mutation = {
  ops: (ops: ParavirtOps, backend) => {
    if (backend !== 'lguest') return;
    ops.pte_update = () => {};
    ops.pte_update_defer = () => {};
  },
};

function sameShrink(name: string, text: string, seed: number, m: Mutation, budget: number): void {
  const sig = checkText(`seed-${seed}.pvw`, text, seed, m).signature;
  assert.ok(sig !== null, `${name}: the planted defect fails the workload`);
  const ref = shrink(text, seed, sig!, m, budget, false);
  const cp = shrink(text, seed, sig!, m, budget, true);
  assert.is(ref.resumed, 0);
  assert.ok(cp.resumed > 0, `${name}: runs started from checkpoints (${cp.resumed})`);
  assert.is(cp.text, ref.text, `${name}: the same shrunk script`);
  assert.is(cp.runs, ref.runs, `${name}: the same number of candidates`);
  assert.equal(cp.failures, ref.failures, `${name}: the same failures`);
  assert.ok(statementCount(cp.text) < statementCount(text), `${name}: it did shrink`);
}

/** The first seed whose generated workload the defect fails. */
function failingSeed(m: Mutation, statements: number): { seed: number; text: string } {
  for (let seed = 1; seed <= 12; seed++) {
    const o = fuzzSeed(seed, { mutate: m, gen: { statements } });
    if (o.signature !== null) return { seed, text: o.text };
  }
  throw new Error('no seed fails');
}

s('a wrong translation (TLB check): the shrink from checkpoints equals the shrink from boot', () => {
  const { seed, text } = failingSeed(wrongPa, 20);
  sameShrink('wrongPa', text, seed, wrongPa, 40);
});

s('a backend undoing the fork write-protect (invariant, divergence): the same shrink; the ops double is put on every restored machine', () => {
  const { seed, text } = failingSeed(lostWrprotect, 20);
  sameShrink('lostWrprotect', text, seed, lostWrprotect, 40);
});

s("lguest's pte_update made a no-op (its count of unhooked updates gone, so seed 8's stale shadow is a failure, not an expected outcome): shrinks the same both ways", () => {
  const w = fuzzSeed(8);
  assert.equal(w.failures, [], 'an expected outcome without the defect');
  sameShrink('lguest2623', w.text, 8, lguest2623, 30);
});

s('a candidate resumes from the longest prefix it shares with a script run; mid-run checkpoints where the caller says', () => {
  const w = fuzzSeed(4, { gen: { statements: 40 } });
  const lines = w.text.trimEnd().split('\n');
  const header = lines.slice(0, 2);
  assert.match(header[1]!, /^machine /);
  const items = lines.slice(2).filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  // Top-level statements only (the generator writes blocks over several lines: keep them out).
  const flat = items.filter((l) => !/[{}]\s*$/.test(l) && !/^\s/.test(l)).map((line) => ({ line }));
  assert.ok(flat.length >= 20, `${flat.length} top-level statements`);
  const cc = new CheckpointedChecker('t.pvw', header, 4);
  const render = (xs: { line: string }[]): string => [...header, ...xs.map((x) => x.line)].join('\n') + '\n';
  const outcome = (r: ReturnType<typeof checkText>): string => JSON.stringify({ ...r, cfg: null });
  const full = flat.slice(0, 20);
  assert.is(outcome(cc.check(full, 12)), outcome(checkText('t.pvw', render(full), 4)), 'the first run (from boot, checkpoint at 12)');
  const booted = cc.booted;
  // Statement 15 removed: resumes at 12 on every backend.
  const cand = [...full.slice(0, 15), ...full.slice(16)];
  assert.is(outcome(cc.check(cand, 15)), outcome(checkText('t.pvw', render(cand), 4)), 'resumed at 12');
  assert.is(cc.booted, booted, 'no boot');
  // Statement 3 removed: shares only the boot.
  const early = [...full.slice(0, 3), ...full.slice(4)];
  assert.is(outcome(cc.check(early, 3)), outcome(checkText('t.pvw', render(early), 4)), 'resumed after boot');
  assert.is(cc.booted, booted, 'still no boot: the boot snapshot');
  assert.ok(cc.resumed > 0);
});

const r = suite('interpreter: resuming another script at a top-level boundary');

const PREFIX = `machine pae=off mem=32M
process a
mmap a 0x8000000 0x8000 rw
measure m {
  repeat 2 {
    touch a 0x8000000 0x2000 write
  }
}
fork a b
`;

function result(it: Interpreter): string {
  const x = it.run();
  return JSON.stringify({ ...x, config: null });
}

r('topLevelDone counts top-level statements, -1 inside a block; a finished block counts as done', () => {
  const { script, cfg } = loadText('p.pvw', PREFIX + 'write b 0x8000010 7\n');
  const it = new Interpreter(script, { ...cfg, backend: 'native' });
  const seen: number[] = [];
  seen.push(it.topLevelDone());
  while (it.advance()) seen.push(it.topLevelDone());
  assert.equal(seen, [0, 1, 2, -1, 3, 4, 5]);
});

for (const backend of ['native', 'xen', 'vmi', 'lguest'] as const) {
  r(`${backend}: snapshot after the prefix, resume another script with the same prefix = that script run straight`, () => {
    const other = PREFIX + 'write b 0x8000010 7\nread a 0x8000010 expect 0\nexit b\n';
    const a = loadText('p.pvw', PREFIX + 'read a 0x8000004 expect 0\n');
    const b = loadText('p.pvw', other);
    const opts = { seed: 3, xenP2m: 'shuffled' as const, checkEachStatement: true };
    const first = new Interpreter(a.script, { ...a.cfg, backend }, opts);
    while (first.topLevelDone() !== 4) assert.ok(first.advance());
    const snap = first.snapshot({ strict: true });
    const resumed = snap.restore();
    resumed.resumeWith(b.script, 4);
    const straight = new Interpreter(b.script, { ...b.cfg, backend }, opts);
    assert.is(result(resumed), result(straight));
    assert.throws(() => snap.restore().resumeWith(b.script, 3), /at top-level statement 4, not 3/);
  });
}

r('a DirtyFrameMem copied for a snapshot is one too, with every frame counting as written', () => {
  const m = new DirtyFrameMem();
  m.write32(0x5000, 1);
  m.forget();
  assert.not.ok(m.written(5));
  const { script, cfg } = loadText('p.pvw', 'machine pae=off mem=32M\nprocess a\n');
  const it = new Interpreter(script, { ...cfg, backend: 'native' }, { newMmu: partial(mmuOn, m) });
  const c = it.snapshot().restore();
  assert.ok(c.mmu.mem instanceof DirtyFrameMem);
  assert.ok((c.mmu.mem as DirtyFrameMem).written(5));
  assert.is(c.mmu.mem.read32(0x5000), 1);
});

/** A processor on the given memory (a module function: a machine holding it can be snapshotted). */
function mmuOn(mem: DirtyFrameMem, o: MmuOptions): Mmu {
  return new Mmu({ ...o, mem });
}

s.run();
r.run();
