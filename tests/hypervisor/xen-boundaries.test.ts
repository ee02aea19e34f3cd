/**
 * A hostile guest at each of Xen's rules' exact boundaries and through each
 * same-frame fast path of mod_l1/l2/l3_entry (issue 14, gap 2), and a second,
 * independent test of each rule that was guarded by a single test. The Xen
 * invariant checker runs after every test (tests/harness.ts: a violation is
 * that test's named failure).
 *
 * Planted bugs (validate.ts, hole.ts) each test was verified against:
 *  - mod_l3_entry checked with the L2 disallow mask: a set_pud that keeps its
 *    L2 but adds RW, US, A, D or NX was accepted, and the next CR3 load
 *    stopped Xen with an internal error;
 *  - the same-frame fast path of mod_l1_entry not comparing RW: a read-only
 *    mapping of a page table made writable without a type reference;
 *  - the flag checks of mod_l1/l2_entry skipped on the same-frame fast path;
 *  - "PAE pgd must be below 4GB" off by one frame (> instead of >=);
 *  - Xen's first private L2 slot off by one.
 */
import * as assert from 'uvu/assert';
import { ACCESS_READ, ACCESS_WRITE, PTE_G, PTE_PAT, PTE_PS } from '../../emulator/paging-bits.js';
import { checkXenInvariants, EINVAL, MMUEXT_PIN_L3_TABLE, MMUEXT_UNPIN_TABLE, MMU_NORMAL_PT_UPDATE, XenBackend } from '../../hypervisor/xen/index.js';
import { suite } from '../harness.js';
import {
  alloc,
  expectRefusal,
  hx,
  KERNPG_TABLE,
  makeWorld,
  mfn,
  mkpgd,
  mkpmd,
  mkpte,
  P,
  pdep,
  pgdAlloc,
  ptep,
  RW,
  state,
  US,
  userMm,
  UVA,
  type XW,
} from './xen-world.js';

let current: XenBackend | null = null;
function world(pae: boolean, ...rest: Parameters<typeof makeWorld> extends [boolean, ...infer R] ? R : never): XW {
  const w = makeWorld(pae, ...rest);
  current = w.b;
  return w;
}

const s = suite('xen rules at their boundaries and fast paths');
s.after.each(() => {
  const b = current;
  current = null;
  if (b === null) return;
  const v = checkXenInvariants(b);
  if (v.length > 0) throw new Error(`Xen invariants violated after the test:\n  ${v.join('\n  ')}`);
});

const A = 0x20n;
const D = 0x40n;
const PWT = 0x8n;
const NX = 1n << 63n;

// ---- mod_l3_entry: same frame, new flags ----

// Guards: mod_l3_entry checked with the L2 disallow mask (accepts RW/US/A/D/NX on the same L2).
s('mod_l3_entry same-frame path: keeping the L2 but adding RW, US, A, D, PSE, G or NX is "Bad L3 flags"; nothing changes; CR3 still loads', () => {
  const w = world(true);
  const u = userMm(w);
  const slot = u.pgd * 4096 + 8 * 0;
  for (const [name, bit] of [['RW', RW], ['US', US], ['A', A], ['D', D], ['PSE', BigInt(PTE_PS)], ['G', BigInt(PTE_G)], ['NX', NX]] as const) {
    const before = state(w);
    const refusals = w.b.stats.refusals['Bad L3 flags …'] ?? 0;
    expectRefusal(() => w.b.set_pud(slot, mkpgd(w, u.pmds[0]!, P | bit)), /^Bad L3 flags /);
    assert.is(state(w), before, `${name}: nothing changed`);
    assert.is(w.b.stats.refusals['Bad L3 flags …'], refusals + 1, `${name}: counted`);
  }
  // The loaded L3 is still valid: CR3 reloads, the user page is reachable.
  w.b.write_cr3(u.pgd * 4096);
  assert.ok(w.b.access(UVA, ACCESS_READ, true).ok);
});

