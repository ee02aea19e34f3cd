/**
 * checkXenInvariants runs a fast pass (xenInvariantsHold: "nothing to
 * report"?) and the ordered, worded pass (checkXenInvariantsExact) only when
 * the fast pass doubts. Its answer must be the exact pass's, to the byte,
 * on every state: here on clean and broken states of the small Xen world
 * (PAE, 2-level, frames above 4 GiB and shuffled) and of a booted kernel,
 * broken the ways a hostile guest or a bug could: type counts off, pins
 * without types, entries of validated tables rewritten behind Xen's back
 * (present/writable/PSE bits, frames of the guest, page tables, frames
 * outside the guest, high address bits), Xen's hole entries changed, the
 * base pointer moved.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { suite } from 'uvu';
import type { XenDomain } from '../../hypervisor/xen/domain.js';
import { PGT_L1, PGT_L2, PGT_L3 } from '../../hypervisor/xen/frame-table.js';
import { checkXenInvariants, checkXenInvariantsExact, xenInvariantsHold } from '../../hypervisor/xen/invariants.js';
import { GraphCopier } from '../../emulator/snapshot.js';
import { isKind } from '../../hypervisor/backend.js';
import { Interpreter } from '../../tools/workload/interpreter.js';
import { parseScript } from '../../tools/workload/parser.js';
import { checkScript } from '../../tools/workload/check.js';
import { resolveConfig } from '../../tools/workload/config.js';
import { makeWorld, userMm, prepatchPgd } from './xen-world.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** A small deterministic generator (mulberry32). */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

interface Seen {
  clean: number;
  broken: number;
}

/** The fast pass and the exact pass agree on `d`: the same messages, and "hold" exactly when there are none. */
function agree(d: XenDomain, seen: Seen, what: string): void {
  const exact = checkXenInvariantsExact(d);
  assert.equal(checkXenInvariants(d), exact, what);
  assert.is(xenInvariantsHold(d), exact.length === 0, `${what}: ${exact.join('; ')}`);
  if (exact.length === 0) seen.clean++;
  else seen.broken++;
}

/** Frames typed as page tables (L1..L3 with a count), in the frame table's order. */
function tables(d: XenDomain): number[] {
  const out: number[] = [];
  for (let k = 0; k < d.frames.frameCount; k++) {
    const m = d.frames.frameAt(k);
    const t = d.frames.typeOf(m);
    if (d.frames.countOf(m) > 0 && (t === PGT_L1 || t === PGT_L2 || t === PGT_L3)) out.push(m);
  }
  return out;
}

/** One corruption of `d`, picked by `r`; returns what it did. */
function corrupt(d: XenDomain, r: (n: number) => number): string {
  const ft = d.frames;
  const mem = d.mmu.mem;
  const any = (): number => ft.frameAt(r(ft.frameCount));
  const pts = tables(d);
  switch (r(6)) {
    case 0: {
      const m = any();
      const c = ft.countOf(m);
      const to = [c + 1, Math.max(0, c - 1), 0][r(3)]!;
      ft.debugSetCount(m, to);
      return `count of ${m} ${c} -> ${to}`;
    }
    case 1: {
      const m = any();
      if (!ft.isPinned(m)) ft.debugSetCount(m, 0);
      ft.setPinned(m, !ft.isPinned(m));
      return `pin of ${m} toggled`;
    }
    case 2:
    case 3:
    case 4: {
      if (pts.length === 0) return 'nothing';
      const m = pts[r(pts.length)]!;
      const n = d.pae ? 512 : 1024;
      const type = ft.typeOf(m);
      // L3: its four slots; L2: often Xen's hole slots too; L1: any entry.
      const i = type === PGT_L3 ? r(4) : type === PGT_L2 && r(3) === 0 ? n - 1 - r(d.hole.slots) : r(n);
      const targets = [
        d.p2m.pfnToMfn(r(d.p2m.nrPages)),
        pts[r(pts.length)]!,
        any(),
        d.p2m.poolBase + d.p2m.nrPages + r(8),
        d.hole.holeL1,
      ];
      const target = targets[r(targets.length)]!;
      const flags = [0x1, 0x3, 0x7, 0x63, 0x83, 0x67, 0x0, 0x2][r(8)]!;
      const lo = ((target % 0x100000) * 4096 + flags) | 0;
      if (d.pae) {
        const hiBits = [Math.floor(target / 0x100000), 0x800, 0xfffff, 0x80000000 | 0][r(8) < 6 ? 0 : 1 + r(3)]!;
        mem.setWord(m, 2 * i, lo);
        mem.setWord(m, 2 * i + 1, hiBits);
        return `${m} entry ${i} = ${hiBits.toString(16)}:${(lo >>> 0).toString(16)}`;
      }
      mem.setWord(m, i, lo);
      return `${m} entry ${i} = ${(lo >>> 0).toString(16)}`;
    }
    default: {
      const before = d.baseMfn;
      d.baseMfn = r(4) === 0 ? -1 : pts.length > 0 && r(2) === 0 ? pts[r(pts.length)]! : any();
      return `base pointer ${before} -> ${d.baseMfn}`;
    }
  }
}

