/**
 * The Xen hypercalls beyond the refusals: mmu_update's not-a-page-table and
 * machine-to-physical paths, vm_assist, the flush commands, what pinning
 * buys (NEW_BASEPTR of an unpinned pgd validates the tree, and switching
 * away releases it), emulated zeroing/copying of a live L1, and the 2-level
 * hole in every root. The invariant checker runs after every test.
 */
import { suite } from '../harness.js';
import * as assert from 'uvu/assert';
import {
  checkXenInvariants,
  EINVAL,
  MMU_MACHPHYS_UPDATE,
  MMUEXT_INVLPG_ALL,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_TLB_FLUSH_ALL,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_UNPIN_TABLE,
  VMASST_CMD_DISABLE,
  VMASST_CMD_ENABLE,
  XenBackend,
} from '../../hypervisor/xen/index.js';
import { ACCESS_READ, ACCESS_WRITE } from '../../emulator/paging-bits.js';
import { alloc, checkedSuite, expectRefusal, hx, makeWorld, mfn, mkpte, pgdAlloc, ptep, state, USER_RW, userMm, UVA, type XW } from './xen-world.js';

const { s, world } = checkedSuite('xen hypercalls');

s('mmu_update of a frame that is not a page table is a plain write; of Xen\'s frame it is refused', () => {
  const w = world(true);
  const data = alloc(w);
  const r = w.b.hv.mmu_update([{ ptr: mfn(w, data) * 4096 + 16, val: 0x1122334455667788n }]);
  assert.equal(r, { rc: 0, done: 1 });
  assert.is(w.b.mem.read64(data * 4096 + 16), 0x1122334455667788n);
  assert.is(w.b.domain.frames.countOf(mfn(w, data)), 0, 'the temporary writable reference was dropped');
  const xen = w.b.domain.hole.holeL1;
  const r2 = w.b.hv.mmu_update([{ ptr: xen * 4096, val: 0n }]);
  assert.is(r2.rc, -EINVAL);
  assert.is(r2.refusal?.reason, 'Could not get page for normal update');
});

s('MMU_MACHPHYS_UPDATE writes the m2p (the guest\'s frames only)', () => {
  const w = world(true);
  const m = mfn(w, 0x1f0);
  assert.is(w.b.hv.mmu_update([{ ptr: m * 4096 + MMU_MACHPHYS_UPDATE, val: 0x1f1n }]).rc, 0);
  assert.is(w.b.domain.p2m.mfnToPfn(m), 0x1f1);
  assert.is(w.b.hv.mmu_update([{ ptr: m * 4096 + MMU_MACHPHYS_UPDATE, val: 0x1f0n }]).rc, 0);
  const xen = w.b.domain.hole.holeL1;
  assert.is(
    w.b.hv.mmu_update([{ ptr: xen * 4096 + MMU_MACHPHYS_UPDATE, val: 1n }]).refusal?.reason,
    'Could not get page for mach->phys update',
  );
});

s('vm_assist: types 0-3 accepted, above MAX_VMASST_TYPE -EINVAL silently [item 13]; extended commands: unknown refused, FLUSH_ALL/INVLPG_ALL act', () => {
  const w = world(true);
  for (const t of [0, 1, 2, 3]) {
    assert.equal(w.b.hv.vm_assist(VMASST_CMD_ENABLE, t), { rc: 0, done: 1 }, `type ${t}`);
  }
  w.b.hv.vm_assist(VMASST_CMD_DISABLE, 0);
  w.b.hv.vm_assist(VMASST_CMD_DISABLE, 1);
  const bad = w.b.hv.vm_assist(VMASST_CMD_ENABLE, 9);
  assert.is(bad.rc, -22);
  assert.is(bad.refusal?.reason, '(no log line) vm_assist: type 9 above MAX_VMASST_TYPE (3)');
  assert.is(w.b.hv.vm_assist(7, 2).rc, -38, 'unknown command: -ENOSYS');
  assert.is(w.b.hv.mmuext_op([{ cmd: 99 }]).refusal?.reason, 'Invalid extended pt command 0x63');
  const c = w.b.stats.mmu;
  const cr3 = c.cr3Writes;
  const inv = c.invlpgs;
  assert.is(w.b.hv.mmuext_op([{ cmd: MMUEXT_TLB_FLUSH_ALL }, { cmd: MMUEXT_INVLPG_ALL, linearAddr: UVA }]).rc, 0);
  assert.is(c.cr3Writes - cr3, 1);
  assert.is(c.invlpgs - inv, 1);
  assert.is(w.b.stats.hypercalls['mmuext_op:TLB_FLUSH_ALL'], 1);
  assert.is(w.b.stats.hypercalls['mmuext_op:INVLPG_ALL'], 1);
});

