/**
 * Guest port: the page-table operations of Linux 2.6.23's
 * arch/i386/xen/mmu.c (entry updates, entry values, the pin/unpin walk).
 *
 * Entry updates (which ones trap, which are hypercalls, which are batched):
 *  - xen_set_pte: plain stores through the direct map, under PAE the high
 *    word first and then the low word; a store into a pinned (read-only) L1
 *    traps into Xen's writable-pagetable emulation, one trap per word. Never
 *    batched, lazy mode or not. set_pte_atomic (PAE: set_64bit, one 8-byte
 *    store) and xen_pte_clear (PAE: the low word, then the high word) are
 *    plain stores too. 2-level has no pte_clear op: pgtable-2level.h's
 *    pte_clear is set_pte_at(mm, addr, ptep, 0).
 *  - xen_set_pte_at (and set_pte_present under PAE): for the current mm or
 *    init_mm, HYPERVISOR_update_va_mapping(addr, pte, 0) (a multicall entry in
 *    lazy MMU mode); if that fails (no L1 maps `addr` in the loaded tables)
 *    or for another mm, xen_set_pte.
 *  - xen_set_pmd / xen_set_pud (and pmd_clear): always an mmu_update, as a
 *    multicall entry issued at once unless in lazy MMU mode.
 *  - make_pte/pte_val etc.: pfn <-> mfn through the p2m (phys_to_machine,
 *    machine_to_phys).
 *  - xen_pgd_pin (activate_mm, dup_mmap): one batch: the walk's
 *    update_va_mapping of every page-table page not yet PG_pinned to
 *    read-only (the pgd's own entry last, with UVMF_TLB_FLUSH), then
 *    MMUEXT_PIN_L3_TABLE (PAE) / PIN_L2_TABLE; the batch splits where the
 *    multicall buffer fills (32 entries).
 *  - xen_pgd_unpin (exit_mmap): one batch: MMUEXT_UNPIN_TABLE, then every
 *    PG_pinned page of the walk back to writable (no flush).
 *  - pgd_walk visits, for every present pgd slot, the pmd page (PAE), and
 *    the pte pages below `limit` (TASK_SIZE for pin/unpin; the top of the
 *    kernel's space below the hole for swapper_pg_dir at boot), then the pgd.
 *
 * The "current mm" of xen_set_pte_at is the mm whose pgd the port loaded
 * (xen_cr3): the two differ only inside xen_exit_mmap, which loads
 * swapper_pg_dir before the dying mm is torn down, and there set_pte_at is
 * not used.
 */
import { PTE_P, PTE_PS } from '../../emulator/paging-bits.js';
import type { GuestMemory, LazyMode, MmHandle } from '../paravirt-ops.js';
import { pteHi, pteLo, type GuestPhys, type PteVal, type VirtAddr } from '../types.js';
import { MMUEXT_PIN_L2_TABLE, MMUEXT_PIN_L3_TABLE, MMUEXT_UNPIN_TABLE, UVMF_TLB_FLUSH } from './abi.js';
import type { GuestProcessor, MachineView } from './domain.js';
import type { XenDirectMap } from './direct-map.js';
import type { XenHypercalls } from './hypercalls.js';
import type { XenMulticalls } from './multicalls.js';
import type { P2m } from './p2m.js';

const U32 = 0xffffffffn;

export class XenMmu {
  /** PG_pinned, by pfn (page-table pages of pinned trees). */
  readonly pinned: Uint8Array;
  /** xen_cr3: the guest-physical address of the pgd the port loaded (-1: none yet). */
  xenCr3 = -1;
  private readonly esz: number;
  /** pgdWalk's dedup marks and stamp. */
  private readonly walkSeen: Int32Array;
  private walkStamp = 0;

  constructor(
    private readonly hv: XenHypercalls,
    private readonly mc: XenMulticalls,
    private readonly dm: XenDirectMap,
    private readonly p2m: P2m,
    private readonly view: MachineView,
    private readonly mem: GuestMemory,
    private readonly pae: boolean,
    /** TASK_SIZE (PAGE_OFFSET). */
    private readonly taskSize: number,
    /** The kernel's pte pages end below the hypervisor hole. */
    private readonly holeStart: number,
    private readonly lazy: () => LazyMode,
    /** The processor, for the guest's own stores (charged as native set_pte's: preset pteStore). */
    private readonly cpu: GuestProcessor,
  ) {
    this.esz = pae ? 8 : 4;
    this.pinned = new Uint8Array(p2m.nrPages);
    this.walkSeen = new Int32Array(p2m.nrPages);
  }

  // ---- helpers ----

