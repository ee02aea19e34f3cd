/**
 * A hostile guest against the Xen backend: every refusal of issue 3 provoked
 * through the paravirt interface (or through the hypercalls directly where
 * the interface cannot express the request), asserting Xen's exact reason,
 * that hypervisor and guest state are unchanged afterwards (type counts,
 * pins, page-table memory), and that a follow-up valid operation still works
 * (no count leaked). The invariant checker runs after every test.
 */
import { suite } from '../harness.js';
import * as assert from 'uvu/assert';
import { KernelBug } from '../../hypervisor/types.js';

/** A store the processor faults on and Xen bounces: the guest kernel's oops (do_page_fault, no_context). */
function expectOops(fn: () => void, re: RegExp): KernelBug {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof KernelBug)) throw e;
    assert.match(e.message, re);
    return e;
  }
  assert.unreachable('expected the guest kernel to oops');
  throw new Error('unreachable');
}
import { ACCESS_READ, ACCESS_WRITE, PFEC_P, PFEC_U, PFEC_W, PTE_G, PTE_PAT, PTE_PS } from '../../emulator/paging-bits.js';
import {
  checkXenInvariants,
  EINVAL,
  MMU_NORMAL_PT_UPDATE,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L3_TABLE,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_UNPIN_TABLE,
  VMASST_CMD_DISABLE,
  VMASST_TYPE_WRITABLE_PAGETABLES,
  XenBackend,
  type MulticallEntry,
} from '../../hypervisor/xen/index.js';
import {
  alloc,
  checkBothPasses,
  expectRefusal,
  hx,
  KERNPG_TABLE,
  kva,
  makeWorld,
  mfn,
  mkpgd,
  mkpmd,
  mkpte,
  P,
  PAGE_KERNEL,
  PAGE_TABLE,
  pdep,
  pgdAlloc,
  prepatchPgd,
  ptep,
  RW,
  state,
  US,
  USER_RW,
  userMm,
  UVA,
  type XW,
} from './xen-world.js';

const G = BigInt(PTE_G);
const PS = BigInt(PTE_PS);
const PAT = BigInt(PTE_PAT);

let current: XenBackend | null = null;
function world(pae: boolean, ...rest: Parameters<typeof makeWorld> extends [boolean, ...infer R] ? R : never): XW {
  const w = makeWorld(pae, ...rest);
  current = w.b;
  return w;
}
function invariantsAfterEach(): void {
  const b = current;
  current = null;
  if (b === null) return;
  const v = checkBothPasses(b);
  if (v.length > 0) throw new Error(`Xen invariants violated after the test:\n  ${v.join('\n  ')}`);
}

// =====================================================================
const pae = suite('xen hostile guest (PAE)');
pae.after.each(invariantsAfterEach);

pae('pre-patch guest: a second pgd sharing the kernel pmd is refused, "PAE L3 3rd slot is shared"', () => {
  const w = world(true);
  const { pgd } = prepatchPgd(w);
  const before = state(w);
  const refusals = w.b.stats.refusals['PAE L3 3rd slot is shared'] ?? 0;
  const r = expectRefusal(() => w.b.activate_mm(w.initMm, { pgd: pgd * 4096 }), 'PAE L3 3rd slot is shared');
  assert.is(r.op, 'mmuext_op PIN_L3_TABLE');
  assert.ok(r.log.includes('Failure in alloc_l3_table: entry 4'), r.log.join(' / '));
  assert.ok(r.log.includes(`Error while pinning mfn ${hx(mfn(w, pgd))}`), r.log.join(' / '));
  assert.is(w.b.stats.refusals['PAE L3 3rd slot is shared'], refusals + 1);
  assert.is(state(w), before, 'state unchanged');
  assert.not.ok(w.b.isPinnedPage(pgd));
  // Loading it without pinning fails the same way (NEW_BASEPTR validates the tree).
  const r2 = expectRefusal(() => w.b.write_cr3(pgd * 4096), 'PAE L3 3rd slot is shared');
  assert.ok(r2.log.includes(`Error while installing new baseptr ${hx(mfn(w, pgd))}`));
  assert.is(state(w), before, 'state unchanged after NEW_BASEPTR');
  // The patched kernel's pgd (own kernel pmd) is accepted.
  const u = userMm(w);
  assert.ok(w.b.access(UVA, ACCESS_WRITE, true).ok);
  assert.is(w.b.read_cr3(), u.pgd * 4096);
});

pae('pin makes the tree read-only in the direct map; a refused pin puts it back; exit_mmap makes it writable', () => {
  const w = world(true);
  const pre = prepatchPgd(w);
  const good = pgdAlloc(w);
  // Map both pgds and their user pmds in the direct map, read-write (like lowmem).
  const frames = [pre.pgd, ...pre.pmds.slice(0, 3), good.pgd, ...good.pmds];
  for (const f of frames) w.b.set_pte(ptep(w, w.kpt, kva(w, f)), mkpte(w, f, PAGE_KERNEL));
  const rw = (f: number): boolean => (w.b.mem.read64(ptep(w, w.kpt, kva(w, f))) & RW) !== 0n;
  assert.ok(frames.every(rw));
  const before = state(w);
  expectRefusal(() => w.b.activate_mm(w.initMm, { pgd: pre.pgd * 4096 }), 'PAE L3 3rd slot is shared');
  assert.is(state(w), before, 'the direct map is read-write again, nothing typed');
  w.b.activate_mm(w.initMm, { pgd: good.pgd * 4096 });
  for (const f of [good.pgd, ...good.pmds]) {
    assert.not.ok(rw(f), `pfn ${hx(f)} read-only while pinned`);
    assert.ok(w.b.isPinnedPage(f));
  }
  assert.is(w.b.access(kva(w, good.pgd), ACCESS_WRITE, false).ok, false, 'the kernel cannot write its pgd');
  w.b.exit_mmap({ pgd: good.pgd * 4096 });
  for (const f of [good.pgd, ...good.pmds]) assert.ok(rw(f), `pfn ${hx(f)} writable again`);
  assert.ok(w.b.access(kva(w, good.pgd), ACCESS_WRITE, false).ok);
});