// Guards: the same L3 mask bug, through the raw hypercall on an L3 that is pinned but not loaded (independent of set_pud and of the PDPTE reload).
s('mmu_update of a pinned, unloaded L3 entry to the same L2 with RW or A: -EINVAL "Bad L3 flags"; the L3 still becomes the base', () => {
  const w = world(true);
  const { pgd, pmds } = pgdAlloc(w);
  const mm = { pgd: pgd * 4096 };
  w.b.activate_mm(w.initMm, mm); // pins it
  for (const bit of [RW, A]) {
    const before = state(w);
    const r = w.b.hv.mmu_update([{ ptr: mfn(w, pgd) * 4096 + 8 * 1 + MMU_NORMAL_PT_UPDATE, val: BigInt(mfn(w, pmds[1]!)) * 4096n | P | bit }]);
    assert.is(r.rc, -EINVAL);
    assert.match(r.refusal?.reason ?? '', /^Bad L3 flags /);
    assert.is(state(w), before);
  }
  w.b.write_cr3(pgd * 4096);
  assert.is(w.b.read_cr3(), pgd * 4096);
  assert.ok(w.b.access(0xc0000000 + 0x100 * 4096, ACCESS_READ, false).ok, 'the kernel mapping works through it');
});

// Guards: the same-frame path of mod_l3_entry taking or dropping a reference,
// not writing the entry, or reloading the PDPTEs behind the guest's back. In
// Xen 3.1.0 (xen/arch/x86/mm.c mod_l3_entry) that path returns right after
// UPDATE_ENTRY, before pae_flush_pgd (which for an L3 below 4 GiB reloads
// nothing anyway): the processor's PDPTE keeps the old flags until the
// guest's next CR3 load (the stale-PDPTE hazard, docs/hypervisor.md), and
// above 4 GiB Xen's low copy is not refreshed either (make_cr3 copies it
// again at the next base switch; a flush reloads the stale copy).
s('mod_l3_entry same-frame path with a legal flag (PWT): no reference changes; the loaded PDPTE stays stale until the next CR3 load', () => {
  const w = world(true);
  const u = userMm(w);
  const d = w.b.domain;
  const m = mfn(w, u.pmds[0]!);
  const c = d.frames.countOf(m);
  assert.is(d.mmu.cpu.pdpteLo[0]! & 0x8, 0, 'PDPTE 0 loaded without PWT');
  w.b.set_pud(u.pgd * 4096, mkpgd(w, u.pmds[0]!, P | PWT));
  assert.is(d.frames.countOf(m), c, 'no reference taken or dropped');
  assert.is(d.mmu.mem.read64(mfn(w, u.pgd) * 4096), mkpgd(w, u.pmds[0]!, P | PWT), 'the entry is written');
  assert.is(d.mmu.cpu.pdpteLo[0]! & 0x8, 0, 'PDPTE 0 not reloaded by Xen (stale)');
  assert.ok(w.b.access(UVA, ACCESS_READ, true).ok);
  w.b.write_cr3(u.pgd * 4096);
  assert.is(d.mmu.cpu.pdpteLo[0]! & 0x8, 0x8, 'the guest\'s CR3 load reloads PDPTE 0 with PWT');
  assert.ok(w.b.access(UVA, ACCESS_READ, true).ok);
});

s('mod_l3_entry same-frame path above 4 GiB (pae_extended_cr3): Xen\'s low copy and the PDPTE stay stale until the next CR3 load', () => {
  const w = world(true, { above4g: true, paeExtendedCr3: true });
  const d = w.b.domain;
  const high = w.b.mem.nrPages / 2 + 5;
  assert.ok(mfn(w, high) >= 0x100000);
  const { pgd, pmds } = pgdAlloc(w, high);
  assert.ok(mfn(w, pgd) >= 0x100000, 'the L3 is above 4 GiB');
  w.b.activate_mm(w.initMm, { pgd: pgd * 4096 });
  w.b.write_cr3(pgd * 4096);
  assert.is(d.mmu.cpu.cr3, d.lowL3 * 4096, 'the processor runs on Xen\'s low copy');
  const m = mfn(w, pmds[0]!);
  const c = d.frames.countOf(m);
  const old = mkpgd(w, pmds[0]!, P);
  assert.is(d.mmu.mem.read64(d.lowL3 * 4096), old);
  w.b.set_pud(pgd * 4096, mkpgd(w, pmds[0]!, P | PWT));
  assert.is(d.frames.countOf(m), c, 'no reference taken or dropped');
  assert.is(d.mmu.mem.read64(mfn(w, pgd) * 4096), mkpgd(w, pmds[0]!, P | PWT), 'the entry is written');
  assert.is(d.mmu.mem.read64(d.lowL3 * 4096), old, 'the low copy not refreshed on the fast path');
  assert.is(d.mmu.cpu.pdpteLo[0]! & 0x8, 0, 'PDPTE 0 not reloaded (stale)');
  // The same CR3 again is only a TLB flush (2.6.23 xen_write_cr3 ->
  // MMUEXT_TLB_FLUSH_LOCAL): the processor reloads from the stale copy.
  w.b.write_cr3(pgd * 4096);
  assert.is(d.mmu.mem.read64(d.lowL3 * 4096), old, 'a TLB flush does not copy the L3 again');
  assert.is(d.mmu.cpu.pdpteLo[0]! & 0x8, 0, 'PDPTE 0 still without PWT');
  // A real base switch and back: make_cr3 copies the L3 again.
  w.b.write_cr3(w.initMm.pgd);
  w.b.write_cr3(pgd * 4096);
  assert.is(d.mmu.cpu.cr3, d.lowL3 * 4096);
  assert.is(d.mmu.mem.read64(d.lowL3 * 4096), mkpgd(w, pmds[0]!, P | PWT), 'make_cr3 copies the L3 again');
  assert.is(d.mmu.cpu.pdpteLo[0]! & 0x8, 0x8, 'and PDPTE 0 is reloaded with PWT');
});

