/**
 * The per-level page-table rules of Xen's direct paging (xen/arch/x86/mm.c:
 * get_page_from_l1e/l2e/l3e, alloc_l1/l2/l3_table, free_lX_table,
 * mod_l1/l2/l3_entry, create_pae_xen_mappings), for the x86_32 hypervisor:
 * 3-level (PAE) or 2-level.
 *
 *  - L1 entry: no disallowed flags (PAT/PSE, GLOBAL, high bits: "Bad L1
 *    flags"); the frame must be the guest's; if RW, the frame takes a
 *    `writable` type reference, which fails when it is a page table ("Error
 *    getting mfn … from L1 entry …").
 *  - L2 entry: no PSE (large pages) or GLOBAL ("Bad L2 flags"); the frame
 *    takes an L1 reference (validated on first use). Xen's slots of an L2
 *    that carries its private mappings are not the guest's.
 *  - L3 entry (PAE): only P, PWT, PCD and the available bits ("Bad L3
 *    flags"); slots 0-2 take plain L2 references; slot 3 must be present and
 *    takes an L2 + pae_xen_l2 reference whose count must then be 1
 *    ("PAE L3 3rd slot is empty" / "is shared" / "Failure in alloc_l3_table:
 *    entry 3"); the L3 frame must be below 4 GiB unless the pae_extended_cr3
 *    assist is on; slot 3 is never updated by the guest.
 *
 * Flags are compared in Xen's form: the low 12 bits, and under PAE bits
 * 52..63 of the entry folded into bits 12..23 (l1e_get_flags).
 *
 * Every failure logs Xen's line(s) and leaves no reference taken and no
 * memory written.
 */
import type { PhysMem } from '../../emulator/phys-mem.js';
import { PTE_P, PTE_RW } from '../../emulator/paging-bits.js';
import { PAE_L3_LIMIT_MFN } from './abi.js';
import { FrameTable, PGT_L1, PGT_L2, PGT_L3, PGT_WRITABLE, type PageType, type PageTypeOps } from './frame-table.js';
import type { XenHole } from './hole.js';
import { zeroPrefix } from './zero-scan.js';
import type { P2m } from './p2m.js';
import { R, typeName, type LogLine } from './reasons.js';

/**
 * Disallowed flags, Xen form. x86_32 page.h: BASE_DISALLOW_MASK = 0xFFFFF180
 * & ~_PAGE_NX ("unused flag bits plus PAT, PSE and GLOBAL; NX permitted"),
 * L1 and L2 use it; page-3level.h L3_DISALLOW_MASK = 0xFFFFF1E6 (RW, US,
 * A, D, PSE, GLOBAL and every high bit: the PDPTE must-be-zero bits).
 * Under PAE the flag word is 24 bits wide (NX is bit 23); 2-level has 12.
 */
const PAE_BASE_DISALLOW = 0xfff180 & ~(1 << 23);
const PAE_L3_DISALLOW = 0xfff1e6;
const TWO_LEVEL_BASE_DISALLOW = 0x180;

export class PageTableRules implements PageTypeOps {
  /**
   * What the cost model charges (costs.ts, domain.chargeWork): single
   * entries read (an update's target, an L3 slot: one random access each),
   * entries written, and for the whole-table scans of validation and
   * release the cache lines streamed (one per 8 PAE / 16 two-level entries)
   * and the present entries checked (a non-present entry costs nothing
   * beyond its line in Xen's loop: one test of _PAGE_PRESENT).
   */
  entriesRead = 0;
  entriesWritten = 0;
  scanLines = 0;
  scanPresent = 0;
  /** Entries per 64-byte cache line. */
  private readonly perLine: number;
  /** Called after an L3 entry changed (mod_l3_entry -> pae_flush_pgd). */
  onL3Changed: (l3mfn: number, idx: number) => void = () => {};

  private readonly n: number;
  private readonly l1Disallow: number;
  private readonly l2Disallow: number;