pae('the slot-3 L2 cannot also be a plain L2: "Bad type (saw l2|pae_xen_l2 != exp l2)"', () => {
  const w = world(true);
  const { pgd, pmds } = pgdAlloc(w);
  const kpmd = w.basePmds[3]!; // swapper's kernel pmd, typed L2 + pae_xen_l2
  w.b.set_pud(pgd * 4096, mkpgd(w, kpmd, P)); // untyped pgd: a plain store
  const before = state(w);
  expectRefusal(
    () => w.b.activate_mm(w.initMm, { pgd: pgd * 4096 }),
    `Bad type (saw l2|pae_xen_l2 != exp l2) for mfn ${hx(mfn(w, kpmd))} (pfn ${hx(kpmd)})`,
  );
  assert.is(state(w), before);
  w.b.set_pud(pgd * 4096, mkpgd(w, pmds[0]!, P));
  w.b.activate_mm(w.initMm, { pgd: pgd * 4096 });
});

pae('a 32-byte pgd not at offset 0 of its frame is refused (CR3, activate_mm, setup)', () => {
  const w = world(true);
  const { pgd } = pgdAlloc(w);
  const before = state(w);
  const gpa = pgd * 4096 + 32;
  const want = `pgd not at offset 0 of its own frame: 0x${hx(gpa)} (Xen types whole frames; a base pointer is an mfn)`;
  const r = expectRefusal(() => w.b.write_cr3(gpa), want);
  assert.is(r.rule, 'pgd not at offset 0 of its own frame …');
  expectRefusal(() => w.b.activate_mm(w.initMm, { pgd: gpa }), want);
  expectRefusal(() => w.b.dup_mmap(w.initMm, { pgd: gpa }), want);
  expectRefusal(() => w.b.pagetable_setup_done(gpa), want);
  assert.is(w.b.stats.refusals['pgd not at offset 0 of its own frame …'], 4);
  assert.is(state(w), before);
  w.b.activate_mm(w.initMm, { pgd: pgd * 4096 });
  w.b.write_cr3(pgd * 4096);
  assert.is(w.b.read_cr3(), pgd * 4096);
});

pae('slot 3 empty: only "Failure in alloc_l3_table: entry 3", as Xen 3.1 logs it [item 14]', () => {
  const w = world(true);
  const pgd = alloc(w);
  for (let i = 0; i < 3; i++) {
    const pmd = alloc(w);
    w.b.alloc_pd(pmd);
    w.b.set_pud(pgd * 4096 + 8 * i, mkpgd(w, pmd, P));
  }
  const before = state(w);
  const r = expectRefusal(() => w.b.activate_mm(w.initMm, { pgd: pgd * 4096 }), 'Failure in alloc_l3_table: entry 3');
  // alloc_l3_table checks slot 3 itself; create_pae_xen_mappings' "PAE L3
  // 3rd slot is empty" is never reached from there.
  assert.ok(!r.log.includes('PAE L3 3rd slot is empty'), r.log.join(' / '));
  assert.is(r.log[1]?.startsWith('Error while validating mfn'), true);
  assert.is(state(w), before);
  userMm(w);
});

pae('slot 3 with PDPTE must-be-zero bits: "Failure in alloc_l3_table: entry 3"', () => {
  const w = world(true);
  const { pgd, pmds } = pgdAlloc(w);
  w.b.mem.write64(pgd * 4096 + 24, mkpgd(w, pmds[3]!, P | RW));
  const before = state(w);
  expectRefusal(() => w.b.activate_mm(w.initMm, { pgd: pgd * 4096 }), 'Failure in alloc_l3_table: entry 3');
  assert.is(state(w), before);
  w.b.mem.write64(pgd * 4096 + 24, mkpgd(w, pmds[3]!, P));
  w.b.activate_mm(w.initMm, { pgd: pgd * 4096 });
  assert.ok(w.b.isPinnedPage(pgd));
});

