/**
 * Guest port: the Xen paravirt_ops table of Linux 2.6.23's
 * arch/i386/xen/enlighten.c (xen_paravirt_ops), over the Xen 3.1.0 model.
 * The port reaches the hypervisor only through its hypercalls, the p2m and
 * a read-only view of the machine (its own frames, the vcpu's cr2); the
 * processor running guest code (access/probe) is the domain's.
 *
 *  - read_cr3 / write_cr3: xen_cr3, the pgd the port loaded; xen_write_cr3
 *    of the loaded pgd is just xen_flush_tlb, of another an
 *    MMUEXT_NEW_BASEPTR multicall entry, issued unless in lazy CPU mode.
 *  - flush_tlb_user / flush_tlb_kernel: xen_flush_tlb (MMUEXT_TLB_FLUSH_LOCAL);
 *    flush_tlb_single: xen_flush_tlb_single (MMUEXT_INVLPG_LOCAL). Both are
 *    multicall entries issued at once unless in lazy MMU mode (2.6.23's
 *    enlighten.c: xen_mc_entry + xen_mc_issue(PARAVIRT_LAZY_MMU)).
 *  - alloc_pt: during boot xen_alloc_pt_init (the page read-only); after
 *    pagetable_setup_done xen_alloc_pt: only when the mm's pgd is PG_pinned
 *    (the page is marked PG_pinned and made read-only by update_va_mapping
 *    with no flush); otherwise pinning will do it.
 *  - release_pt: xen_release_pt: a PG_pinned page back to writable (and
 *    PG_pinned cleared, as prep_new_page clears PG_owner_priv_1 = PG_pinned
 *    when the page is next allocated).
 *  - alloc_pd, alloc_pd_clone, release_pd: paravirt_nop. Nothing is told
 *    to Xen (an unbalanced release_pd, the seed's bug, goes unnoticed here;
 *    the guest kernel's own debug check reports it).
 *  - pagetable_setup_start / _done: swapper_pg_dir's tree read-only, then
 *    MMUEXT_PIN_L3_TABLE (PAE) and xen_mark_init_mm_pinned. 2.6.23 issues
 *    PIN_L3_TABLE for 2-level guests too (its #else branch repeats L3);
 *    Xen 3.1 ignores a pin of a level a 2-level hypervisor lacks, so
 *    swapper_pg_dir would stay unpinned, and the first vmalloc pte page
 *    added to it while a process pgd is loaded is read-only (PG_pinned
 *    init_mm) yet untyped: xen_set_pte's store oopses. pvmmu's 2-level port
 *    issues PIN_L2_TABLE there, as xen_pgd_pin does for 2-level: a
 *    deliberate divergence (docs/hypervisor.md), so that 2-level runs are
 *    usable; the hypervisor side accepts the PIN_L3 as Xen 3.1 does.
 *  - activate_mm / dup_mmap: xen_pgd_pin; exit_mmap: xen_exit_mmap
 *    (drop_mm_ref: load swapper_pg_dir if the mm is loaded; then unpin it
 *    if PG_pinned).
 *  - set_lazy_mode: xen_set_lazy_mode (flush on every change; LAZY_FLUSH
 *    flushes without changing the mode).
 *  - pte_update / pte_update_defer: paravirt_nop.
 *  - a pgd must be a whole page: a base pointer is an mfn, and 2.6.23's
 *    xen_pgd_pin pins whatever pgd sits at offset 0 of the frame; the model
 *    refuses instead (documented in docs/hypervisor.md).
 *
 * Page-table entry ops are in mmu.ts, batching in multicalls.ts, the direct
 * map's protection in direct-map.ts.
 */