s('TLB_FLUSH_LOCAL is queued (DOP_FLUSH_TLB): one flush at the end of the call however many ask, none of its own after a NEW_BASEPTR (Xen 3.1.0 do_mmuext_op)', () => {
  for (const pae of [true, false]) {
    const w = world(pae);
    const u = userMm(w);
    const c = w.b.stats.mmu;
    const base = mfn(w, u.pgd);
    // Alone: one flush, at the end of the call.
    let cr3 = c.cr3Writes;
    assert.is(w.b.hv.mmuext_op([{ cmd: MMUEXT_TLB_FLUSH_LOCAL }]).rc, 0);
    assert.is(c.cr3Writes - cr3, 1, `${pae}: alone`);
    // Three in one call: still one flush (the model used to flush three times).
    cr3 = c.cr3Writes;
    assert.is(w.b.hv.mmuext_op([{ cmd: MMUEXT_TLB_FLUSH_LOCAL }, { cmd: MMUEXT_TLB_FLUSH_LOCAL }, { cmd: MMUEXT_TLB_FLUSH_LOCAL }]).rc, 0);
    assert.is(c.cr3Writes - cr3, 1, `${pae}: three queued`);
    // Before a NEW_BASEPTR: the base load is the only CR3 write (the queued flush is dropped).
    cr3 = c.cr3Writes;
    assert.is(w.b.hv.mmuext_op([{ cmd: MMUEXT_TLB_FLUSH_LOCAL }, { cmd: MMUEXT_NEW_BASEPTR, mfn: base }]).rc, 0);
    assert.is(c.cr3Writes - cr3, 1, `${pae}: dropped by NEW_BASEPTR`);
    // After a NEW_BASEPTR it is queued again: the load and one flush.
    cr3 = c.cr3Writes;
    assert.is(w.b.hv.mmuext_op([{ cmd: MMUEXT_NEW_BASEPTR, mfn: base }, { cmd: MMUEXT_TLB_FLUSH_LOCAL }]).rc, 0);
    assert.is(c.cr3Writes - cr3, 2, `${pae}: after NEW_BASEPTR`);
    // TLB_FLUSH_ALL is not deferred: two in one call flush twice.
    cr3 = c.cr3Writes;
    assert.is(w.b.hv.mmuext_op([{ cmd: MMUEXT_TLB_FLUSH_ALL }, { cmd: MMUEXT_TLB_FLUSH_ALL }]).rc, 0);
    assert.is(c.cr3Writes - cr3, 2, `${pae}: FLUSH_ALL at once`);
  }
});