pae('PDPTE with RW/US/A: "Bad L3 flags", on pin and on set_pud of a pinned pgd', () => {
  const w = world(true);
  const { pgd, pmds } = pgdAlloc(w);
  w.b.mem.write64(pgd * 4096, mkpgd(w, pmds[0]!, P | US));
  const before = state(w);
  const r = expectRefusal(() => w.b.activate_mm(w.initMm, { pgd: pgd * 4096 }), 'Bad L3 flags 4');
  assert.ok(r.log.includes('Failure in alloc_l3_table: entry 0'));
  assert.is(state(w), before);
  w.b.mem.write64(pgd * 4096, mkpgd(w, pmds[0]!, P));
  w.b.activate_mm(w.initMm, { pgd: pgd * 4096 });
  // Now pinned: a PDPTE update with RW or A is refused and nothing changes.
  const spare = alloc(w);
  w.b.alloc_pd(spare);
  const pinned = state(w);
  expectRefusal(() => w.b.set_pud(pgd * 4096 + 8, mkpgd(w, spare, P | RW)), 'Bad L3 flags 2');
  expectRefusal(() => w.b.set_pud(pgd * 4096 + 8, mkpgd(w, spare, P | 0x20n)), 'Bad L3 flags 20');
  assert.is(state(w), pinned);
  w.b.set_pud(pgd * 4096 + 8, mkpgd(w, spare, P));
  assert.is(w.b.pgd_val(w.b.mem.read64(pgd * 4096 + 8)), (BigInt(spare) << 12n) | P);
});

pae('updates to L3 slot 3 from the guest are refused', () => {
  const w = world(true);
  const u = userMm(w);
  const spare = alloc(w);
  w.b.alloc_pd(spare);
  const before = state(w);
  const ma = mfn(w, u.pgd) * 4096 + 24;
  expectRefusal(
    () => w.b.set_pud(u.pgd * 4096 + 24, mkpgd(w, spare, P)),
    `(no log line) mod_l3_entry: update of PAE L3 slot 3 refused at ${hx(ma)}`,
  );
  expectRefusal(() => w.b.set_pud(u.pgd * 4096 + 24, 0n), /^\(no log line\) mod_l3_entry: update of PAE L3 slot 3 refused/);
  assert.is(state(w), before);
  w.b.set_pud(u.pgd * 4096 + 16, mkpgd(w, spare, P));
});

pae('PSE (and GLOBAL) in an L2 entry: "Bad L2 flags"; no large pages for a PV guest', () => {
  const w = world(true);
  const u = userMm(w);
  assert.is(w.b.largePagesAllowed, false);
  const before = state(w);
  const e = pdep(w, u.pgd, u.pmds, 0x40000000);
  expectRefusal(() => w.b.set_pmd(e, mkpmd(w, 0x120, PAGE_TABLE | PS)), 'Bad L2 flags 80');
  const pt = alloc(w);
  w.b.alloc_pt(pt);
  expectRefusal(() => w.b.set_pmd(e, mkpmd(w, pt, PAGE_TABLE | G)), 'Bad L2 flags 100');
  assert.is(state(w), before);
  w.b.set_pmd(e, mkpmd(w, pt, PAGE_TABLE));
});

pae('PAT/GLOBAL/high bits in an L1 entry: "Bad L1 flags" (mmu_update and trapped store)', () => {
  const w = world(true);
  const u = userMm(w);
  assert.is(w.b.globalPagesAllowed, false);
  const before = state(w);
  const p = ptep(w, u.pt, UVA + 0x1000);
  expectRefusal(() => w.b.set_pte_at(u.mm, UVA + 0x1000, p, mkpte(w, w.D0 + 9, USER_RW | G)), 'Bad L1 flags 100');
  const traps = w.b.stats.traps['ptwr_emulate'] ?? 0;
  expectRefusal(() => w.b.set_pte(p, mkpte(w, w.D0 + 9, USER_RW | PAT)), 'Bad L1 flags 80');
  assert.ok((w.b.stats.traps['ptwr_emulate'] ?? 0) > traps, 'the store trapped');
  expectRefusal(() => w.b.set_pte_atomic(p, mkpte(w, w.D0 + 9, USER_RW) | (1n << 52n)), 'Bad L1 flags 1000');
  assert.is(state(w), before);
  w.b.set_pte(p, mkpte(w, w.D0 + 9, USER_RW));
  assert.ok(w.b.access(UVA + 0x1000, ACCESS_WRITE, true).ok);
});

pae('a page-table frame mapped writable: "Error getting mfn … from L1 entry …"', () => {
  const w = world(true);
  const u = userMm(w);
  const before = state(w);
  const target = u.pmds[0]!; // an L2
  const v = mkpte(w, target, USER_RW);
  const text = `Error getting mfn ${hx(mfn(w, target))} (pfn ${hx(target)}) from L1 entry ${v.toString(16).padStart(16, '0')} for dom1`;
  const r = expectRefusal(() => w.b.set_pte_at(u.mm, UVA + 0x2000, ptep(w, u.pt, UVA + 0x2000), v), text);
  assert.is(r.log[1], `Bad type (saw l2 != exp writable) for mfn ${hx(mfn(w, target))} (pfn ${hx(target)})`);
  // The same through the trapped store, and into the kernel direct map.
  expectRefusal(() => w.b.set_pte(ptep(w, u.pt, UVA + 0x2000), v), text);
  expectRefusal(
    () => w.b.set_pte(ptep(w, w.kpt, kva(w, u.pt)), mkpte(w, u.pt, PAGE_KERNEL)),
    /^Error getting mfn .* from L1 entry /,
  );
  assert.is(state(w), before);
  // Read-only is fine (Linux maps page tables read-only in its direct map).
  w.b.set_pte(ptep(w, w.kpt, kva(w, u.pt)), mkpte(w, u.pt, P | 0x20n));
  const r2 = w.b.access(kva(w, u.pt), ACCESS_READ, false);
  assert.ok(r2.ok);
  assert.equal(w.b.access(kva(w, u.pt), ACCESS_WRITE, false), {
    ok: false,
    errorCode: PFEC_P | PFEC_W,
    cr2: kva(w, u.pt),
  });
});