  constructor(
    private readonly mem: PhysMem,
    private readonly pae: boolean,
    private readonly frames: FrameTable,
    private readonly p2m: P2m,
    private readonly isXenFrame: (mfn: number) => boolean,
    private readonly hole: XenHole,
    private readonly log: (l: LogLine) => void,
    private readonly paeExtendedCr3: () => boolean,
  ) {
    this.n = pae ? 512 : 1024;
    this.perLine = pae ? 8 : 16;
    this.l1Disallow = pae ? PAE_BASE_DISALLOW : TWO_LEVEL_BASE_DISALLOW;
    this.l2Disallow = this.l1Disallow;
    frames.ops = this;
  }

  // ---- entry access (numbers: lo/hi words of a PAE entry, or the 2-level word) ----

  lo(mfn: number, i: number): number {
    this.entriesRead++;
    return this.mem.word(mfn, this.pae ? 2 * i : i);
  }
  hi(mfn: number, i: number): number {
    return this.pae ? this.mem.word(mfn, 2 * i + 1) : 0;
  }
  private write(mfn: number, i: number, lo: number, hi: number): void {
    this.entriesWritten++;
    if (this.pae) {
      this.mem.setWord(mfn, 2 * i, lo);
      this.mem.setWord(mfn, 2 * i + 1, hi);
    } else this.mem.setWord(mfn, i, lo);
  }
  /** Frame number of an entry (bits 12..51 under PAE, as Xen reads it). */
  frameOf(lo: number, hi: number): number {
    return this.pae ? (hi & 0xfffff) * 0x100000 + (lo >>> 12) : lo >>> 12;
  }
  /** Xen's flag word of an entry. */
  flagsOf(lo: number, hi: number): number {
    return this.pae ? (lo & 0xfff) | ((hi >>> 20) << 12) : lo & 0xfff;
  }
  private entryText(lo: number, hi: number): string {
    return this.pae
      ? (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0')
      : (lo >>> 0).toString(16).padStart(8, '0');
  }
  entryMaddr(mfn: number, i: number): number {
    return mfn * 4096 + i * (this.pae ? 8 : 4);
  }

  /** Is L2 slot `i` the guest's (not one of Xen's)? */
  isGuestL2Slot(xenL2: boolean, i: number): boolean {
    if (this.pae) return !xenL2 || !this.hole.isXenSlot(i);
    return !this.hole.isXenSlot(i);
  }

  // ---- references held by entries ----

  private getPageFromL1e(lo: number, hi: number): boolean {
    if ((lo & PTE_P) === 0) return true;
    const bits = this.flagsOf(lo, hi) & this.l1Disallow;
    if (bits !== 0) {
      this.log(R.badL1Flags(bits));
      return false;
    }
    const m = this.frameOf(lo, hi);
    if (!this.p2m.isGuestMfn(m)) {
      if (this.isXenFrame(m)) this.log(R.errorGettingMfn(m, -1, this.entryText(lo, hi)));
      else this.log(R.ioSpace(m));
      return false;
    }
    if ((lo & PTE_RW) !== 0 && !this.frames.getPageType(m, PGT_WRITABLE, false, true)) {
      this.log(R.errorGettingMfn(m, this.p2m.mfnToPfn(m), this.entryText(lo, hi)));
      this.log(R.badType(typeName(this.frames.typeOf(m), this.frames.isXenL2(m)), 'writable', m, this.p2m.mfnToPfn(m)));
      return false;
    }
    return true;
  }

  private putPageFromL1e(lo: number, hi: number): void {
    if ((lo & PTE_P) === 0 || (lo & PTE_RW) === 0) return;
    const m = this.frameOf(lo, hi);
    if (this.p2m.isGuestMfn(m)) this.frames.putPageType(m);
  }

  private getPageFromL2e(lo: number, hi: number): boolean {
    if ((lo & PTE_P) === 0) return true;
    const bits = this.flagsOf(lo, hi) & this.l2Disallow;
    if (bits !== 0) {
      this.log(R.badL2Flags(bits));
      return false;
    }
    const m = this.frameOf(lo, hi);
    if (!this.p2m.isGuestMfn(m)) {
      this.log(R.noPageRef(m));
      return false;
    }
    return this.frames.getPageType(m, PGT_L1);
  }

  private putPageFromL2e(lo: number, hi: number, self: number): void {
    if ((lo & PTE_P) === 0) return;
    const m = this.frameOf(lo, hi);
    if (m !== self && this.p2m.isGuestMfn(m)) this.frames.putPageType(m);
  }

  private getPageFromL3e(lo: number, hi: number): boolean {
    if ((lo & PTE_P) === 0) return true;
    const bits = this.flagsOf(lo, hi) & PAE_L3_DISALLOW;
    if (bits !== 0) {
      this.log(R.badL3Flags(bits));
      return false;
    }
    const m = this.frameOf(lo, hi);
    if (!this.p2m.isGuestMfn(m)) {
      this.log(R.noPageRef(m));
      return false;
    }
    return this.frames.getPageType(m, PGT_L2, false);
  }

  private putPageFromL3e(lo: number, hi: number, self: number): void {
    this.putPageFromL2e(lo, hi, self);
  }

  // ---- alloc / free of a whole table (PageTypeOps) ----

  alloc(mfn: number, type: PageType, xenL2: boolean): boolean {
    switch (type) {
      case PGT_L1:
        return this.allocL1(mfn);
      case PGT_L2:
        return this.allocL2(mfn, xenL2);
      case PGT_L3:
        return this.pae && this.allocL3(mfn);
      default:
        return false;
    }
  }

  /**
   * The guest's slots of an L2 are a prefix (Xen's are the top ones): how
   * many there are. Same as counting isGuestL2Slot(xenL2, i).
   */
  private guestL2Slots(xenL2: boolean): number {
    return this.pae && !xenL2 ? this.n : Math.min(this.n, this.hole.firstSlot);
  }

  // The whole-table loops below read the frame's words directly (one frame
  // lookup per table, not two calls per entry) and count `entriesRead` as
  // lo() would: one per entry. Nothing writes to the table while they run
  // (validation and release only take and drop references).

  free(mfn: number, type: PageType, xenL2: boolean): void {
    const pae = this.pae;
    if (type === PGT_L1) {
      const f = this.mem.frame(mfn);
      const n = this.n;
      this.scanLines += n / this.perLine;
      if (zeroPrefix(f, pae ? 2 * n : n)) return; // nothing present: no reference to drop
      let present = 0;
      if (pae) {
        for (let w = 0; w < 2 * n; w += 2) {
          const lo = f[w]!;
          if ((lo & PTE_P) === 0) continue;
          present++;
          if ((lo & PTE_RW) === 0) continue;
          this.putPageFromL1e(lo >>> 0, f[w + 1]! >>> 0);
        }
      } else {
        for (let i = 0; i < n; i++) {
          const lo = f[i]!;
          if ((lo & PTE_P) === 0) continue;
          present++;
          if ((lo & PTE_RW) === 0) continue;
          this.putPageFromL1e(lo >>> 0, 0);
        }
      }
      this.scanPresent += present;
    } else if (type === PGT_L2) {
      const f = this.mem.frame(mfn);
      const n = this.guestL2Slots(xenL2);
      this.scanLines += Math.ceil(n / this.perLine);
      const step = pae ? 2 : 1;
      const end = n * step;
      if (zeroPrefix(f, end)) return; // nothing present: no reference to drop
      for (let w = 0; w < end; w += step) {
        const lo = f[w]!;
        if ((lo & PTE_P) === 0) continue;
        this.scanPresent++;
        this.putPageFromL2e(lo >>> 0, pae ? f[w + 1]! >>> 0 : 0, mfn);
      }
    } else if (type === PGT_L3) {
      for (let i = 0; i < 4; i++) this.putPageFromL3e(this.lo(mfn, i), this.hi(mfn, i), mfn);
    }
  }

  // allocL1/allocL2 count one read per entry looked at (the failing one
  // included) before any rollback reads, as lo() would: the total is added
  // when the loop ends (it is charged only at the end of the hypercall).
  // All four whole-table loops skip a range that is all zero (zeroPrefix:
  // nothing present, so nothing to take or drop) but still count its reads.

  private allocL1(mfn: number): boolean {
    const f = this.mem.frame(mfn);
    const pae = this.pae;
    const n = this.n;
    const step = pae ? 2 : 1;
    const end = n * step;
    let present = 0;
    for (let w = zeroPrefix(f, end) ? end : 0; w < end; w += step) {
      const lo = f[w]!;
      if ((lo & PTE_P) === 0) continue;
      present++;
      if (!this.getPageFromL1e(lo >>> 0, pae ? f[w + 1]! >>> 0 : 0)) {
        let i = w / step;
        this.scanLines += Math.ceil((i + 1) / this.perLine);
        this.scanPresent += present;
        this.log(R.allocFailure(1, i));
        while (i-- > 0) this.putPageFromL1e(this.lo(mfn, i), this.hi(mfn, i));
        return false;
      }
    }
    this.scanLines += n / this.perLine;
    this.scanPresent += present;
    return true;
  }

  private allocL2(mfn: number, xenL2: boolean): boolean {
    const f = this.mem.frame(mfn);
    const pae = this.pae;
    const slots = this.guestL2Slots(xenL2);
    const step = pae ? 2 : 1;
    const end = slots * step;
    let present = 0;
    for (let w = zeroPrefix(f, end) ? end : 0; w < end; w += step) {
      const lo = f[w]!;
      if ((lo & PTE_P) === 0) continue;
      present++;
      if (!this.getPageFromL2e(lo >>> 0, pae ? f[w + 1]! >>> 0 : 0)) {
        let i = w / step;
        this.scanLines += Math.ceil((i + 1) / this.perLine);
        this.scanPresent += present;
        this.log(R.allocFailure(2, i));
        while (i-- > 0) if (this.isGuestL2Slot(xenL2, i)) this.putPageFromL2e(this.lo(mfn, i), this.hi(mfn, i), mfn);
        return false;
      }
    }
    this.scanLines += Math.ceil(slots / this.perLine);
    this.scanPresent += present;
    // 2-level: every L2 is a root and carries Xen's private mappings.
    if (!this.pae) this.entriesWritten += this.hole.install(mfn);
    return true;
  }

  private allocL3(mfn: number): boolean {
    if (mfn >= PAE_L3_LIMIT_MFN && !this.paeExtendedCr3()) {
      this.log(R.pgdAbove4G(mfn));
      return false;
    }
    let i = 0;
    let ok = true;
    for (; i < 4 && ok; i++) {
      const lo = this.lo(mfn, i);
      const hi = this.hi(mfn, i);
      if (i === 3) {
        // Slot 3: present, legal flags, and an L2 typed L2 + pae_xen_l2.
        // alloc_l3_table checks slot 3 itself (present, flags, get_page_and_type
        // as L2|pae_xen_l2) and goes straight to its failure line; the
        // "PAE L3 3rd slot is empty" line of create_pae_xen_mappings is never
        // reached from here.
        if ((lo & PTE_P) === 0) {
          ok = false;
        } else if ((this.flagsOf(lo, hi) & PAE_L3_DISALLOW) !== 0) {
          ok = false;
        } else {
          const m = this.frameOf(lo, hi);
          if (!this.p2m.isGuestMfn(m)) {
            this.log(R.noPageRef(m));
            ok = false;
          } else ok = this.frames.getPageType(m, PGT_L2, true);
        }
      } else ok = this.getPageFromL3e(lo, hi);
      if (!ok) break;
    }
    if (ok) {
      // create_pae_xen_mappings: the slot-3 L2 must belong to this L3 alone.
      const l2 = this.frameOf(this.lo(mfn, 3), this.hi(mfn, 3));
      if (this.frames.countOf(l2) !== 1) {
        this.log(R.l3SlotShared());
        ok = false;
        i = 4;
      } else {
        this.entriesWritten += this.hole.install(l2);
        return true;
      }
    }
    this.log(R.allocFailure(3, i));
    while (i-- > 0) this.putPageFromL3e(this.lo(mfn, i), this.hi(mfn, i), mfn);
    return false;
  }

  // ---- single-entry updates (mmu_update, ptwr) ----

  /** mod_l1_entry: replace entry `i` of L1 `mfn`. */
  modL1Entry(mfn: number, i: number, nlo: number, nhi: number): boolean {
    const olo = this.lo(mfn, i);
    const ohi = this.hi(mfn, i);
    if ((nlo & PTE_P) !== 0) {
      const bits = this.flagsOf(nlo, nhi) & this.l1Disallow;
      if (bits !== 0) {
        this.log(R.badL1Flags(bits));
        return false;
      }
      // Fast path: same frame, same presence and RW: no reference changes.
      if ((olo & PTE_P) !== 0 && this.frameOf(olo, ohi) === this.frameOf(nlo, nhi) && ((olo ^ nlo) & PTE_RW) === 0) {
        this.write(mfn, i, nlo, nhi);
        return true;
      }
      if (!this.getPageFromL1e(nlo, nhi)) return false;
    }
    this.write(mfn, i, nlo, nhi);
    this.putPageFromL1e(olo, ohi);
    return true;
  }

  /** mod_l2_entry: replace entry `i` of L2 `mfn` (Xen's slots are refused). */
  modL2Entry(mfn: number, i: number, nlo: number, nhi: number, xenL2: boolean): boolean {
    if (!this.isGuestL2Slot(xenL2, i)) {
      this.log(R.illegalL2Update(this.entryMaddr(mfn, i)));
      return false;
    }
    const olo = this.lo(mfn, i);
    const ohi = this.hi(mfn, i);
    if ((nlo & PTE_P) !== 0) {
      const bits = this.flagsOf(nlo, nhi) & this.l2Disallow;
      if (bits !== 0) {
        this.log(R.badL2Flags(bits));
        return false;
      }
      if ((olo & PTE_P) !== 0 && this.frameOf(olo, ohi) === this.frameOf(nlo, nhi)) {
        this.write(mfn, i, nlo, nhi);
        return true;
      }
      if (!this.getPageFromL2e(nlo, nhi)) return false;
    }
    this.write(mfn, i, nlo, nhi);
    this.putPageFromL2e(olo, ohi, mfn);
    return true;
  }

  /** mod_l3_entry (PAE): replace entry `i` (0..2) of L3 `mfn`; slot 3 is Xen's (refused without a log line, as Xen 3.1 does). */
  modL3Entry(mfn: number, i: number, nlo: number, nhi: number): boolean {
    if (i >= 3) {
      this.log(R.l3Slot3Update(this.entryMaddr(mfn, i)));
      return false;
    }
    const olo = this.lo(mfn, i);
    const ohi = this.hi(mfn, i);
    if ((nlo & PTE_P) !== 0) {
      const bits = this.flagsOf(nlo, nhi) & PAE_L3_DISALLOW;
      if (bits !== 0) {
        this.log(R.badL3Flags(bits));
        return false;
      }
      if ((olo & PTE_P) !== 0 && this.frameOf(olo, ohi) === this.frameOf(nlo, nhi)) {
        // Xen 3.1.0's fast path returns after UPDATE_ENTRY, before
        // pae_flush_pgd: above 4 GiB the low copy stays as it was until the
        // next write_ptbase (below 4 GiB pae_flush_pgd does nothing anyway).
        this.write(mfn, i, nlo, nhi);
        return true;
      }
      if (!this.getPageFromL3e(nlo, nhi)) return false;
    }
    this.write(mfn, i, nlo, nhi);
    this.putPageFromL3e(olo, ohi, mfn);
    this.onL3Changed(mfn, i);
    return true;
  }

  /** A plain write by Xen to a frame of type writable/none (mmu_update's not_a_pt path). */
  writeRaw(mfn: number, i: number, lo: number, hi: number): void {
    this.write(mfn, i, lo, hi);
  }
}
