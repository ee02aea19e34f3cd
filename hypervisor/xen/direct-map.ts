/**
 * Guest port: the protection of the kernel's direct map (lowmem mapped at
 * PAGE_OFFSET), as Linux 2.6.23's arch/i386/xen/mmu.c keeps it: every page
 * that is a page table Xen knows must be mapped read-only, so the guest
 * write-protects a page before it becomes one and gives the write access
 * back after.
 *
 *  - lookup(pfn): lookup_address(PAGE_OFFSET + pfn << 12) in
 *    swapper_pg_dir, read through the guest's read-only view of its page
 *    tables;
 *  - make_lowmem_page_readonly / _readwrite (mmu.c): the pte with RW
 *    cleared / set, through HYPERVISOR_update_va_mapping(va, pte, 0) (no TLB
 *    flush), BUG (the refusal thrown) on failure;
 *  - roEntry / rwEntry: the same update as a multicall entry (pin_page /
 *    unpin_page of the pin walk; the walk gives the pgd's entry
 *    UVMF_TLB_FLUSH). 2.6.23 builds that pte as pfn_pte(pfn,
 *    PAGE_KERNEL_RO / PAGE_KERNEL); the model keeps the existing pte's other
 *    bits and changes RW only (A/D and NX make no difference to Xen's checks);
 *  - bootProtect(pfn): before Xen knows the boot tables (until
 *    pagetable_setup_done pins swapper_pg_dir), a plain store of the pte
 *    without RW: what 2.6.23 gets from Xen's start-of-day tables, where every
 *    page-table page is already read-only, xen_alloc_pt_init and
 *    xen_set_pte_init (mask_rw_pte keeps a read-only pte read-only).
 *
 * A pfn outside the direct map (highmem) has no lowmem address: 2.6.23
 * skips it (PageHighMem), and so does the model.
 */
import { PTE_P, PTE_PS, PTE_RW } from '../../emulator/paging-bits.js';
import type { GuestMemory } from '../paravirt-ops.js';
import { pteFromWords, type PteVal } from '../types.js';
import type { MachineView } from './domain.js';
import { R, XenRefusal } from './reasons.js';
import type { MulticallEntry, XenHypercalls } from './hypercalls.js';
import type { P2m } from './p2m.js';
import type { XenStats } from './stats.js';

export class XenDirectMap {
  /** swapper_pg_dir's pfn (-1 until pagetable_setup_start). */
  swapperPfn = -1;
  /** lookup()'s other results: the pte's two words. */
  private lo = 0;
  private hi = 0;
  private readonly esz: number;

  constructor(
    private readonly view: MachineView,
    private readonly p2m: P2m,
    private readonly hv: XenHypercalls,
    private readonly mem: GuestMemory,
    private readonly stats: XenStats,
    private readonly pae: boolean,
    private readonly pageOffset: number,
    /** First address of the hypervisor hole: the direct map ends below it. */
    private readonly holeStart: number,
  ) {
    this.esz = pae ? 8 : 4;
  }

  /** The lowmem address of `pfn`, or -1 (no direct mapping). */
  va(pfn: number): number {
    const va = this.pageOffset + pfn * 4096;
    return va < this.holeStart ? va : -1;
  }

  /**
   * lookup_address: the guest-physical address of the 4 KiB pte mapping
   * `pfn` in swapper_pg_dir, or -1 (no such pte: highmem, a large page, not
   * mapped yet). The pte's words are left for roPte/rwPte.
   */
  lookup(pfn: number): number {
    const va = this.va(pfn);
    if (va < 0 || this.swapperPfn < 0) return -1;
    const v = this.view;
    const root = this.p2m.pfnToMfn(this.swapperPfn);
    let l2 = root;
    let i2: number;
    if (this.pae) {
      const i3 = va >>> 30;
      const lo3 = v.word(root, 2 * i3);
      if ((lo3 & PTE_P) === 0) return -1;
      l2 = this.frameOf(lo3, v.word(root, 2 * i3 + 1));
      if (l2 < 0) return -1;
      i2 = (va >>> 21) & 511;
    } else i2 = va >>> 22;
    const w2 = this.pae ? 2 * i2 : i2;
    const lo2 = v.word(l2, w2);
    if ((lo2 & (PTE_P | PTE_PS)) !== PTE_P) return -1;
    const l1 = this.frameOf(lo2, this.pae ? v.word(l2, w2 + 1) : 0);
    if (l1 < 0) return -1;
    const i1 = this.pae ? (va >>> 12) & 511 : (va >>> 12) & 1023;
    const w1 = this.pae ? 2 * i1 : i1;
    this.lo = v.word(l1, w1);
    this.hi = this.pae ? v.word(l1, w1 + 1) : 0;
    if ((this.lo & PTE_P) === 0) return -1;
    return this.p2m.mfnToPfn(l1) * 4096 + i1 * this.esz;
  }

  /** The machine frame an entry's words point at, if it is one of the guest's (else -1). */
  private frameOf(lo: number, hi: number): number {
    const mfn = this.pae ? (hi & 0xfffff) * 0x100000 + (lo >>> 12) : lo >>> 12;
    return this.p2m.isGuestMfn(mfn) ? mfn : -1;
  }

  private pte(rw: boolean): PteVal {
    return pteFromWords(rw ? this.lo | PTE_RW : this.lo & ~PTE_RW, this.hi);
  }

  /** Is the direct-map pte of `pfn` writable? (true when there is none: nothing to protect). */
  isWritable(pfn: number): boolean {
    return this.lookup(pfn) < 0 || (this.lo & PTE_RW) !== 0;
  }

  /** make_lowmem_page_readonly(__va(pfn << 12)). */
  makeReadonly(pfn: number, op: string): void {
    this.set(pfn, false, op);
  }

  /** make_lowmem_page_readwrite(__va(pfn << 12)). */
  makeReadwrite(pfn: number, op: string): void {
    this.set(pfn, true, op);
  }

  private set(pfn: number, rw: boolean, op: string): void {
    if (this.lookup(pfn) < 0) return;
    const va = this.va(pfn);
    const r = this.hv.update_va_mapping(va, this.pte(rw), 0);
    if (r.rc !== 0) this.bug(r.refusal, va, op);
  }

  /** The BUG() after a failed update_va_mapping: Xen's refusal, or (no log line) the silent -EINVAL. */
  bug(refusal: XenRefusal | undefined, va: number, op: string): never {
    if (refusal !== undefined) throw refusal;
    const r = new XenRefusal([R.uvmNoL1(va)], `update_va_mapping (${op})`);
    this.stats.count('refusals', r.rule);
    throw r;
  }

  /** pin_page's MULTI_update_va_mapping(pt, read-only pte, flags), or null (no lowmem pte). */
  roEntry(pfn: number, flags: number): MulticallEntry | null {
    if (this.lookup(pfn) < 0) return null;
    return { op: 'update_va_mapping', va: this.va(pfn), val: this.pte(false), flags };
  }

  /** unpin_page's MULTI_update_va_mapping(pt, writable pte, flags), or null. */
  rwEntry(pfn: number, flags: number): MulticallEntry | null {
    if (this.lookup(pfn) < 0) return null;
    return { op: 'update_va_mapping', va: this.va(pfn), val: this.pte(true), flags };
  }

  /** Before Xen knows the boot tables: the pte without RW, by plain stores (see the header). */
  bootProtect(pfn: number): void {
    const ptep = this.lookup(pfn);
    if (ptep < 0 || (this.lo & PTE_RW) === 0) return;
    this.mem.write32(ptep, this.lo & ~PTE_RW);
  }
}