pae('a pin whose tree maps a page table writable is refused, nothing typed', () => {
  const w = world(true);
  const { pgd, pmds } = pgdAlloc(w);
  const pt = alloc(w);
  w.b.alloc_pt(pt);
  w.b.set_pmd(pdep(w, pgd, pmds, UVA), mkpmd(w, pt, PAGE_TABLE));
  w.b.set_pte(ptep(w, pt, UVA), mkpte(w, pgd, USER_RW)); // untyped yet: a plain store
  const before = state(w);
  const r = expectRefusal(() => w.b.activate_mm(w.initMm, { pgd: pgd * 4096 }), /^Error getting mfn /);
  assert.ok(r.log.includes(`Failure in alloc_l1_table: entry ${(UVA >>> 12) & 511}`), r.log.join(' / '));
  assert.ok(r.log.some((l) => l.startsWith('Failure in alloc_l2_table: entry ')));
  assert.ok(r.log.includes('Failure in alloc_l3_table: entry 0'));
  assert.is(state(w), before);
  w.b.set_pte(ptep(w, pt, UVA), mkpte(w, w.D0 + 8, USER_RW));
  w.b.activate_mm(w.initMm, { pgd: pgd * 4096 });
  w.b.write_cr3(pgd * 4096);
  assert.ok(w.b.access(UVA, ACCESS_WRITE, true).ok);
});

pae('a pte page that is mapped writable cannot become an L1: "Bad type (saw writable != exp l1)"', () => {
  const w = world(true);
  const u = userMm(w);
  const data = w.b.domain.p2m.pfnToMfn(w.D0 + 4); // mapped RW by the direct map
  const before = state(w);
  expectRefusal(
    () => w.b.set_pmd(pdep(w, u.pgd, u.pmds, 0x40000000), mkpmd(w, w.D0 + 4, PAGE_TABLE)),
    `Bad type (saw writable != exp l1) for mfn ${hx(data)} (pfn ${hx(w.D0 + 4)})`,
  );
  assert.is(state(w), before);
  // Once the direct map no longer maps it writable, the same frame can become a page table.
  w.b.set_pte(ptep(w, w.kpt, kva(w, w.D0 + 4)), 0n);
  w.b.mem.zeroPage(w.D0 + 4);
  w.b.alloc_pt(w.D0 + 4);
  w.b.set_pmd(pdep(w, u.pgd, u.pmds, 0x40000000), mkpmd(w, w.D0 + 4, PAGE_TABLE));
  assert.is(w.b.domain.frames.typeOf(data), 1);
});

pae('updates into Xen\'s slots of the kernel pmd: "Illegal L2 update attempt in Xen-private area"', () => {
  const w = world(true);
  const u = userMm(w);
  const pt = alloc(w);
  w.b.alloc_pt(pt);
  const before = state(w);
  for (const slot of [428, 450, 511]) {
    const ma = mfn(w, u.pmds[3]!) * 4096 + 8 * slot;
    expectRefusal(
      () => w.b.set_pmd(u.pmds[3]! * 4096 + 8 * slot, mkpmd(w, pt, KERNPG_TABLE)),
      `Illegal L2 update attempt in Xen-private area ${hx(ma)}`,
    );
  }
  // Slot 427 (just below HYPERVISOR_VIRT_START) is the guest's.
  assert.is(state(w), before);
  w.b.set_pmd(u.pmds[3]! * 4096 + 8 * 427, mkpmd(w, pt, KERNPG_TABLE));
});

pae('the hole: Xen\'s entries in every slot-3 L2, invisible and unchangeable for the guest', () => {
  const w = world(true);
  const u = userMm(w);
  const d = w.b.domain;
  assert.is(d.hole.start, 0xf5800000);
  assert.is(w.b.reservedTop, 168 * 1024 * 1024 + 2 * 4096);
  for (const pmd of [w.basePmds[3]!, u.pmds[3]!]) {
    assert.ok(d.hole.isIntact(mfn(w, pmd)), `hole in ${hx(pmd)}`);
    // The guest reads Xen's entries back as frames it does not own.
    assert.is(w.b.pmd_val(w.b.mem.read64(pmd * 4096 + 8 * 428)) >> 12n, 0xffffffn);
  }
  for (const user of [false, true]) {
    for (const kind of [ACCESS_READ, ACCESS_WRITE] as const) {
      const r = w.b.access(0xf5800000, kind, user);
      assert.is(r.ok, false, `access ${kind} user=${user}`);
      // Beyond the guest's segment limit: #GP(0), not #PF [item 15].
      assert.equal(r, { ok: false, fault: 'GP', errorCode: 0 });
    }
  }
  assert.is(w.b.probe(0xffffe000, ACCESS_READ, false).ok, false);
  // A direct store into Xen's slots is a store into an L2 through its
  // read-only direct-map pte: ptwr emulates only L1s, so the #PF is bounced
  // to the guest, whose kernel oopses (no_context).
  const before = state(w);
  const b0 = w.b.stats.traps['page_fault_bounce'] ?? 0;
  expectOops(() => w.b.mem.write64(u.pmds[3]! * 4096 + 8 * 500, 0n), /unable to handle kernel paging request at virtual address c0[0-9a-f]{6}/);
  assert.is(w.b.stats.traps['page_fault_bounce'], b0 + 1);
  assert.is(state(w), before);
  assert.ok(d.hole.isIntact(mfn(w, u.pmds[3]!)));
  // Just below the hole is the guest's (not mapped here: a plain #PF).
  assert.equal(w.b.access(0xf57ff000, ACCESS_READ, false), { ok: false, errorCode: 0, cr2: 0xf57ff000 });
});