import { rebindable } from '../../emulator/snapshot.js';
import type { KernelFigure } from '../../emulator/cost-model.js';
import type { AccessKind } from '../../emulator/paging-bits.js';
import type { AccessResult, LazyMode, MachineConfig, MmHandle, ParavirtOps } from '../paravirt-ops.js';
import { pteFromWords, type GuestPhys, type Pfn, type PteVal, type VirtAddr } from '../types.js';
import {
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L2_TABLE,
  MMUEXT_PIN_L3_TABLE,
  MMUEXT_TLB_FLUSH_LOCAL,
  reservedTopFor,
  VMASST_CMD_ENABLE,
  VMASST_TYPE_WRITABLE_PAGETABLES,
} from './abi.js';
import { XenDirectMap } from './direct-map.js';
import { XenDomain, type XenOptions } from './domain.js';
import { XenGuestMemory } from './guest-memory.js';
import { XenHypercalls } from './hypercalls.js';
import { XenMmu } from './mmu.js';
import { XenMulticalls } from './multicalls.js';
import { R, XenRefusal, type LogLine } from './reasons.js';
import type { XenStats } from './stats.js';

export class XenBackend implements ParavirtOps {
  readonly name = 'xen';
  readonly paravirtEnabled = true;
  readonly kernelRpl = 1;
  readonly sharedKernelPmd = false;
  readonly largePagesAllowed = false;
  /** Xen refuses _PAGE_GLOBAL in guest entries (and hides PGE from the guest's CPUID). */
  readonly globalPagesAllowed = false;
  readonly reservedTop: number;
  readonly config: MachineConfig;
  /** The hypervisor and the machine under the guest (tools and tests inspect it; the port uses hv, p2m and view). */
  readonly domain: XenDomain;
  /** The hypercall interface (tests and tools may call it directly, as a hostile guest would). */
  readonly hv: XenHypercalls;
  readonly mem: XenGuestMemory;
  readonly stats: XenStats;

  private readonly pae: boolean;
  private lazyMode: LazyMode = 'none';
  private readonly mc: XenMulticalls;
  private readonly dm: XenDirectMap;
  private readonly mmuOps: XenMmu;
  /** pagetable_setup_done has run: alloc_pt is xen_alloc_pt (before: xen_alloc_pt_init). */
  private booted = false;

  constructor(config: MachineConfig, opts: XenOptions = {}) {
    this.config = { ...config };
    this.pae = config.pae;
    this.domain = new XenDomain(this.config, opts);
    const d = this.domain;
    this.hv = new XenHypercalls(d);
    this.mem = new XenGuestMemory(d, this.hv);
    this.stats = d.stats;
    this.reservedTop = reservedTopFor(this.pae);
    this.mc = new XenMulticalls(this.hv, rebindable(this, 'lazyModeNow'));
    this.dm = new XenDirectMap(d.view, d.p2m, this.hv, this.mem, d.stats, this.pae, config.pageOffset, d.hole.start);
    this.mmuOps = new XenMmu(this.hv, this.mc, this.dm, d.p2m, d.view, this.mem, this.pae, config.pageOffset, d.hole.start, rebindable(this, 'lazyModeNow'), d.processor);
    // xen_start_kernel: HYPERVISOR_vm_assist(VMASST_CMD_enable, VMASST_TYPE_writable_pagetables).
    const r = this.hv.vm_assist(VMASST_CMD_ENABLE, VMASST_TYPE_WRITABLE_PAGETABLES);
    if (r.refusal !== undefined) throw r.refusal;
  }

  /** Current lazy mode. */
  /** The lazy mode, for the multicall batcher and the MMU ops (a rebindable callback: emulator/snapshot.ts). */
  private lazyModeNow(): LazyMode {
    return this.lazyMode;
  }

  get lazy(): LazyMode {
    return this.lazyMode;
  }

  /** PG_pinned of a page (page-table pages of pinned trees), for tests and tools. */
  isPinnedPage(pfn: Pfn): boolean {
    return this.mmuOps.pinned[pfn] === 1;
  }

  /** Is the direct-map pte of `pfn` writable? (lookup_address in swapper_pg_dir; true when there is none), for tests and tools. */
  isDirectMapWritable(pfn: Pfn): boolean {
    return this.dm.isWritable(pfn);
  }

  // ---- helpers ----

  private mfnOf(pfn: number, op: string): number {
    const mfn = Number.isInteger(pfn) ? this.domain.p2m.pfnToMfn(pfn) : -1;
    if (mfn < 0) throw new RangeError(`${op}: pfn 0x${Number(pfn).toString(16)} outside guest memory`);
    return mfn;
  }

