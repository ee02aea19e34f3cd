/**
 * What validation and release of whole tables count for the cost model
 * (hypervisor/xen/validate.ts: cache lines streamed, present entries
 * checked, single entries read and written, type-count changes), for known
 * tables at each level, on success, on failure (the rollback) and on
 * release; and the entry rules' edges the other Xen tests leave open
 * (issue 14): a non-present new entry is written whatever its other bits
 * (Xen checks flags only when _PAGE_PRESENT is set), the same-frame fast
 * paths of mod_l2_entry / mod_l3_entry, an empty PAE L3 slot takes no
 * reference, and a refused L3 entry changes nothing.
 */
import { suite } from '../harness.js';
import * as assert from 'uvu/assert';
import {
  checkXenInvariants,
  EINVAL,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L2_TABLE,
  MMUEXT_PIN_L3_TABLE,
  MMUEXT_UNPIN_TABLE,
  XenBackend,
} from '../../hypervisor/xen/index.js';
import { alloc, checkedSuite, hx, KERNPG_TABLE, makeWorld, mfn, mkpgd, mkpmd, mkpte, P, PAGE_KERNEL, pgdAlloc, RW, state, USER_RW, type XW } from './xen-world.js';

const { s, world } = checkedSuite('xen validation: what it counts, and entry-rule edges');

interface Counts {
  read: number;
  written: number;
  lines: number;
  present: number;
  refs: number;
}
function counts(w: XW): Counts {
  const r = w.b.domain.rules;
  return { read: r.entriesRead, written: r.entriesWritten, lines: r.scanLines, present: r.scanPresent, refs: w.b.domain.frames.typeRefChanges };
}
/** What `fn` adds to the counters. */
function delta(w: XW, fn: () => void): Counts {
  const a = counts(w);
  fn();
  const b = counts(w);
  return { read: b.read - a.read, written: b.written - a.written, lines: b.lines - a.lines, present: b.present - a.present, refs: b.refs - a.refs };
}
const ok = (w: XW, r: { rc: number }): void => assert.is(r.rc, 0);

s('PAE L1: pin scans 64 lines and checks the 3 present entries (2 RW: 2 writable references); unpin the same', () => {
  const w = world(true);
  const pt = alloc(w);
  w.b.mem.write64(pt * 4096 + 8 * 5, mkpte(w, w.D0 + 8, USER_RW));
  w.b.mem.write64(pt * 4096 + 8 * 100, mkpte(w, w.D0 + 9, P));
  w.b.mem.write64(pt * 4096 + 8 * 511, mkpte(w, w.D0 + 10, PAGE_KERNEL));
  const m = mfn(w, pt);
  const ft = w.b.domain.frames;
  const c8 = ft.countOf(mfn(w, w.D0 + 8));
  const c9 = ft.countOf(mfn(w, w.D0 + 9));
  let d = delta(w, () => ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_PIN_L1_TABLE, mfn: m }])));
  assert.equal(d, { read: 0, written: 0, lines: 64, present: 3, refs: 3 });
  assert.equal([ft.countOf(mfn(w, w.D0 + 8)), ft.countOf(mfn(w, w.D0 + 9))], [c8 + 1, c9]);
  d = delta(w, () => ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: m }])));
  assert.equal(d, { read: 0, written: 0, lines: 64, present: 3, refs: 3 });
  assert.equal([ft.countOf(mfn(w, w.D0 + 8)), ft.countOf(mfn(w, w.D0 + 9))], [c8, c9]);
  // An empty L1: its lines, nothing present.
  const e = mfn(w, alloc(w));
  assert.equal(delta(w, () => ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_PIN_L1_TABLE, mfn: e }, { cmd: MMUEXT_UNPIN_TABLE, mfn: e }]))), {
    read: 0,
    written: 0,
    lines: 128,
    present: 0,
    refs: 2,
  });
});

s('2-level L1: 64 lines, the 3 present entries of 1024 checked, on pin and on unpin', () => {
  const w = world(false);
  const pt = alloc(w);
  w.b.mem.write32(pt * 4096 + 4 * 5, Number(mkpte(w, w.D0 + 8, USER_RW)));
  w.b.mem.write32(pt * 4096 + 4 * 100, Number(mkpte(w, w.D0 + 9, P)));
  w.b.mem.write32(pt * 4096 + 4 * 1023, Number(mkpte(w, w.D0 + 10, PAGE_KERNEL)));
  const m = mfn(w, pt);
  let d = delta(w, () => ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_PIN_L1_TABLE, mfn: m }])));
  assert.equal(d, { read: 0, written: 0, lines: 64, present: 3, refs: 3 });
  d = delta(w, () => ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: m }])));
  assert.equal(d, { read: 0, written: 0, lines: 64, present: 3, refs: 3 });
});

