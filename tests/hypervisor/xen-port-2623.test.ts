/**
 * The Xen guest port as Linux 2.6.23 wrote it (arch/i386/xen/mmu.c,
 * enlighten.c, multicalls.c) and Xen 3.1.0's answers (xen/arch/x86/mm.c),
 * at the hypercall level: one test per item of issue 10 that the earlier
 * model got wrong. Each fails on the model before the fix (checked against
 * the sources of commit 283108a) and passes after.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ACCESS_READ } from '../../emulator/paging-bits.js';
import { KernelBug } from '../../hypervisor/types.js';
import { alloc, makeWorld, mfn, mkpgd, mkpte, P, pgdAlloc, pdep, mkpmd, PAGE_TABLE, ptep, userMm, USER_RW, UVA, kva, PAGE_KERNEL, type XW } from './xen-world.js';

const world = (pae: boolean): XW => makeWorld(pae);
/** A free frame the small world's direct map covers (its kernel pte page maps D0..D0+31); zero. */
const mapped = (w: XW, i: number): number => {
  const pfn = w.D0 + 20 + i;
  w.b.mem.zeroPage(pfn);
  return pfn;
};
const calls = (w: XW, k: string): number => w.b.stats.hypercalls[k] ?? 0;
const traps = (w: XW): number => w.b.stats.traps['ptwr_emulate'] ?? 0;

const s = suite('xen guest port 2.6.23 / Xen 3.1 (issue 10)');