  /** A refusal by the guest port itself (a request the interface cannot express). */
  private guestRefuse(l: LogLine, op: string, mfn?: number): never {
    const r = new XenRefusal([l], op, mfn);
    this.stats.count('refusals', r.rule);
    throw r;
  }

  /** The pfn of a pgd, which must be a whole page (offset 0 of its frame). */
  private pgdPfn(gpa: GuestPhys, op: string): number {
    if (!Number.isInteger(gpa) || gpa < 0) throw new RangeError(`${op}: bad pgd address ${gpa}`);
    const pfn = Math.floor(gpa / 4096);
    const mfn = this.mfnOf(pfn, op);
    if (gpa % 4096 !== 0) this.guestRefuse(R.pgdNotAtOffset0(gpa), `paravirt ${op}`, mfn);
    return pfn;
  }

  // ---- control registers and TLB ----

  read_cr2(): VirtAddr {
    return this.domain.view.guestCr2;
  }

  /** xen_read_cr3: xen_cr3. */
  read_cr3(): GuestPhys {
    return this.mmuOps.xenCr3 < 0 ? 0 : this.mmuOps.xenCr3;
  }

  /** xen_write_cr3: the loaded pgd again is a TLB flush; another is MMUEXT_NEW_BASEPTR (issued unless lazy CPU). */
  write_cr3(pgd: GuestPhys): void {
    const pfn = this.pgdPfn(pgd, 'write_cr3');
    if (pgd === this.mmuOps.xenCr3) {
      this.flush_tlb_user();
      return;
    }
    this.mmuOps.xenCr3 = pgd;
    this.mc.entry({ op: 'mmuext_op', ops: [{ cmd: MMUEXT_NEW_BASEPTR, mfn: this.mfnOf(pfn, 'write_cr3') }] });
    this.mc.issue('cpu');
  }

  /** xen_flush_tlb: MMUEXT_TLB_FLUSH_LOCAL, batched only in lazy MMU mode. */
  flush_tlb_user(): void {
    this.mc.entry({ op: 'mmuext_op', ops: [{ cmd: MMUEXT_TLB_FLUSH_LOCAL }] });
    this.mc.issue('mmu');
  }

  /** No global pages under Xen: the same local flush. */
  flush_tlb_kernel(): void {
    this.flush_tlb_user();
  }

  /** xen_flush_tlb_single: MMUEXT_INVLPG_LOCAL of the page, batched only in lazy MMU mode. */
  flush_tlb_single(va: VirtAddr): void {
    this.mc.entry({ op: 'mmuext_op', ops: [{ cmd: MMUEXT_INVLPG_LOCAL, linearAddr: (va >>> 0) & ~0xfff }] });
    this.mc.issue('mmu');
  }

  // ---- page-table page lifecycle ----

  /** xen_alloc_pt_init (boot) / xen_alloc_pt (after pagetable_setup_done). */
  alloc_pt(pfn: Pfn, mm?: MmHandle): void {
    this.mfnOf(pfn, 'alloc_pt');
    if (!this.booted) {
      this.dm.bootProtect(pfn);
      return;
    }
    const pgd = mm === undefined ? this.dm.swapperPfn : Math.floor(mm.pgd / 4096);
    if (pgd >= 0 && this.mmuOps.pinned[pgd] === 1) {
      this.mmuOps.pinned[pfn] = 1;
      this.dm.makeReadonly(pfn, 'alloc_pt');
    }
  }

  /** paravirt_nop in 2.6.23's xen_paravirt_ops. */
  alloc_pd(pfn: Pfn): void {
    this.mfnOf(pfn, 'alloc_pd');
  }

  /** paravirt_nop in 2.6.23's xen_paravirt_ops. */
  alloc_pd_clone(pfn: Pfn, _clonePfn: Pfn, _start: number, _count: number): void {
    this.mfnOf(pfn, 'alloc_pd_clone');
  }