pae('an L3 above 4 GiB: "PAE pgd must be below 4GB" without pae_extended_cr3; a low copy with it', () => {
  for (const ext of [false, true]) {
    const w = world(true, { above4g: true, paeExtendedCr3: ext });
    const d = w.b.domain;
    // identity above 4 GiB: pfns >= nrPages/2 sit at mfn >= 0x100000.
    const high = w.b.mem.nrPages / 2 + 5;
    assert.ok(mfn(w, high) >= 0x100000);
    const { pgd } = pgdAlloc(w, high);
    const before = state(w);
    if (!ext) {
      const r = expectRefusal(
        () => w.b.activate_mm(w.initMm, { pgd: pgd * 4096 }),
        `PAE pgd must be below 4GB (0x${hx(mfn(w, pgd))} >= 0x100000)`,
      );
      assert.is(r.rule, 'PAE pgd must be below 4GB');
      expectRefusal(() => w.b.write_cr3(pgd * 4096), /^PAE pgd must be below 4GB/);
      assert.is(state(w), before);
    } else {
      w.b.activate_mm(w.initMm, { pgd: pgd * 4096 });
      w.b.write_cr3(pgd * 4096);
      assert.is(d.mmu.cpu.cr3, d.lowL3 * 4096, 'the processor runs on Xen\'s low copy');
      assert.is(w.b.read_cr3(), pgd * 4096, 'the guest sees its own pgd');
      assert.ok(w.b.access(kva(w, w.D0 + 3), ACCESS_READ, false).ok);
      // An L3 update of the loaded pgd refreshes the low copy.
      const spare = alloc(w);
      w.b.alloc_pd(spare);
      w.b.set_pud(pgd * 4096 + 8, mkpgd(w, spare, P));
      assert.is(d.mmu.mem.read64(d.lowL3 * 4096 + 8), mkpgd(w, spare, P));
    }
    assert.equal(checkXenInvariants(w.b), []);
  }
});

pae('direct hypercalls: "Mfn … already pinned", "Mfn … not pinned", "Error while pinning mfn …"', () => {
  const w = world(true);
  const u = userMm(w);
  const hv = w.b.hv;
  const before = state(w);
  const sw = mfn(w, w.base);
  let r = hv.mmuext_op([{ cmd: MMUEXT_PIN_L3_TABLE, mfn: sw }]);
  assert.is(r.rc, -EINVAL);
  assert.is(r.refusal?.reason, `Mfn ${hx(sw)} already pinned`);
  const pmd0 = mfn(w, u.pmds[0]!); // typed L2, not pinned
  r = hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: pmd0 }]);
  assert.is(r.refusal?.reason, `Mfn ${hx(pmd0)} not pinned`);
  // PIN_L1 of an L2: Xen stays silent about the type (linear page-table case): only the pin line.
  r = hv.mmuext_op([{ cmd: MMUEXT_PIN_L1_TABLE, mfn: pmd0 }]);
  assert.is(r.refusal?.reason, `Error while pinning mfn ${hx(pmd0)}`);
  // PIN_L4 on an x86_32 PAE hypervisor: ignored, and the op succeeds [item 13].
  r = hv.mmuext_op([{ cmd: MMUEXT_PIN_L4_TABLE, mfn: sw }]);
  assert.equal(r, { rc: 0, done: 1 });
  assert.is(state(w), before);
  // A valid pin of an L1 and its unpin leave the counts as they were.
  const pt = mfn(w, u.pt);
  const c = w.b.domain.frames.countOf(pt);
  assert.is(hv.mmuext_op([{ cmd: MMUEXT_PIN_L1_TABLE, mfn: pt }]).rc, 0);
  assert.is(w.b.domain.frames.countOf(pt), c + 1);
  assert.is(hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: pt }]).rc, 0);
  assert.is(state(w), before);
});

pae('NEW_BASEPTR of a frame that cannot be a root: "Error while installing new baseptr …"', () => {
  const w = world(true);
  const u = userMm(w);
  const hv = w.b.hv;
  const before = state(w);
  const pmd0 = mfn(w, u.pmds[0]!);
  let r = hv.mmuext_op([{ cmd: MMUEXT_NEW_BASEPTR, mfn: pmd0 }]);
  assert.is(r.refusal?.reason, `Bad type (saw l2 != exp l3) for mfn ${hx(pmd0)} (pfn ${hx(u.pmds[0]!)})`);
  assert.is(r.refusal?.log.at(-1), `Error while installing new baseptr ${hx(pmd0)}`);
  const xen = w.b.domain.hole.holeL1;
  r = hv.mmuext_op([{ cmd: MMUEXT_NEW_BASEPTR, mfn: xen }]);
  assert.equal(r.refusal?.log, [`Could not get page ref for pfn ${hx(xen)}`, `Error while installing new baseptr ${hx(xen)}`]);
  assert.is(state(w), before);
  w.b.write_cr3(w.base * 4096);
  assert.is(w.b.read_cr3(), w.base * 4096);
});