// ---- mod_l1_entry: same frame ----

// Guards: the mod_l1_entry fast path not comparing RW (a page table made writable without a type reference).
s('mod_l1_entry same frame, RO -> RW of a page-table frame: refused (it needs a writable type reference)', () => {
  for (const pae of [true, false]) {
    const w = world(pae);
    const u = userMm(w);
    const va = UVA + 4096;
    // A read-only mapping of the L1 itself is allowed.
    w.b.set_pte_at(u.mm, va, ptep(w, u.pt, va), mkpte(w, u.pt, P | US));
    assert.ok(w.b.access(va, ACCESS_READ, true).ok);
    const before = state(w);
    expectRefusal(() => w.b.set_pte_at(u.mm, va, ptep(w, u.pt, va), mkpte(w, u.pt, P | US | RW)), /^Error getting mfn/);
    assert.is(state(w), before);
    assert.is(w.b.access(va, ACCESS_WRITE, true).ok, false, 'still not writable');
    current = null;
    assert.equal(checkXenInvariants(w.b), []);
  }
});

// Guards: the same-frame fast path of mod_l1_entry RO -> RW not taking the writable reference (a data page: counts must move).
s('mod_l1_entry same frame, RO -> RW of a data page takes one writable reference; RW -> RO drops it', () => {
  for (const pae of [true, false]) {
    const w = world(pae);
    const u = userMm(w);
    const d = w.b.domain;
    const va = UVA + 2 * 4096;
    const data = w.D0 + 9;
    w.b.set_pte_at(u.mm, va, ptep(w, u.pt, va), mkpte(w, data, P | US));
    const c = d.frames.countOf(mfn(w, data));
    w.b.set_pte_at(u.mm, va, ptep(w, u.pt, va), mkpte(w, data, P | US | RW));
    assert.is(d.frames.countOf(mfn(w, data)), c + 1);
    w.b.set_pte_at(u.mm, va, ptep(w, u.pt, va), mkpte(w, data, P | US));
    assert.is(d.frames.countOf(mfn(w, data)), c);
    current = null;
    assert.equal(checkXenInvariants(w.b), []);
  }
});

// Guards: mod_l1_entry's flag check skipped when the frame does not change.
s('mod_l1_entry same frame, adding GLOBAL or PAT: "Bad L1 flags"', () => {
  for (const pae of [true, false]) {
    const w = world(pae);
    const u = userMm(w);
    for (const bit of [BigInt(PTE_G), BigInt(PTE_PAT)]) {
      const before = state(w);
      expectRefusal(() => w.b.set_pte_at(u.mm, UVA, ptep(w, u.pt, UVA), mkpte(w, w.D0 + 8, P | RW | US | bit)), /^Bad L1 flags /);
      assert.is(state(w), before);
    }
    current = null;
    assert.equal(checkXenInvariants(w.b), []);
  }
});

// ---- mod_l2_entry: same frame, and Xen's first slot ----

// Guards: mod_l2_entry's flag check skipped when the frame does not change.
s('mod_l2_entry same frame, adding PSE or GLOBAL: "Bad L2 flags"', () => {
  for (const pae of [true, false]) {
    const w = world(pae);
    const u = userMm(w);
    const p = pdep(w, u.pgd, u.pmds, UVA);
    for (const bit of [BigInt(PTE_PS), BigInt(PTE_G)]) {
      const before = state(w);
      expectRefusal(() => w.b.set_pmd(p, mkpmd(w, u.pt, P | RW | US | bit)), /^Bad L2 flags /);
      assert.is(state(w), before);
    }
    current = null;
    assert.equal(checkXenInvariants(w.b), []);
  }
});