  /** xen_release_pt: a PG_pinned page back to writable. */
  release_pt(pfn: Pfn): void {
    this.mfnOf(pfn, 'release_pt');
    if (this.mmuOps.pinned[pfn] !== 1) return;
    this.dm.makeReadwrite(pfn, 'release_pt');
    // prep_new_page clears PG_pinned (PG_owner_priv_1) when the page is
    // allocated again; cleared here, which is the same for every later use
    // (found by the differential fuzzer, seed 1525: a freed pte page reused
    // as a pgd must be made read-only again by the pin).
    this.mmuOps.pinned[pfn] = 0;
  }

  /** paravirt_nop in 2.6.23's xen_paravirt_ops. */
  release_pd(pfn: Pfn): void {
    this.mfnOf(pfn, 'release_pd');
  }

  // ---- entry updates (mmu.ts) ----

  set_pte(ptep: GuestPhys, pte: PteVal): void {
    this.mmuOps.set_pte(ptep, pte);
  }
  set_pte_at(mm: MmHandle, va: VirtAddr, ptep: GuestPhys, pte: PteVal): void {
    this.mmuOps.set_pte_at(mm, va, ptep, pte);
  }
  /**
   * set_pte_at with the value as two words (ParavirtOps.set_pte_at_words):
   * for an mm that is neither current nor init_mm, xen_set_pte's two plain
   * stores without building a BigInt; otherwise exactly set_pte_at.
   */
  set_pte_at_words(mm: MmHandle, va: VirtAddr, ptep: GuestPhys, lo: number, hi: number): void {
    if (!this.mmuOps.isCurrentOrInit(mm) && (this.pae || hi === 0)) {
      this.mmuOps.entryMa(ptep, 'set_pte_at');
      this.domain.processor.work(this.domain.processor.figure('pteStore'), 'kernel'); // the store, as mmu.ts set_pte
      if (this.pae) this.mem.write32(ptep + 4, hi);
      this.mem.write32(ptep, lo);
      return;
    }
    this.mmuOps.set_pte_at(mm, va, ptep, pteFromWords(lo, hi));
  }
  set_pte_atomic(ptep: GuestPhys, pte: PteVal): void {
    this.mmuOps.set_pte_atomic(ptep, pte);
  }
  /** PAE: xen_set_pte_at; 2-level has no such op (set_pte_at). */
  set_pte_present(mm: MmHandle, va: VirtAddr, ptep: GuestPhys, pte: PteVal): void {
    this.mmuOps.set_pte_at(mm, va, ptep, pte);
  }
  set_pmd(pmdp: GuestPhys, pmd: PteVal): void {
    this.mmuOps.set_pmd(pmdp, pmd, 'set_pmd');
  }
  set_pud(pudp: GuestPhys, pud: PteVal): void {
    this.mmuOps.set_pmd(pudp, pud, 'set_pud');
  }
  pte_clear(mm: MmHandle, va: VirtAddr, ptep: GuestPhys): void {
    this.mmuOps.pte_clear(mm, va, ptep);
  }
  pmd_clear(pmdp: GuestPhys): void {
    this.mmuOps.set_pmd(pmdp, 0n, 'pmd_clear');
  }
  /** paravirt_nop: the processor's A/D updates land in the machine entries. */
  pte_update(_mm: MmHandle, _va: VirtAddr, _ptep: GuestPhys): void {}
  pte_update_defer(_mm: MmHandle, _va: VirtAddr, _ptep: GuestPhys): void {}

  // ---- entry values: pfn <-> mfn ----

  make_pte(v: PteVal): PteVal {
    return this.domain.p2m.toMachine(v);
  }
  pte_val(v: PteVal): PteVal {
    return this.domain.p2m.toPseudo(v);
  }
  /** entryPfn(pte_val(v)) from v's two words (no BigInt): see ParavirtOps.pte_val_pfn. */
  pte_val_pfn(lo: number, hi: number): number {
    return this.domain.p2m.pseudoFrameOf(lo, hi);
  }
  make_pmd(v: PteVal): PteVal {
    return this.domain.p2m.toMachine(v);
  }
  pmd_val(v: PteVal): PteVal {
    return this.domain.p2m.toPseudo(v);
  }
  make_pgd(v: PteVal): PteVal {
    return this.domain.p2m.toMachine(v);
  }
  pgd_val(v: PteVal): PteVal {
    return this.domain.p2m.toPseudo(v);
  }