s('2-level L2: the guest\'s 1008 slots are 63 lines; validation writes Xen\'s 16 entries; release skips them', () => {
  const w = world(false);
  const pgd = alloc(w);
  const pt = alloc(w);
  const pt2 = alloc(w);
  w.b.mem.write32(pgd * 4096 + 4 * 3, Number(mkpmd(w, pt, KERNPG_TABLE)));
  w.b.mem.write32(pgd * 4096 + 4 * 1007, Number(mkpmd(w, pt2, KERNPG_TABLE)));
  const m = mfn(w, pgd);
  // The L2's 63 lines, two present entries, each an empty L1 validated (64 lines each); Xen's 16 entries written.
  let d = delta(w, () => ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_PIN_L2_TABLE, mfn: m }])));
  assert.equal(d, { read: 0, written: 16, lines: 63 + 128, present: 2, refs: 3 });
  assert.is(w.b.mem.read32(pgd * 4096 + 4 * 1008) >>> 12, w.b.domain.hole.holeL1, 'Xen\'s first slot');
  d = delta(w, () => ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: m }])));
  assert.equal(d, { read: 0, written: 0, lines: 63 + 128, present: 2, refs: 3 });
  assert.equal([mfn(w, pt), mfn(w, pt2)].map((f) => w.b.domain.frames.countOf(f)), [0, 0]);
});

s('2-level L2 refused at slot 16: 2 lines and 2 present entries checked, the 16 slots before read back for the rollback', () => {
  const w = world(false);
  const pgd = alloc(w);
  const pt = alloc(w);
  const xen = w.b.domain.hole.holeL1;
  w.b.mem.write32(pgd * 4096 + 4 * 2, Number(mkpmd(w, pt, KERNPG_TABLE)));
  w.b.mem.write32(pgd * 4096 + 4 * 16, (xen * 4096 + Number(KERNPG_TABLE)) | 0);
  const m = mfn(w, pgd);
  const before = state(w);
  let r = { rc: 0 };
  // The L1 is validated (64 lines) and released again (64 lines).
  const d = delta(w, () => (r = w.b.hv.mmuext_op([{ cmd: MMUEXT_PIN_L2_TABLE, mfn: m }])));
  assert.is(r.rc, -EINVAL);
  assert.equal(d, { read: 16, written: 0, lines: 2 + 128, present: 2, refs: 4 });
  assert.is(state(w), before);
});

s('PAE L3: 5 slot reads, 3 empty user L2s (64 lines each), the kernel L2\'s 428 slots (54 lines), Xen\'s 84 entries; release reads the 4 slots', () => {
  const w = world(true);
  const { pgd, pmds } = pgdAlloc(w);
  const m = mfn(w, pgd);
  const kpt = mfn(w, w.kpt);
  const ft = w.b.domain.frames;
  const ck = ft.countOf(kpt);
  // pmds[1] maps an empty L1 from its entry 300 (in the upper half of the table).
  const pt = alloc(w);
  w.b.mem.write64(pmds[1]! * 4096 + 8 * 300, mkpmd(w, pt, KERNPG_TABLE));
  let d = delta(w, () => ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_PIN_L3_TABLE, mfn: m }])));
  assert.equal(d, { read: 5, written: 84, lines: 3 * 64 + 54 + 64, present: 2, refs: 7 });
  assert.equal([ft.countOf(kpt), ft.countOf(mfn(w, pt))], [ck + 1, 1]);
  assert.ok(ft.isXenL2(mfn(w, pmds[3]!)));
  d = delta(w, () => ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: m }])));
  assert.equal(d, { read: 4, written: 0, lines: 3 * 64 + 54 + 64, present: 2, refs: 7 });
  assert.equal([ft.countOf(kpt), ft.countOf(mfn(w, pt))], [ck, 0]);
  assert.equal(pmds.map((p) => ft.countOf(mfn(w, p))), [0, 0, 0, 0]);
});

s('PAE L3 refused at slot 1 (Bad L3 flags): slot 0 taken and given back, one rollback read; an empty slot takes nothing', () => {
  const w = world(true);
  const { pgd, pmds } = pgdAlloc(w);
  const m = mfn(w, pgd);
  w.b.mem.write64(pgd * 4096 + 8, mkpgd(w, pmds[1]!, P | RW));
  const before = state(w);
  let r: { rc: number; refusal?: { log: readonly string[] } } = { rc: 0 };
  const d = delta(w, () => (r = w.b.hv.mmuext_op([{ cmd: MMUEXT_PIN_L3_TABLE, mfn: m }])));
  assert.is(r.rc, -EINVAL);
  assert.equal(r.refusal?.log.slice(0, 2), ['Bad L3 flags 2', 'Failure in alloc_l3_table: entry 1']);
  assert.equal(d, { read: 3, written: 0, lines: 128, present: 0, refs: 4 });
  assert.is(state(w), before);
  // Slots 0-2 may be empty: no reference (mfn 0 is the guest's frame 0 in this layout, and stays untouched).
  w.b.mem.write64(pgd * 4096 + 8, 0n);
  w.b.mem.write64(pgd * 4096, 0n);
  ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_PIN_L3_TABLE, mfn: m }]));
  assert.is(mfn(w, 0), 0);
  assert.not.ok(w.b.domain.frames.has(0));
  assert.equal([pmds[0]!, pmds[1]!].map((p) => w.b.domain.frames.countOf(mfn(w, p))), [0, 0]);
  ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: m }]));
});