s('what pinning buys: an unpinned pgd is validated at every load and released at every switch', () => {
  const w = world(true);
  const u = userMm(w); // pinned
  const { pgd } = pgdAlloc(w); // not pinned
  const d = w.b.domain;
  const kptCount = d.frames.countOf(mfn(w, w.kpt));
  let c0 = w.b.stats.cycles;
  w.b.write_cr3(pgd * 4096);
  const unpinned = w.b.stats.cycles - c0;
  assert.is(d.frames.typeOf(mfn(w, pgd)), 3, 'typed L3 while loaded');
  assert.is(d.frames.countOf(mfn(w, w.kpt)), kptCount + 1, 'its kernel pmd references the kernel pte page');
  assert.not.ok(d.frames.isPinned(mfn(w, pgd)));
  w.b.write_cr3(u.pgd * 4096);
  assert.is(d.frames.countOf(mfn(w, pgd)), 0, 'released when switched away');
  assert.is(d.frames.typeOf(mfn(w, pgd)), 3, 'the last type stays recorded at count 0 (Xen 3.1 put_page_type) [item 12]');
  assert.is(d.frames.countOf(mfn(w, w.kpt)), kptCount);
  c0 = w.b.stats.cycles;
  w.b.write_cr3(w.base * 4096);
  const pinned = w.b.stats.cycles - c0;
  // 4 PDPTEs + 4 pmds of 512 entries streamed (64 lines each) at least, on top of the same round trip and CR3 load.
  assert.ok(unpinned - pinned >= 4 * d.costs.entryRead + 4 * 64 * d.costs.scanLine, `unpinned ${unpinned} vs pinned ${pinned}`);
});

s('unpin while loaded: the base pointer keeps the tree typed until the switch', () => {
  const w = world(true);
  const u = userMm(w);
  const m = mfn(w, u.pgd);
  assert.is(w.b.hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: m }]).rc, 0);
  assert.is(w.b.domain.frames.countOf(m), 1);
  assert.ok(w.b.access(UVA, ACCESS_READ, true).ok);
  assert.equal(checkXenInvariants(w.b), []);
  w.b.write_cr3(w.base * 4096);
  assert.is(w.b.domain.frames.countOf(m), 0);
  // The guest still believes it is pinned; exit_mmap would unpin it again: Xen says so.
  expectRefusal(() => w.b.exit_mmap(u.mm), `Mfn ${hx(m)} not pinned`);
});

s('zeroing a live L1 is emulated entry by entry (references dropped); copying a bad L1 into one is refused', () => {
  const w = world(true);
  const u = userMm(w);
  const d = w.b.domain;
  const data = mfn(w, w.D0 + 8);
  assert.is(d.frames.countOf(data), 2, 'direct map + user mapping');
  const t0 = w.b.stats.traps['ptwr_emulate'] ?? 0;
  w.b.mem.zeroPage(u.pt);
  assert.is(w.b.stats.traps['ptwr_emulate'], t0 + 1, 'one non-zero entry, one trapped store');
  assert.is(d.frames.countOf(data), 1);
  assert.is(w.b.access(UVA, ACCESS_READ, true).ok, false);
  // A source page whose entry maps the pgd writable.
  const src = alloc(w);
  w.b.mem.write64(ptep(w, src, UVA), mkpte(w, u.pgd, USER_RW));
  const before = state(w);
  expectRefusal(() => w.b.mem.copyPage(u.pt, src), /^Error getting mfn /);
  assert.is(state(w), before);
  w.b.mem.write64(ptep(w, src, UVA), mkpte(w, w.D0 + 9, USER_RW));
  w.b.mem.copyPage(u.pt, src);
  w.b.flush_tlb_user();
  assert.ok(w.b.access(UVA, ACCESS_WRITE, true).ok);
  assert.is(w.b.mem.read64(ptep(w, u.pt, UVA)) & ~0x60n, mkpte(w, w.D0 + 9, USER_RW));
});

s('2-level: Xen\'s entries in every validated root, swapper\'s and each process pgd', () => {
  const w = world(false);
  const u = userMm(w);
  const d = w.b.domain;
  assert.ok(d.hole.isIntact(mfn(w, w.base)));
  assert.ok(d.hole.isIntact(mfn(w, u.pgd)));
  const { pgd } = pgdAlloc(w);
  assert.not.ok(d.hole.isIntact(mfn(w, pgd)), 'not before it is validated');
  w.b.dup_mmap(u.mm, { pgd: pgd * 4096 });
  assert.ok(d.hole.isIntact(mfn(w, pgd)));
  assert.is(w.b.access(0xfc000000, ACCESS_READ, true).ok, false);
  assert.is(w.b.access(0xfbfff000, ACCESS_READ, false).ok, false, 'below the hole: not mapped, a plain fault');
});

s.run();