  // ---- mm lifecycle ----

  pagetable_setup_start(base: GuestPhys): void {
    this.dm.swapperPfn = this.pgdPfn(base, 'pagetable_setup_start');
  }

  /**
   * xen_pagetable_setup_done: swapper_pg_dir's tree read-only (see
   * direct-map.ts bootProtect), MMUEXT_PIN_L3_TABLE (PAE; PIN_L2_TABLE in
   * 2-level, see the header), then xen_mark_init_mm_pinned
   * (post_allocator_init).
   */
  pagetable_setup_done(base: GuestPhys): void {
    const pfn = this.pgdPfn(base, 'pagetable_setup_done');
    this.dm.swapperPfn = pfn;
    this.mmuOps.bootProtectTree(pfn);
    const cmd = this.pae ? MMUEXT_PIN_L3_TABLE : MMUEXT_PIN_L2_TABLE;
    const r = this.hv.mmuext_op([{ cmd, mfn: this.mfnOf(pfn, 'pagetable_setup_done') }]);
    if (r.refusal !== undefined) throw r.refusal;
    this.mmuOps.markInitMmPinned(pfn);
    this.booted = true;
  }

  /** xen_activate_mm: xen_pgd_pin(next->pgd). */
  activate_mm(_prev: MmHandle | null, next: MmHandle): void {
    this.mmuOps.pgdPin(this.pgdPfn(next.pgd, 'activate_mm'));
  }

  /** xen_dup_mmap: xen_pgd_pin(mm->pgd). */
  dup_mmap(_oldmm: MmHandle, mm: MmHandle): void {
    this.mmuOps.pgdPin(this.pgdPfn(mm.pgd, 'dup_mmap'));
  }

  /** xen_exit_mmap: drop_mm_ref (load swapper_pg_dir if the mm is loaded), then xen_pgd_unpin if PG_pinned. */
  exit_mmap(mm: MmHandle): void {
    const pfn = this.pgdPfn(mm.pgd, 'exit_mmap');
    if (this.mmuOps.xenCr3 === mm.pgd && this.dm.swapperPfn >= 0) this.write_cr3(this.dm.swapperPfn * 4096);
    if (this.mmuOps.pinned[pfn] === 1) this.mmuOps.pgdUnpin(pfn);
  }

  // ---- lazy mode ----

  /** xen_set_lazy_mode: whatever is batched is issued on every change of mode. */
  set_lazy_mode(mode: LazyMode): void {
    this.mc.flush();
    this.lazyMode = mode;
  }

  /** PARAVIRT_LAZY_FLUSH: issue what is batched, the mode unchanged. */
  lazy_flush(): void {
    if (this.lazyMode !== 'none') this.mc.flush();
  }

  // ---- the processor ----

  /** A fault is bounced to the guest's handler, which returns with the iret hypercall (2.6.23's iret op). */
  access(va: VirtAddr, kind: AccessKind, user: boolean): AccessResult {
    const r = this.domain.guestAccess(va, kind, user);
    if (!r.ok) this.hv.iret();
    return r;
  }

  // ---- the kernel's own work (guest code on the processor; costs: domain.ts, hypercalls.ts) ----

  cpu_figure(name: KernelFigure): number {
    return this.domain.processor.figure(name);
  }
  kernel_work(cycles: number, component: 'kernel' | 'page_copy'): void {
    this.domain.processor.work(cycles, component);
  }
  /** int $0x80 goes through the trap table straight to the guest kernel; the return is HYPERVISOR_iret. */
  syscall(): void {
    this.domain.processor.work(this.domain.processor.figure('syscall'), 'kernel');
    this.hv.iret();
  }

  probe(va: VirtAddr, kind: AccessKind, user: boolean): AccessResult {
    return this.domain.guestProbe(va, kind, user);
  }
}