/**
 * Set every type count the exact pass finds wrong to the references that
 * exist, so that what is left broken is the rest (a writable page table, a
 * large page, a foreign frame, slot 3...), which a wrong count would mask.
 */
function repairCounts(d: XenDomain): number {
  let n = 0;
  // A count set to zero stops a table's entries from counting: again until nothing changes.
  for (let round = 0; round < 8; round++) {
    let changed = 0;
    for (const v of checkXenInvariantsExact(d)) {
      const m = /^mfn 0x([0-9a-f]+): type count \d+ but (\d+) references exist$/.exec(v);
      if (m === null || !d.frames.has(parseInt(m[1]!, 16))) continue;
      d.frames.debugSetCount(parseInt(m[1]!, 16), Number(m[2]));
      changed++;
    }
    if (changed === 0) break;
    n += changed;
  }
  return n;
}

const s = suite('xen invariants: the fast pass agrees with the exact pass');

for (const [name, pae, opts] of [
  ['PAE', true, {}],
  ['2-level', false, {}],
  ['PAE, shuffled, above 4 GiB', true, { p2m: 'shuffled', above4g: true }],
] as const) {
  s(`small world, ${name}: clean and broken states`, () => {
    const seen: Seen = { clean: 0, broken: 0 };
    for (let trial = 0; trial < 120; trial++) {
      const r = rng(1000 * trial + (pae ? 1 : 2));
      const w = makeWorld(pae, opts);
      userMm(w);
      if (pae && r(2) === 0) prepatchPgd(w);
      const d = w.b.domain;
      agree(d, seen, `trial ${trial}: clean world`);
      const steps = 1 + r(3);
      const done: string[] = [];
      for (let k = 0; k < steps; k++) {
        done.push(corrupt(d, r));
        agree(d, seen, `trial ${trial}: ${done.join(', ')}`);
        if (repairCounts(d) > 0) {
          done.push('counts repaired');
          agree(d, seen, `trial ${trial}: ${done.join(', ')}`);
        }
        if (r(2) === 0) {
          // Freeze every frame (a copy of the memory shares them copy-on-write): the fast pass sums frozen L1s once and keeps the sum.
          new GraphCopier().copy(d.mmu.mem);
          done.push('memory frozen');
          agree(d, seen, `trial ${trial}: ${done.join(', ')}`);
          agree(d, seen, `trial ${trial}: ${done.join(', ')}, again`);
        }
      }
    }
    assert.ok(seen.clean >= 120 && seen.broken >= 120, `clean ${seen.clean}, broken ${seen.broken}`);
  });
}

/** One PAE world broken by `breakIt`, its counts repaired: the exact pass reports only `expected`, and the fast pass agrees. */
function alone(breakIt: (w: ReturnType<typeof makeWorld>, u: ReturnType<typeof userMm>) => void, expected: RegExp): void {
  const w = makeWorld(true);
  const u = userMm(w);
  breakIt(w, u);
  repairCounts(w.b.domain);
  const v = checkXenInvariantsExact(w.b.domain);
  assert.is(v.length, 1, v.join('; '));
  assert.match(v[0]!, expected);
  agree(w.b.domain, { clean: 0, broken: 0 }, v[0]!);
}