pae('alloc_pd, alloc_pd_clone and release_pd are nops (paravirt_nop in 2.6.23), an unannounced release_pd included [item 1]', () => {
  const w = world(true);
  const { pgd } = pgdAlloc(w);
  const before = state(w);
  const calls = { ...w.b.stats.hypercalls };
  w.b.release_pd(pgd); // never announced: the seed's pgd_dtor
  w.b.alloc_pd(pgd);
  w.b.alloc_pd_clone(pgd, w.base, 0, 4);
  w.b.release_pd(pgd);
  assert.equal(w.b.stats.refusals, {});
  assert.equal(w.b.stats.hypercalls, calls, 'no hypercall');
  assert.ok(w.b.isDirectMapWritable(pgd), 'the pd stays writable in the direct map');
  assert.equal(checkXenInvariants(w.b), []);
  assert.is(state(w), before);
});


pae('mmu_update stops at the first failure and reports how many were done', () => {
  const w = world(true);
  const u = userMm(w);
  const hv = w.b.hv;
  const ma = (va: number): number => mfn(w, u.pt) * 4096 + 8 * ((va >>> 12) & 511) + MMU_NORMAL_PT_UPDATE;
  const ok1 = mkpte(w, w.D0 + 10, USER_RW);
  const bad = mkpte(w, w.D0 + 11, USER_RW | G);
  const r = hv.mmu_update([
    { ptr: ma(UVA + 0x3000), val: ok1 },
    { ptr: ma(UVA + 0x4000), val: bad },
    { ptr: ma(UVA + 0x5000), val: ok1 },
  ]);
  assert.is(r.rc, -EINVAL);
  assert.is(r.done, 1);
  assert.is(r.refusal?.reason, 'Bad L1 flags 100');
  assert.is(w.b.mem.read64(ptep(w, u.pt, UVA + 0x3000)), ok1);
  assert.is(w.b.mem.read64(ptep(w, u.pt, UVA + 0x4000)), 0n);
  assert.is(w.b.mem.read64(ptep(w, u.pt, UVA + 0x5000)), 0n, 'not reached');
  // An unknown command.
  const r2 = hv.mmu_update([{ ptr: ma(UVA) + 5, val: 0n }]);
  assert.is(r2.refusal?.reason, 'Invalid page update command 5');
});

pae('multicall runs every entry, writes each result back and goes on after a failure', () => {
  const w = world(true);
  const u = userMm(w);
  const hv = w.b.hv;
  const ma = (va: number): number => mfn(w, u.pt) * 4096 + 8 * ((va >>> 12) & 511);
  const good = mkpte(w, w.D0 + 12, USER_RW);
  const entries: MulticallEntry[] = [
    { op: 'mmu_update', reqs: [{ ptr: ma(UVA + 0x6000), val: good }] },
    { op: 'mmu_update', reqs: [{ ptr: ma(UVA + 0x7000), val: mkpte(w, u.pmds[0]!, USER_RW) }] },
    { op: 'mmu_update', reqs: [{ ptr: ma(UVA + 0x8000), val: good }] },
  ];
  const calls = w.b.stats.hypercalls['multicall'] ?? 0;
  assert.equal(hv.multicall(entries), [0, -EINVAL, 0]);
  assert.is(entries[1]!.result, -EINVAL);
  assert.match(entries[1]!.refusal!.reason, /^Error getting mfn /);
  assert.is(w.b.stats.hypercalls['multicall'], calls + 1);
  assert.is(w.b.mem.read64(ptep(w, u.pt, UVA + 0x6000)), good);
  assert.is(w.b.mem.read64(ptep(w, u.pt, UVA + 0x7000)), 0n);
  assert.is(w.b.mem.read64(ptep(w, u.pt, UVA + 0x8000)), good);
});

pae('lazy MMU mode: updates are batched into one multicall on leave; a bad one is thrown then', () => {
  const w = world(true);
  const u = userMm(w);
  const h = { ...w.b.stats.hypercalls };
  w.b.set_lazy_mode('mmu');
  for (let i = 0; i < 4; i++) {
    const va = UVA + 0x10000 + i * 0x1000;
    w.b.set_pte_at(u.mm, va, ptep(w, u.pt, va), mkpte(w, w.D0 + 16 + i, USER_RW));
  }
  w.b.flush_tlb_user();
  assert.is(w.b.mem.read64(ptep(w, u.pt, UVA + 0x10000)), 0n, 'not issued yet');
  assert.equal(w.b.stats.hypercalls, h, 'no hypercall while lazy');
  w.b.set_lazy_mode('none');
  assert.is(w.b.stats.hypercalls['multicall'], (h['multicall'] ?? 0) + 1);
  // set_pte_at of the current mm is an update_va_mapping entry (2.6.23 xen_set_pte_at), of another an mmu_update.
  const hc = w.b.stats.hypercalls;
  const n = (k: string): number => (hc[k] ?? 0) - (h[k] ?? 0);
  assert.is(n('update_va_mapping') + n('mmu_update'), 4);
  assert.is(n('mmuext_op'), 1, 'the flush was queued in the same batch');
  assert.ok(w.b.access(UVA + 0x13000, ACCESS_WRITE, true).ok);
  // A refused update inside a batch surfaces at the flush.
  w.b.set_lazy_mode('mmu');
  w.b.set_pte_at(u.mm, UVA, ptep(w, u.pt, UVA), mkpte(w, w.D0 + 9, USER_RW | G));
  expectRefusal(() => w.b.lazy_flush(), 'Bad L1 flags 100');
  w.b.set_lazy_mode('none');
});