  /** Machine address of the entry at guest-physical `gpa` (entry-aligned). */
  entryMa(gpa: number, op: string): number {
    if ((gpa >>> 0) === gpa && (gpa & (this.esz - 1)) === 0) {
      const mfn = this.p2m.pfnToMfn(gpa >>> 12);
      if (mfn >= 0) return mfn * 4096 + (gpa & 0xfff);
    }
    if (!Number.isInteger(gpa) || gpa % this.esz !== 0) {
      throw new Error(`${op}: entry address 0x${Number(gpa).toString(16)} not ${this.esz}-byte aligned`);
    }
    throw new RangeError(`${op}: pfn 0x${Math.floor(gpa / 4096).toString(16)} outside guest memory`);
  }

  checkValue(v: PteVal, op: string): void {
    if (v < 0n || v > (this.pae ? 0xffffffffffffffffn : U32)) {
      throw new RangeError(`${op}: value 0x${v.toString(16)} does not fit a ${this.pae ? 'PAE' : '2-level'} entry`);
    }
  }

  /** Is `mm` the current mm or init_mm (xen_set_pte_at's test)? */
  isCurrentOrInit(mm: MmHandle): boolean {
    return mm.pgd === this.xenCr3 || (this.dm.swapperPfn >= 0 && mm.pgd === this.dm.swapperPfn * 4096);
  }

  // ---- entry updates ----

  /** xen_set_pte: plain stores (PAE: high word, then low word). */
  set_pte(ptep: GuestPhys, pte: PteVal): void {
    this.checkValue(pte, 'set_pte');
    this.entryMa(ptep, 'set_pte');
    this.cpu.work(this.cpu.figure('pteStore'), 'kernel'); // the store itself (a trap is charged on top)
    if (this.pae) {
      this.mem.write32(ptep + 4, pteHi(pte));
      this.mem.write32(ptep, pteLo(pte));
    } else this.mem.write32(ptep, pteLo(pte));
  }

  /** xen_set_pte_at: update_va_mapping for the current mm or init_mm, else (or on failure) xen_set_pte. */
  set_pte_at(mm: MmHandle, va: VirtAddr, ptep: GuestPhys, pte: PteVal): void {
    this.checkValue(pte, 'set_pte_at');
    this.entryMa(ptep, 'set_pte_at');
    if (this.isCurrentOrInit(mm)) {
      if (this.lazy() === 'mmu') {
        this.mc.entry({ op: 'update_va_mapping', va: va >>> 0, val: pte, flags: 0 });
        this.mc.issue('mmu');
        return;
      }
      if (this.hv.update_va_mapping(va >>> 0, pte, 0).rc === 0) return;
    }
    this.set_pte(ptep, pte);
  }

  /** PAE xen_set_pte_atomic: set_64bit, one 8-byte store. */
  set_pte_atomic(ptep: GuestPhys, pte: PteVal): void {
    this.checkValue(pte, 'set_pte_atomic');
    this.entryMa(ptep, 'set_pte_atomic');
    this.cpu.work(this.cpu.figure(this.pae ? 'adUpdate' : 'pteStore'), 'kernel'); // as native set_pte_atomic
    if (this.pae) this.mem.write64(ptep, pte);
    else this.mem.write32(ptep, pteLo(pte));
  }

  /** PAE xen_pte_clear: low word, then high word; 2-level: set_pte_at(mm, addr, ptep, 0). */
  pte_clear(mm: MmHandle, va: VirtAddr, ptep: GuestPhys): void {
    this.entryMa(ptep, 'pte_clear');
    if (!this.pae) {
      this.set_pte_at(mm, va, ptep, 0n);
      return;
    }
    this.cpu.work(this.cpu.figure('pteStore'), 'kernel');
    this.mem.write32(ptep, 0);
    this.mem.write32(ptep + 4, 0);
  }

  /** xen_set_pmd / xen_set_pud / xen_pmd_clear: an mmu_update, batched only in lazy MMU mode. */
  set_pmd(pmdp: GuestPhys, pmd: PteVal, op = 'set_pmd'): void {
    this.checkValue(pmd, op);
    const ma = this.entryMa(pmdp, op);
    this.mc.entry({ op: 'mmu_update', reqs: [{ ptr: ma, val: pmd }] });
    this.mc.issue('mmu');
  }

  // ---- pin / unpin ----