s('PAE: each slot-3 rule broken alone (counts repaired)', () => {
  const pmdMfn = (w: ReturnType<typeof makeWorld>, pfn: number): number => w.b.domain.p2m.pfnToMfn(pfn);
  // An L3 whose slot 3 was cleared behind Xen's back.
  alone((w, u) => {
    const l3 = pmdMfn(w, u.pgd);
    w.b.domain.mmu.mem.setWord(l3, 6, 0);
    w.b.domain.mmu.mem.setWord(l3, 7, 0);
  }, /^L3 mfn 0x[0-9a-f]+ has no slot 3$/);
  // Two L3s sharing one slot-3 L2.
  alone((w, u) => {
    const u2 = userMm(w);
    const mem = w.b.domain.mmu.mem;
    const a = pmdMfn(w, u.pgd);
    const b = pmdMfn(w, u2.pgd);
    mem.setWord(b, 6, mem.word(a, 6) | 0);
    mem.setWord(b, 7, mem.word(a, 7) | 0);
  }, /^slot-3 L2 mfn 0x[0-9a-f]+ is referenced by 2 L3s \(0x[0-9a-f]+, 0x[0-9a-f]+\)$/);
  // A pinned pae_xen_l2 in no L3's slot 3 (its L3 unpinned and not loaded).
  alone((w, u) => {
    const ft = w.b.domain.frames;
    w.b.write_cr3(w.base * 4096);
    ft.setPinned(pmdMfn(w, u.pmds[3]!), true);
    ft.setPinned(pmdMfn(w, u.pgd), false);
  }, /^pae_xen_l2 mfn 0x[0-9a-f]+ is in no L3's slot 3$/);
});

s('frozen L1s: the kept sum is not used once the m2p changed', () => {
  const file = join(ROOT, 'tools', 'workloads', 'fork-exit.pvw');
  const script = parseScript(file, readFileSync(file, 'utf8'));
  const cfg = resolveConfig(file, script.machine, { backend: 'xen' });
  checkScript(script, cfg);
  const snap = new Interpreter(script, cfg, { seed: 1 }).snapshot();
  const seen: Seen = { clean: 0, broken: 0 };
  for (const pfn of [0x2000, 0x3000]) {
    const h = snap.restore().handle;
    if (!isKind(h, 'xen')) throw new Error('not xen');
    const d = h.ext.backend.domain;
    agree(d, seen, 'restored');
    agree(d, seen, 'restored, again (the kept sum)');
    // The frame the direct map maps writable at pfn stops being the guest's: its reference no longer counts.
    d.p2m.setM2p(d.p2m.pfnToMfn(pfn), -1);
    agree(d, seen, `m2p of pfn ${pfn} cleared`);
  }
  assert.equal(seen, { clean: 4, broken: 2 });
});

for (const pae of [true, false]) {
  s(`a booted kernel (fork-exit.pvw, ${pae ? 'PAE' : '2-level'}): clean and broken states`, () => {
    const file = join(ROOT, 'tools', 'workloads', 'fork-exit.pvw');
    const script = parseScript(file, readFileSync(file, 'utf8'));
    const cfg = resolveConfig(file, script.machine, { backend: 'xen', pae });
    checkScript(script, cfg);
    const it = new Interpreter(script, cfg, { seed: 1 });
    const h = it.handle;
    if (!isKind(h, 'xen')) throw new Error('not xen');
    const d = h.ext.backend.domain;
    const seen: Seen = { clean: 0, broken: 0 };
    agree(d, seen, 'booted');
    const snap = it.snapshot();
    for (let trial = 0; trial < 30; trial++) {
      const c = snap.restore();
      const ch = c.handle;
      if (!isKind(ch, 'xen')) throw new Error('not xen');
      const cd = ch.ext.backend.domain;
      const r = rng(trial + 77);
      const done: string[] = [];
      for (let k = 0; k < 1 + r(2); k++) {
        done.push(corrupt(cd, r));
        agree(cd, seen, `trial ${trial}: ${done.join(', ')}`);
        if (repairCounts(cd) > 0) {
          done.push('counts repaired');
          agree(cd, seen, `trial ${trial}: ${done.join(', ')}`);
        }
      }
    }
    const r = it.run();
    assert.is(r.failure, null);
    agree(d, seen, 'after the run');
    assert.ok(seen.clean >= 2 && seen.broken >= 20, `clean ${seen.clean}, broken ${seen.broken}`);
  });
}

s.run();