s('a non-present new entry is written whatever its other bits, at every level (Xen checks flags only when present)', () => {
  const w = world(true);
  const { pgd, pmds } = pgdAlloc(w);
  ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_PIN_L3_TABLE, mfn: mfn(w, pgd) }]));
  const pt = alloc(w);
  ok(w, w.b.hv.mmuext_op([{ cmd: MMUEXT_PIN_L1_TABLE, mfn: mfn(w, pt) }]));
  const hv = w.b.hv;
  // A swap-entry-like pte: P clear, PSE/PAT, GLOBAL and high bits set.
  const swp = 0x7ff00000_fffff1fen;
  assert.equal(hv.mmu_update([{ ptr: mfn(w, pt) * 4096 + 8 * 7, val: swp }]), { rc: 0, done: 1 });
  assert.is(w.b.mem.read64(pt * 4096 + 8 * 7), swp);
  const pmd = 0xfffff180n; // P clear, PSE and GLOBAL set
  assert.equal(hv.mmu_update([{ ptr: mfn(w, pmds[0]!) * 4096 + 8 * 9, val: pmd }]), { rc: 0, done: 1 });
  assert.is(w.b.mem.read64(pmds[0]! * 4096 + 8 * 9), pmd);
  // L3 slot 1 cleared to a non-present value with RW/US/A set: its L2 reference is dropped.
  const ft = w.b.domain.frames;
  assert.is(ft.countOf(mfn(w, pmds[1]!)), 1);
  assert.equal(hv.mmu_update([{ ptr: mfn(w, pgd) * 4096 + 8, val: 0x26n }]), { rc: 0, done: 1 });
  assert.is(w.b.mem.read64(pgd * 4096 + 8), 0x26n);
  assert.is(ft.countOf(mfn(w, pmds[1]!)), 0);
  ok(w, hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: mfn(w, pt) }]));
  ok(w, hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: mfn(w, pgd) }]));
});

s('mod_l2_entry / mod_l3_entry: the same frame again is the fast path (no reference), another frame moves the reference', () => {
  const w = world(true);
  const { pgd, pmds } = pgdAlloc(w);
  const hv = w.b.hv;
  const ft = w.b.domain.frames;
  ok(w, hv.mmuext_op([{ cmd: MMUEXT_PIN_L3_TABLE, mfn: mfn(w, pgd) }]));
  const pt = alloc(w);
  const pt2 = alloc(w);
  const l2e = mfn(w, pmds[0]!) * 4096 + 8 * 400;
  ok(w, hv.mmu_update([{ ptr: l2e, val: mkpmd(w, pt, KERNPG_TABLE) }]));
  assert.is(ft.countOf(mfn(w, pt)), 1);
  // Same L1, A cleared: the fast path: only the L2's own get/put, one read, one write.
  let d = delta(w, () => ok(w, hv.mmu_update([{ ptr: l2e, val: mkpmd(w, pt, P | RW) }])));
  assert.equal(d, { read: 1, written: 1, lines: 0, present: 0, refs: 2 });
  assert.is(ft.countOf(mfn(w, pt)), 1);
  // Another L1: its reference taken (validated: 64 lines), the old one dropped (released: 64 lines).
  d = delta(w, () => ok(w, hv.mmu_update([{ ptr: l2e, val: mkpmd(w, pt2, KERNPG_TABLE) }])));
  assert.equal(d, { read: 1, written: 1, lines: 128, present: 0, refs: 4 });
  assert.equal([ft.countOf(mfn(w, pt)), ft.countOf(mfn(w, pt2))], [0, 1]);
  // L3: the same L2 again (PWT added): no reference change.
  const l3e = mfn(w, pgd) * 4096 + 8 * 2;
  d = delta(w, () => ok(w, hv.mmu_update([{ ptr: l3e, val: mkpgd(w, pmds[2]!, P | 8n) }])));
  assert.equal(d, { read: 1, written: 1, lines: 0, present: 0, refs: 2 });
  assert.is(ft.countOf(mfn(w, pmds[2]!)), 1);
  // Another L2 into slot 2: taken, the old released.
  const spare = alloc(w);
  d = delta(w, () => ok(w, hv.mmu_update([{ ptr: l3e, val: mkpgd(w, spare, P) }])));
  assert.equal(d, { read: 1, written: 1, lines: 128, present: 0, refs: 4 });
  assert.equal([ft.countOf(mfn(w, pmds[2]!)), ft.countOf(mfn(w, spare))], [0, 1]);
  // A refused L3 entry (a frame that is not the guest's): -EINVAL, nothing written.
  const xen = w.b.domain.hole.holeL1;
  const before = state(w);
  const r = hv.mmu_update([{ ptr: l3e, val: BigInt(xen) * 4096n | P }]);
  assert.is(r.rc, -EINVAL);
  assert.is(r.refusal?.reason, `Could not get page ref for pfn ${hx(xen)}`);
  assert.is(state(w), before);
  ok(w, hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: mfn(w, pgd) }]));
  assert.is(ft.countOf(mfn(w, pt2)), 0, 'released with its L2 (entry 400)');
});

s.run();