pae('writable page tables: a store into an L1 traps and is validated; without the assist the #PF reaches the guest, which oopses', () => {
  const w = world(true);
  const u = userMm(w);
  const t0 = w.b.stats.traps['ptwr_emulate'] ?? 0;
  const hv0 = w.b.domain.stats.hypervisorCycles;
  w.b.mem.write64(ptep(w, u.pt, UVA + 0x1000), mkpte(w, w.D0 + 9, USER_RW));
  assert.is(w.b.stats.traps['ptwr_emulate'], t0 + 1);
  const c = w.b.domain.costs;
  assert.ok(w.b.domain.stats.hypervisorCycles - hv0 >= c.ptwrTrap + c.ptwrDecode, 'charged as a trap');
  assert.is(w.b.domain.frames.countOf(mfn(w, w.D0 + 9)), 2, 'the writable reference was taken');
  // Two 32-bit stores (xen_set_pte): two traps.
  w.b.set_pte(ptep(w, u.pt, UVA + 0x2000), mkpte(w, w.D0 + 10, USER_RW));
  assert.is(w.b.stats.traps['ptwr_emulate'], t0 + 3);
  w.b.hv.vm_assist(VMASST_CMD_DISABLE, VMASST_TYPE_WRITABLE_PAGETABLES);
  const before = state(w);
  expectOops(() => w.b.mem.write32(ptep(w, u.pt, UVA + 0x3000), 0x1234), /unable to handle kernel paging request/);
  assert.is(state(w), before);
  // mmu_update still works.
  w.b.set_pte_at(u.mm, UVA + 0x3000, ptep(w, u.pt, UVA + 0x3000), mkpte(w, w.D0 + 11, USER_RW));
});

pae('exit: unpin drops every type; the freed tables are plain memory; counts return to the start', () => {
  const w = world(true);
  const start = state(w);
  const u = userMm(w);
  w.b.write_cr3(w.base * 4096);
  w.b.exit_mmap(u.mm);
  w.b.pmd_clear(pdep(w, u.pgd, u.pmds, UVA));
  w.b.release_pt(u.pt);
  for (const p of u.pmds) w.b.release_pd(p);
  for (const f of [u.pgd, u.pt, ...u.pmds]) assert.is(w.b.domain.frames.countOf(mfn(w, f)), 0, `frame ${hx(f)}`);
  // Same hypervisor state as before the mm existed (memory differs: the freed frames' contents).
  assert.is(state(w).split(' mem=')[0], start.split(' mem=')[0]);
  w.b.mem.write64(u.pmds[0]! * 4096, 0x1234n);
  assert.is(w.b.mem.read64(u.pmds[0]! * 4096), 0x1234n);
});

pae('costs: a hypercall is one #PF round trip; a bounced fault adds Xen\'s bounce work and the iret hypercall', () => {
  const w = world(true);
  const u = userMm(w);
  const d = w.b.domain;
  const pf = d.mmu.preset.cycles.pageFault;
  assert.is(d.costs.hypercall, pf);
  assert.is(d.costs.bouncedFault, pf + d.costs.bounceExtra);
  let c0 = w.b.stats.cycles;
  w.b.flush_tlb_single(UVA);
  // 2.6.23's xen_flush_tlb_single is a multicall entry, and xen_mc_flush
  // issues even one entry as a multicall: round trip + dispatch + INVLPG.
  assert.is(w.b.stats.cycles - c0, pf + d.costs.multicallEntry + d.mmu.preset.cycles.invlpg, 'INVLPG_LOCAL: round trip + dispatch + the INVLPG');
  const h0 = d.stats.hypervisorCycles;
  const r = w.b.access(UVA + 0x40000, ACCESS_READ, true);
  assert.is(r.ok, false);
  assert.is(d.stats.hypervisorCycles - h0, d.costs.bounceExtra + d.costs.hypercall, 'the bounce and the iret hypercall on top of the #PF');
  assert.is(w.b.stats.traps['page_fault_bounce'], 1);
  w.b.write_cr3(w.base * 4096); // (xen_write_cr3 of the loaded pgd would be only a flush)
  c0 = w.b.stats.cycles;
  w.b.write_cr3(u.pgd * 4096); // pinned: a type reference, no validation walk
  const cy = d.mmu.preset.cycles;
  assert.is(
    w.b.stats.cycles - c0,
    pf + d.costs.multicallEntry + cy.cr3Write + cy.pdpteLoad + 2 * d.costs.typeRef,
    'NEW_BASEPTR of a pinned pgd (a one-entry multicall): round trip, dispatch, CR3 load, get + put of a type reference',
  );
});

pae.run();