  /**
   * pgd_walk: the page-table pages of the pgd at `pfn` in 2.6.23's order
   * (per present pgd slot: its pmd page (PAE), then its pte pages below
   * `limit`), the pgd last; each once.
   */
  pgdWalk(pfn: number, limit: number): number[] {
    const v = this.view;
    const out: number[] = [];
    const seen = this.walkSeen;
    if (this.walkStamp === 0x7fffffff) {
      seen.fill(0);
      this.walkStamp = 0;
    }
    const stamp = ++this.walkStamp;
    const add = (p: number): void => {
      if (p >= 0 && seen[p] !== stamp) {
        seen[p] = stamp;
        out.push(p);
      }
    };
    const root = this.p2m.pfnToMfn(pfn);
    if (this.pae) {
      for (let s = 0; s < 4; s++) {
        const lo = v.word(root, 2 * s);
        if ((lo & PTE_P) === 0) continue;
        const pmd = this.frameOf(lo, v.word(root, 2 * s + 1));
        if (pmd < 0) continue;
        add(this.p2m.mfnToPfn(pmd));
        const base = s * 0x40000000;
        if (base >= limit) continue;
        const n = Math.min(512, Math.ceil((limit - base) / 0x200000));
        this.walkTable(pmd, n, add);
      }
    } else {
      this.walkTable(root, Math.min(1024, Math.ceil(limit / 0x400000)), add);
    }
    // the pgd itself, last (set_prot with UVMF_TLB_FLUSH)
    if (seen[pfn] === stamp) out.splice(out.indexOf(pfn), 1);
    seen[pfn] = stamp;
    out.push(pfn);
    return out;
  }

  private walkTable(mfn: number, n: number, add: (p: number) => void): void {
    const v = this.view;
    for (let i = 0; i < n; i++) {
      const w = this.pae ? 2 * i : i;
      const lo = v.word(mfn, w);
      if ((lo & (PTE_P | PTE_PS)) !== PTE_P) continue;
      const m = this.frameOf(lo, this.pae ? v.word(mfn, w + 1) : 0);
      if (m >= 0) add(this.p2m.mfnToPfn(m));
    }
  }

  private frameOf(lo: number, hi: number): number {
    const mfn = this.pae ? (hi & 0xfffff) * 0x100000 + (lo >>> 12) : lo >>> 12;
    return this.p2m.isGuestMfn(mfn) ? mfn : -1;
  }

  /** xen_pgd_pin(pgd): the walk and the PIN in one batch (see the header). */
  pgdPin(pfn: number): void {
    const pages = this.pgdWalk(pfn, this.taskSize);
    const changed: number[] = [];
    try {
      for (const p of pages) {
        if (this.pinned[p] === 1) continue; // pin_page: already pinned
        this.pinned[p] = 1;
        changed.push(p);
        const e = this.dm.roEntry(p, p === pfn ? UVMF_TLB_FLUSH : 0);
        if (e !== null) this.mc.entry(e);
      }
      const cmd = this.pae ? MMUEXT_PIN_L3_TABLE : MMUEXT_PIN_L2_TABLE;
      this.mc.entry({ op: 'mmuext_op', ops: [{ cmd, mfn: this.p2m.pfnToMfn(pfn) }] });
      this.mc.issue(0);
    } catch (e) {
      // The kernel BUGs here; the model puts the pages back (writable, not
      // PG_pinned) so that what is reported afterwards is consistent.
      for (const p of changed) {
        this.pinned[p] = 0;
        const r = this.dm.rwEntry(p, 0);
        if (r !== null && r.op === 'update_va_mapping') this.hv.update_va_mapping(r.va, r.val, 0);
      }
      throw e;
    }
  }

  /** xen_pgd_unpin(pgd): UNPIN, then every PG_pinned page of the walk writable again, in one batch. */
  pgdUnpin(pfn: number): void {
    this.mc.entry({ op: 'mmuext_op', ops: [{ cmd: MMUEXT_UNPIN_TABLE, mfn: this.p2m.pfnToMfn(pfn) }] });
    for (const p of this.pgdWalk(pfn, this.taskSize)) {
      if (this.pinned[p] !== 1) continue;
      this.pinned[p] = 0;
      const e = this.dm.rwEntry(p, 0);
      if (e !== null) this.mc.entry(e);
    }
    this.mc.issue(0);
  }

  /** xen_mark_init_mm_pinned: PG_pinned on every page of swapper_pg_dir's tree (up to the hole). */
  markInitMmPinned(pfn: number): void {
    for (const p of this.pgdWalk(pfn, this.holeStart)) this.pinned[p] = 1;
  }

  /** Boot: every page of swapper_pg_dir's tree read-only (see XenDirectMap.bootProtect). */
  bootProtectTree(pfn: number): void {
    for (const p of this.pgdWalk(pfn, this.holeStart)) this.dm.bootProtect(p);
  }
}