// Guards: Xen's first private L2 slot off by one (the guest could overwrite the hole's first entry, or lose its last slot).
s('Xen\'s private L2 slots start exactly at hole.firstSlot: the slot before is the guest\'s, that slot is refused', () => {
  for (const pae of [true, false]) {
    const w = world(pae);
    const u = userMm(w);
    const first = w.b.domain.hole.firstSlot;
    const l2 = pae ? u.pmds[3]! : u.pgd;
    const es = pae ? 8 : 4;
    const pt = alloc(w);
    w.b.alloc_pt(pt);
    w.b.set_pmd(l2 * 4096 + es * (first - 1), mkpmd(w, pt, KERNPG_TABLE));
    const before = state(w);
    expectRefusal(
      () => w.b.set_pmd(l2 * 4096 + es * first, mkpmd(w, pt, KERNPG_TABLE)),
      `Illegal L2 update attempt in Xen-private area ${hx(mfn(w, l2) * 4096 + es * first)}`,
    );
    assert.is(state(w), before);
    assert.ok(w.b.domain.hole.isIntact(mfn(w, l2)));
    if (pae) {
      // In an L2 without Xen's mappings (slot 0-2 pmds), every slot is the guest's.
      w.b.set_pmd(u.pmds[0]! * 4096 + 8 * 511, mkpmd(w, pt, KERNPG_TABLE));
      w.b.set_pmd(u.pmds[0]! * 4096 + 8 * 511, 0n);
    }
    w.b.set_pmd(l2 * 4096 + es * (first - 1), 0n);
    current = null;
    assert.equal(checkXenInvariants(w.b), []);
  }
});

// ---- "PAE pgd must be below 4GB" at exactly nrPages/2 ----

// Guards: the below-4 GiB rule off by one frame (mfn > 0x100000 instead of >=).
s('below 4 GiB, exactly at the line: an L3 at mfn 0xfffff is pinned and loaded; at 0x100000 and 0x100001 it is refused (activate_mm)', () => {
  for (const [delta, ok] of [[-1, true], [0, false], [1, false]] as const) {
    const w = world(true, { above4g: true, paeExtendedCr3: false });
    const pfn = w.b.mem.nrPages / 2 + delta;
    assert.is(mfn(w, pfn), 0x100000 + delta, 'the p2m puts pfn nrPages/2 at mfn 0x100000');
    const { pgd } = pgdAlloc(w, pfn);
    const before = state(w);
    if (ok) {
      w.b.activate_mm(w.initMm, { pgd: pgd * 4096 });
      w.b.write_cr3(pgd * 4096);
      assert.is(w.b.domain.mmu.cpu.cr3, mfn(w, pgd) * 4096, 'loaded directly, no low copy');
    } else {
      expectRefusal(() => w.b.activate_mm(w.initMm, { pgd: pgd * 4096 }), `PAE pgd must be below 4GB (0x${hx(0x100000 + delta)} >= 0x100000)`);
      assert.is(state(w), before);
    }
    current = null;
    assert.equal(checkXenInvariants(w.b), []);
  }
});

// Guards: the same off-by-one, independently: the raw pin hypercall on the L3 frames either side of the line.
s('below 4 GiB, exactly at the line, by MMUEXT_PIN_L3_TABLE: 0xfffff pins (and unpins), 0x100000 is -EINVAL', () => {
  const w = world(true, { above4g: true, paeExtendedCr3: false });
  const half = w.b.mem.nrPages / 2;
  for (const [pfn, ok] of [[half - 1, true], [half, false]] as const) {
    const { pgd } = pgdAlloc(w, pfn);
    const m = mfn(w, pgd);
    const before = state(w);
    const r = w.b.hv.mmuext_op([{ cmd: MMUEXT_PIN_L3_TABLE, mfn: m }]);
    if (ok) {
      assert.is(r.rc, 0, `pin 0x${hx(m)}`);
      assert.ok(w.b.domain.frames.get(m)?.pinned);
      assert.is(w.b.hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: m }]).rc, 0);
    } else {
      assert.is(r.rc, -EINVAL);
      assert.match(r.refusal?.reason ?? '', /^PAE pgd must be below 4GB/);
      assert.is(state(w), before);
    }
  }
  current = null;
  assert.equal(checkXenInvariants(w.b), []);
});

s.run();