// =====================================================================
const two = suite('xen hostile guest (2-level)');
two.after.each(invariantsAfterEach);

two('a pgd not page aligned is refused; the hole is 0xFC000000 (L2 slots 1008..1023)', () => {
  const w = world(false);
  const { pgd } = pgdAlloc(w);
  expectRefusal(() => w.b.write_cr3(pgd * 4096 + 0x20), /^pgd not at offset 0 of its own frame: /);
  assert.is(w.b.reservedTop, 64 * 1024 * 1024 + 2 * 4096);
  const d = w.b.domain;
  assert.ok(d.hole.isIntact(mfn(w, w.base)));
  assert.is(w.b.access(0xfc000000, ACCESS_READ, false).ok, false);
  const pt = alloc(w);
  w.b.alloc_pt(pt);
  const before = state(w);
  expectRefusal(
    () => w.b.set_pmd(w.base * 4096 + 4 * 1010, mkpmd(w, pt, KERNPG_TABLE)),
    `Illegal L2 update attempt in Xen-private area ${hx(mfn(w, w.base) * 4096 + 4 * 1010)}`,
  );
  assert.is(state(w), before);
  w.b.set_pmd(w.base * 4096 + 4 * 1007, mkpmd(w, pt, KERNPG_TABLE));
});

two('PSE and GLOBAL are refused; a page table mapped writable is refused', () => {
  const w = world(false);
  const u = userMm(w);
  const before = state(w);
  expectRefusal(() => w.b.set_pmd(u.pgd * 4096 + 4 * 0x100, mkpmd(w, 0x140, PAGE_TABLE | PS)), 'Bad L2 flags 80');
  expectRefusal(
    () => w.b.set_pte_at(u.mm, UVA + 0x1000, ptep(w, u.pt, UVA + 0x1000), mkpte(w, w.D0 + 2, USER_RW | G)),
    'Bad L1 flags 100',
  );
  const v = mkpte(w, u.pgd, USER_RW);
  expectRefusal(
    () => w.b.set_pte(ptep(w, u.pt, UVA + 0x1000), v),
    `Error getting mfn ${hx(mfn(w, u.pgd))} (pfn ${hx(u.pgd)}) from L1 entry ${v.toString(16).padStart(8, '0')} for dom1`,
  );
  assert.is(state(w), before);
  w.b.set_pte(ptep(w, u.pt, UVA + 0x1000), mkpte(w, u.pgd, USER_RW & ~RW));
  assert.ok(w.b.access(UVA + 0x1000, ACCESS_READ, true).ok);
  assert.equal(w.b.access(UVA + 0x1000, ACCESS_WRITE, true), {
    ok: false,
    errorCode: PFEC_P | PFEC_W | PFEC_U,
    cr2: UVA + 0x1000,
  });
});

two('pins: PIN_L3/PIN_L4 on a 2-level hypervisor succeed and do nothing (Xen 3.1 ignores invalid levels) [item 13]; already pinned; release_pt of a page never pinned is a nop', () => {
  const w = world(false);
  const hv = w.b.hv;
  const sw = mfn(w, w.base);
  const before = state(w);
  assert.equal(hv.mmuext_op([{ cmd: MMUEXT_PIN_L3_TABLE, mfn: sw }]), { rc: 0, done: 1 });
  assert.equal(hv.mmuext_op([{ cmd: MMUEXT_PIN_L3_TABLE + 1, mfn: sw }]), { rc: 0, done: 1 });
  assert.is(state(w), before);
  const r = hv.mmuext_op([{ cmd: MMUEXT_PIN_L3_TABLE - 1, mfn: sw }]);
  if (w.b.domain.frames.isPinned(sw)) assert.is(r.refusal?.reason, `Mfn ${hx(sw)} already pinned`);
  else hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: sw }]);
  w.b.release_pt(w.kpt + 100);
  assert.equal(w.b.stats.refusals, w.b.domain.frames.isPinned(sw) ? { 'Mfn … already pinned': 1 } : {});
  userMm(w);
});


two.run();

// =====================================================================
const chk = suite('xen invariant checker');

chk('detects a corrupted type count, a missing pin reference and a writable page table', () => {
  const w = makeWorld(true);
  const u = userMm(w);
  assert.equal(checkXenInvariants(w.b), []);
  const d = w.b.domain;
  const m = mfn(w, u.pt);
  const c = d.frames.countOf(m);
  d.frames.debugSetCount(m, c + 1);
  assert.equal(checkXenInvariants(w.b), [`mfn 0x${hx(m)}: type count ${c + 1} but ${c} references exist`]);
  d.frames.debugSetCount(m, c);
  assert.equal(checkXenInvariants(w.b), []);
  // A writable mapping of a page table written behind Xen's back.
  const kp = ptep(w, w.kpt, kva(w, u.pt));
  const km = mfn(w, w.kpt);
  d.mmu.mem.write64(mfn(w, w.kpt) * 4096 + (kp % 4096), mkpte(w, u.pt, PAGE_KERNEL));
  const v = checkXenInvariants(w.b);
  assert.ok(
    v.includes(`page-table mfn 0x${hx(m)} (l1) is mapped writable by L1 mfn 0x${hx(km)} entry ${(kva(w, u.pt) >>> 12) & 511}`),
    v.join('\n'),
  );
});

chk.run();