for (const pae of [true, false]) {
  const L = pae ? 'PAE' : '2-level';

  s(`${L} [item 2]: alloc_pt of a pte page for an unpinned mm does nothing; for a pinned mm one update_va_mapping without a flush`, () => {
    const w = world(pae);
    const u = userMm(w); // pinned, loaded
    const { pgd } = pgdAlloc(w); // not pinned
    const h0 = { ...w.b.stats.hypercalls };
    const cr3 = w.b.stats.mmu.cr3Writes;
    const pt = mapped(w, 2);
    w.b.alloc_pt(pt, { pgd: pgd * 4096 });
    assert.equal(w.b.stats.hypercalls, h0, 'unpinned mm: no hypercall');
    w.b.mem.write32(pt * 4096, 0x1234); // still writable: a plain store
    assert.is(w.b.mem.read32(pt * 4096), 0x1234);
    w.b.mem.write32(pt * 4096, 0);
    const pt2 = mapped(w, 0);
    w.b.alloc_pt(pt2, u.mm);
    assert.is(calls(w, 'update_va_mapping') - (h0['update_va_mapping'] ?? 0), 1, 'one update_va_mapping');
    assert.is(calls(w, 'mmu_update'), h0['mmu_update'] ?? 0, 'no mmu_update');
    assert.is(calls(w, 'mmuext_op'), h0['mmuext_op'] ?? 0, 'no flush op');
    assert.is(w.b.stats.mmu.cr3Writes, cr3, 'no TLB flush');
  });

  s(`${L} [item 2]: a store through a read-only direct-map pte of an untyped frame faults (bounced; the guest oopses)`, () => {
    const w = world(pae);
    const u = userMm(w);
    const pt = mapped(w, 1);
    w.b.alloc_pt(pt, u.mm); // read-only now, not yet a page table Xen knows
    assert.not.ok(w.b.domain.frames.isPageTable(mfn(w, pt)));
    const b0 = w.b.stats.traps['page_fault_bounce'] ?? 0;
    let err: unknown;
    try {
      w.b.mem.write32(pt * 4096 + 8, 0x1234);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof KernelBug, `expected the guest's oops, got ${String(err)}`);
    assert.match((err as Error).message, /unable to handle kernel paging request/);
    assert.is(w.b.stats.traps['page_fault_bounce'], b0 + 1, 'Xen bounced the #PF');
    assert.is(w.b.mem.read32(pt * 4096 + 8), 0, 'nothing written');
  });

  s(`${L} [item 5]: set_pmd is an mmu_update even into a frame Xen has not typed`, () => {
    const w = world(pae);
    const { pgd, pmds } = pgdAlloc(w); // not pinned, not loaded: its frames are untyped
    assert.not.ok(w.b.domain.frames.isPageTable(mfn(w, pae ? pmds[0]! : pgd)));
    const pt = alloc(w);
    const m0 = calls(w, 'mmu_update');
    w.b.set_pmd(pdep(w, pgd, pmds, UVA), mkpmd(w, pt, PAGE_TABLE));
    assert.is(calls(w, 'mmu_update'), m0 + 1);
  });

  s(`${L} [item 6]: in lazy MMU mode set_pte, pte_clear and set_pte_atomic are plain stores that trap at once`, () => {
    const w = world(pae);
    const u = userMm(w);
    const p = ptep(w, u.pt, UVA + 0x3000);
    w.b.set_lazy_mode('mmu');
    const t0 = traps(w);
    w.b.set_pte(p, mkpte(w, w.D0 + 9, USER_RW));
    assert.is(traps(w), t0 + (pae ? 2 : 1), 'xen_set_pte: one trapped store per word, now');
    assert.ok(w.b.mem.read64(p) !== 0n, 'written at once');
    w.b.pte_clear(u.mm, UVA + 0x3000, p);
    // PAE: xen_pte_clear's two stores; 2-level: pte_clear is set_pte_at, queued as an update_va_mapping.
    assert.is(traps(w), t0 + (pae ? 4 : 1));
    w.b.set_lazy_mode('none');
    assert.is(w.b.mem.read64(p), 0n);
    const t1 = traps(w);
    w.b.set_lazy_mode('mmu');
    w.b.set_pte_atomic(p, mkpte(w, w.D0 + 10, USER_RW));
    assert.is(traps(w), t1 + 1, 'set_pte_atomic: one store, one trap, now');
    w.b.set_lazy_mode('none');
  });

  s(`${L} [item 8]: set_pte_at of the current mm and of init_mm is an update_va_mapping; the pin walk and the PIN are one multicall`, () => {
    const w = world(pae);
    const u = userMm(w); // loaded
    const m0 = calls(w, 'mmu_update');
    const v0 = calls(w, 'update_va_mapping');
    w.b.set_pte_at(u.mm, UVA + 0x1000, ptep(w, u.pt, UVA + 0x1000), mkpte(w, w.D0 + 9, USER_RW));
    w.b.set_pte_at(w.initMm, kva(w, w.D0 + 3), ptep(w, w.kpt, kva(w, w.D0 + 3)), mkpte(w, w.D0 + 3, PAGE_KERNEL));
    assert.is(calls(w, 'update_va_mapping'), v0 + 2);
    assert.is(calls(w, 'mmu_update'), m0);
    assert.ok(w.b.access(UVA + 0x1000, ACCESS_READ, true).ok);
    // A new mm's pin: its pages read-only and the PIN in one batch.
    const { pgd } = pgdAlloc(w, mapped(w, 3));
    const mc0 = calls(w, 'multicall');
    const h0 = { ...w.b.stats.hypercalls };
    w.b.activate_mm(u.mm, { pgd: pgd * 4096 });
    assert.is(calls(w, 'multicall'), mc0 + 1, 'one multicall');
    assert.is(calls(w, 'mmu_update'), h0['mmu_update'] ?? 0, 'no mmu_update');
    assert.ok(calls(w, 'update_va_mapping') > (h0['update_va_mapping'] ?? 0), 'the pgd made read-only in the batch');
    assert.is(calls(w, 'mmuext_op'), (h0['mmuext_op'] ?? 0) + 1, 'the PIN, inside the multicall');
    const pin = pae ? 'mmuext_op:PIN_L3_TABLE' : 'mmuext_op:PIN_L2_TABLE';
    assert.is(calls(w, pin), (h0[pin] ?? 0) + 1);
  });
}

s('PAE [item 7]: xen_set_pte writes the high word first; Xen 3.1 accepts a half-written pte by clearing P ("fixing up invalid PAE PTE")', () => {
  const w = world(true);
  const u = userMm(w); // UVA -> D0+8, present
  const p = ptep(w, u.pt, UVA);
  const t0 = traps(w);
  // Over a present entry: two 32-bit stores, two traps (not one 64-bit store).
  w.b.set_pte(p, mkpte(w, w.D0 + 9, USER_RW));
  assert.is(traps(w), t0 + 2);
  // The high half alone, making the entry point outside the guest's memory: accepted with P cleared.
  const lo = w.b.mem.read32(p);
  w.b.mem.write32(p + 4, 1);
  assert.equal(w.b.stats.refusals, {});
  assert.is(w.b.mem.read32(p + 4), 1);
  assert.is(w.b.mem.read32(p), (lo & ~1) >>> 0, 'P cleared, the rest kept');
  assert.is(w.b.access(UVA, ACCESS_READ, true).ok, false);
  // The low half follows: a valid entry again.
  w.b.mem.write32(p + 4, 0);
  w.b.mem.write32(p, lo);
  assert.ok(w.b.access(UVA, ACCESS_READ, true).ok);
});

s('PAE [item 10]: a changed L3 entry below 4 GiB is not reloaded (pae_flush_pgd): the stale PDPTE shows until the guest flushes', () => {
  const w = world(true);
  const u = userMm(w);
  const l3 = mfn(w, u.pgd) * 4096;
  assert.ok(w.b.access(UVA, ACCESS_READ, true).ok);
  // Slot 0 away: its pmd is freed, and free_page_type's flush reloads the PDPTEs.
  assert.is(w.b.hv.mmu_update([{ ptr: l3, val: 0n }]).rc, 0);
  assert.is(w.b.access(UVA, ACCESS_READ, true).ok, false);
  // Slot 0 back (revalidated, nothing freed, no flush): the processor still holds the empty PDPTE.
  assert.is(w.b.hv.mmu_update([{ ptr: l3, val: mkpgd(w, u.pmds[0]!, P) }]).rc, 0);
  assert.is(w.b.access(UVA, ACCESS_READ, true).ok, false, 'stale PDPTE: still not present');
  w.b.flush_tlb_user(); // the guest's CR3 reload
  assert.ok(w.b.access(UVA, ACCESS_READ, true).ok, 'after the reload');
});

s('PAE [items 11, 12]: a type change flushes unless a flush came since the count reached zero; free_page_type flushes; the last type stays and an update revalidates it', () => {
  const w = world(true);
  const u = userMm(w);
  const hv = w.b.hv;
  const d = w.b.domain;
  const f = w.D0 + 12;
  const m = mfn(w, f);
  const kpte = mfn(w, w.kpt) * 4096 + 8 * ((kva(w, f) >>> 12) & 511);
  const cr3 = (): number => w.b.stats.mmu.cr3Writes;
  // Read-only in the direct map: the writable reference goes, the count reaches zero.
  assert.is(hv.mmu_update([{ ptr: kpte, val: mkpte(w, f, P | (PAGE_KERNEL & ~2n)) }]).rc, 0);
  assert.is(d.frames.countOf(m), 0);
  let c = cr3();
  assert.is(hv.mmuext_op([{ cmd: 0, mfn: m }]).rc, 0, 'PIN_L1_TABLE');
  assert.is(cr3(), c + 1, 'writable -> l1 with no flush since: get_page_type flushes');
  c = cr3();
  assert.is(hv.mmuext_op([{ cmd: 4, mfn: m }]).rc, 0, 'UNPIN_TABLE');
  assert.is(cr3(), c + 1, 'free_page_type: one deferred flush at the end of the hypercall');
  assert.is(d.frames.typeOf(m), 1, 'the type stays l1 at count 0');
  // An update into the former L1 revalidates it and checks the entry as an L1 entry:
  // mapping a page table writable is refused (a plain frame would just be written).
  const r = hv.mmu_update([{ ptr: m * 4096, val: mkpte(w, u.pt, USER_RW) }]);
  assert.is(r.rc, -22);
  assert.match(r.refusal!.log.join(' / '), /Bad type \(saw l1 != exp writable\)/);
  assert.is(w.b.mem.read64(f * 4096), 0n);
  // Writable again: a type change, but the TLB was flushed after the count reached zero.
  c = cr3();
  assert.is(hv.mmu_update([{ ptr: kpte, val: mkpte(w, f, PAGE_KERNEL) }]).rc, 0);
  assert.is(cr3(), c, 'tlbflush_filter: no flush needed');
  assert.is(d.frames.typeOf(m), 7);
});

s.run();
