/**
 * Guest memory as the PV guest kernel sees it through its direct map:
 * pseudo-physical addresses, translated through the p2m to the machine
 * frames the domain owns.
 *
 * The direct map's protection is the hardware's: a store to a frame goes
 * through the direct-map pte (PAGE_OFFSET + pfn << 12) of the loaded page
 * tables, and if that pte is read-only the processor raises #PF (present,
 * write, supervisor), which goes to Xen (xen/arch/x86/traps.c
 * do_page_fault -> fixup_page_fault):
 *  - the frame is typed L1 (count > 0) and the guest has the
 *    writable_pagetables assist: ptwr_do_page_fault emulates the store as a
 *    validated L1 update (a trap, charged as one);
 *  - anything else (an L2/L3, a frame mapped read-only but untyped, no
 *    assist): the #PF is bounced to the guest (propagate_page_fault), whose
 *    do_page_fault has no fixup for a kernel-mode protection fault on a
 *    kernel address: no_context, an oops (thrown as KernelBug after the
 *    bounce is charged).
 * Where no direct-map pte exists (highmem, before the guest's first base
 * pointer) a frame typed as a page table is taken as read-only (Xen never
 * lets one be mapped writable). Plain stores cost nothing here (the guest
 * kernel's own work is not the backend's).
 */
import { PFEC_P, PFEC_W, PTE_P, PTE_PS, PTE_RW } from '../../emulator/paging-bits.js';
import type { GuestMemory } from '../paravirt-ops.js';
import { KernelBug, pteFromWords, pteHi, pteLo, type GuestPhys, type Pfn } from '../types.js';
import type { XenDomain } from './domain.js';
import { PGT_L1 } from './frame-table.js';
import type { XenHypercalls } from './hypercalls.js';

/** dmLo's answer when the direct map has no pte for the frame. */
const NO_PTE = -1;

export class XenGuestMemory implements GuestMemory {
  readonly nrPages: number;

  constructor(
    private readonly d: XenDomain,
    private readonly hv: XenHypercalls,
  ) {
    this.nrPages = d.p2m.nrPages;
  }

  /** Machine address of guest-physical `addr` (the access must not cross a page). */
  private ma(addr: number, len: number): number {
    const pfn = Math.floor(addr / 4096);
    const off = addr - pfn * 4096;
    const mfn = Number.isInteger(addr) ? this.d.p2m.pfnToMfn(pfn) : -1;
    if (mfn < 0 || off + len > 4096) {
      throw new RangeError(
        `guest-physical address 0x${Number(addr).toString(16)} (+${len}) outside guest memory (0..0x${(this.nrPages * 4096).toString(16)}) or across a page`,
      );
    }
    return mfn * 4096 + off;
  }

  private mfnOfPfn(pfn: number): number {
    const mfn = Number.isInteger(pfn) ? this.d.p2m.pfnToMfn(pfn) : -1;
    if (mfn < 0) throw new RangeError(`pfn 0x${Number(pfn).toString(16)} outside guest memory (${this.nrPages} pages)`);
    return mfn;
  }

  /**
   * The low word of the direct-map pte of `pfn` in the loaded page tables
   * (the large-page pde if the direct map uses one), or NO_PTE. Reads the
   * machine's tables as the processor's walk would (no cost: the TLB holds
   * the kernel's direct map in the common case).
   */
  private dmLo(pfn: number): number {
    const d = this.d;
    const base = d.baseMfn;
    if (base < 0) return NO_PTE;
    const va = d.config.pageOffset + pfn * 4096;
    if (va >= d.hole.start) return NO_PTE;
    const mem = d.mmu.mem;
    const rules = d.rules;
    if (d.pae) {
      const i3 = va >>> 30;
      const lo3 = mem.word(base, 2 * i3);
      if ((lo3 & PTE_P) === 0) return NO_PTE;
      const l2 = rules.frameOf(lo3, mem.word(base, 2 * i3 + 1));
      if (!d.p2m.isGuestMfn(l2)) return NO_PTE;
      const i2 = (va >>> 21) & 511;
      const lo2 = mem.word(l2, 2 * i2);
      if ((lo2 & PTE_P) === 0) return NO_PTE;
      if ((lo2 & PTE_PS) !== 0) return lo2;
      const l1 = rules.frameOf(lo2, mem.word(l2, 2 * i2 + 1));
      if (!d.p2m.isGuestMfn(l1)) return NO_PTE;
      const lo1 = mem.word(l1, 2 * ((va >>> 12) & 511));
      return (lo1 & PTE_P) === 0 ? NO_PTE : lo1 & ~PTE_RW | (lo1 & PTE_RW & lo2);
    }
    const lo2 = mem.word(base, va >>> 22);
    if ((lo2 & PTE_P) === 0) return NO_PTE;
    if ((lo2 & PTE_PS) !== 0) return lo2;
    const l1 = rules.frameOf(lo2, 0);
    if (!d.p2m.isGuestMfn(l1)) return NO_PTE;
    const lo1 = mem.word(l1, (va >>> 12) & 1023);
    return (lo1 & PTE_P) === 0 ? NO_PTE : lo1 & ~PTE_RW | (lo1 & PTE_RW & lo2);
  }

  /** Does a store to frame `mfn` (guest `pfn`) fault? (Its direct-map pte is read-only.) */
  private storeFaults(pfn: number, mfn: number): boolean {
    const lo = this.dmLo(pfn);
    if (lo === NO_PTE) return this.d.frames.isPageTable(mfn);
    return (lo & PTE_RW) === 0;
  }

  /**
   * The #PF of a store at machine address `ma` (guest-physical `addr`):
   * ptwr emulation of an L1 store, or the fault bounced to the guest, whose
   * kernel oopses.
   */
  private storeFault(addr: number, ma: number, bytes: 4 | 8, value: bigint): void {
    const d = this.d;
    const mfn = Math.floor(ma / 4096);
    const va = (d.config.pageOffset + addr) >>> 0;
    if (d.writablePagetables && d.frames.countOf(mfn) > 0 && d.frames.typeOf(mfn) === PGT_L1) {
      this.hv.ptwr(mfn, ma - mfn * 4096, bytes, value, va);
      return;
    }
    d.bouncePageFault(va, PFEC_P | PFEC_W);
    throw new KernelBug(
      'do_page_fault',
      `unable to handle kernel paging request at virtual address ${va.toString(16).padStart(8, '0')} ` +
        `(a store through the read-only direct-map pte of pfn 0x${Math.floor(addr / 4096).toString(16)}; ` +
        `Xen bounced the #PF, error code 0x3)`,
    );
  }

  read32(addr: GuestPhys): number {
    // Fast path: an aligned integer address in guest memory (what ma() and PhysMem.read32 would compute).
    if ((addr >>> 0) === addr && (addr & 3) === 0) {
      const mfn = this.d.p2m.pfnToMfn(addr >>> 12);
      if (mfn >= 0) return this.d.mmu.mem.frame(mfn)[(addr & 0xfff) >>> 2]! >>> 0;
    }
    return this.d.mmu.mem.read32(this.ma(addr, 4));
  }

  /** GuestMemory.read32s: one frame lookup for a range within a page, else read32 word by word. */
  read32s(addr: GuestPhys, out: Uint32Array, words: number): void {
    if ((addr >>> 0) === addr && (addr & 3) === 0 && words <= out.length && (addr & 0xfff) + words * 4 <= 4096) {
      const mfn = this.d.p2m.pfnToMfn(addr >>> 12);
      if (mfn >= 0) {
        const w = (addr & 0xfff) >>> 2;
        const f = this.d.mmu.mem.frame(mfn);
        // The frame's words seen as unsigned (read32's `>>> 0`, as a Uint32Array store does): a few words
        // one by one (no view to allocate: the fuzzer's census reads single entries), more as a same-type
        // copy (a memcpy, not a conversion per word).
        if (words <= 16) for (let i = 0; i < words; i++) out[i] = f[w + i]!;
        else out.set(new Uint32Array(f.buffer, f.byteOffset + 4 * w, words));
        return;
      }
    }
    for (let i = 0; i < words; i++) out[i] = this.read32(addr + 4 * i);
  }

  write32(addr: GuestPhys, value: number): void {
    // Fast path: an aligned store through a writable direct-map pte (a plain store, as below).
    if ((addr >>> 0) === addr && (addr & 3) === 0) {
      const mfn = this.d.p2m.pfnToMfn(addr >>> 12);
      if (mfn >= 0 && !this.storeFaults(addr >>> 12, mfn)) {
        this.d.mmu.mem.frameW(mfn)[(addr & 0xfff) >>> 2] = value | 0;
        return;
      }
    }
    const ma = this.ma(addr, 4);
    // The value is only made a bigint for a store that faults.
    if (this.storeFaults(Math.floor(addr / 4096), Math.floor(ma / 4096))) {
      this.storeFault(addr, ma, 4, BigInt(value >>> 0));
      return;
    }
    this.d.mmu.mem.write32(ma, value);
  }

  read64(addr: GuestPhys): bigint {
    if (!this.d.pae) return BigInt(this.read32(addr));
    const ma = this.ma(addr, 8);
    if ((ma & 7) === 0) {
      // An aligned entry: both words from the frame, one bigint (PhysMem.read64's value).
      const f = this.d.mmu.mem.frame(Math.floor(ma / 4096));
      const w = (ma & 0xfff) >>> 2;
      return pteFromWords(f[w]!, f[w + 1]!);
    }
    return this.d.mmu.mem.read64(ma);
  }

  write64(addr: GuestPhys, value: bigint): void {
    if (!this.d.pae) {
      this.write32(addr, pteLo(value));
      return;
    }
    const ma = this.ma(addr, 8);
    const faults = this.storeFaults(Math.floor(addr / 4096), Math.floor(ma / 4096));
    if (faults && (ma & 7) === 0) {
      this.storeFault(addr, ma, 8, value & 0xffffffffffffffffn);
      return;
    }
    if (faults) {
      // A misaligned 8-byte store into a read-only frame: two 4-byte halves, each faulting.
      this.write32(addr, pteLo(value));
      this.write32(addr + 4, pteHi(value));
      return;
    }
    // PhysMem.write64 without the BigInt arithmetic: low word, then high word.
    this.d.mmu.mem.write32(ma, pteLo(value));
    this.d.mmu.mem.write32(ma + 4, pteHi(value));
  }

  /**
   * memcpy as 32-bit loads and stores in ascending order. Per page-sized
   * chunk: a destination frame that is not a page table takes plain stores
   * (no trap can happen, so nothing else can change meanwhile): copied in
   * bulk; anything else (a page-table destination, the same frame on both
   * sides, an address write32 would reject) goes word by word.
   */
  copy32(dst: GuestPhys, src: GuestPhys, bytes: number): void {
    const mem = this.d.mmu.mem;
    const p2m = this.d.p2m;
    for (let off = 0; off < bytes; ) {
      const da = dst + off;
      const sa = src + off;
      const n = Math.min(bytes - off, 4096 - (da % 4096), 4096 - (sa % 4096));
      const dmfn = Number.isInteger(da) && da >= 0 ? p2m.pfnToMfn(Math.floor(da / 4096)) : -1;
      const smfn = Number.isInteger(sa) && sa >= 0 ? p2m.pfnToMfn(Math.floor(sa / 4096)) : -1;
      if (dmfn >= 0 && smfn >= 0 && dmfn !== smfn && (da & 3) === 0 && (sa & 3) === 0 && n % 4 === 0 && !this.storeFaults(Math.floor(da / 4096), dmfn)) {
        const sw = (sa % 4096) >>> 2;
        mem.frameW(dmfn).set(mem.frame(smfn).subarray(sw, sw + n / 4), (da % 4096) >>> 2);
      } else {
        for (let o = 0; o < n; o += 4) this.write32(da + o, this.read32(sa + o));
      }
      off += n;
    }
  }

  /** memset as 32-bit stores in ascending order: a chunk in a frame that is not a page table is filled in bulk (see copy32). */
  fill32(addr: GuestPhys, bytes: number, value: number): void {
    const mem = this.d.mmu.mem;
    for (let off = 0; off < bytes; ) {
      const a = addr + off;
      const n = Math.min(bytes - off, 4096 - (a % 4096));
      const mfn = Number.isInteger(a) && a >= 0 ? this.d.p2m.pfnToMfn(Math.floor(a / 4096)) : -1;
      if (mfn >= 0 && (a & 3) === 0 && n % 4 === 0 && !this.storeFaults(Math.floor(a / 4096), mfn)) {
        const w = (a % 4096) >>> 2;
        mem.frameW(mfn).fill(value | 0, w, w + n / 4);
      } else {
        for (let o = 0; o < n; o += 4) this.write32(a + o, value);
      }
      off += n;
    }
  }

  zeroPage(pfn: Pfn): void {
    const mfn = this.mfnOfPfn(pfn);
    if (!this.storeFaults(pfn, mfn)) {
      this.d.mmu.mem.zeroFrame(mfn);
      return;
    }
    // Zeroing a read-only frame: every store that changes an entry faults
    // (a live L1: one trapped write each).
    const esz = this.d.pae ? 8 : 4;
    for (let off = 0; off < 4096; off += esz) {
      const v = esz === 8 ? this.d.mmu.mem.read64(mfn * 4096 + off) : BigInt(this.d.mmu.mem.read32(mfn * 4096 + off));
      if (v !== 0n) this.storeFault(pfn * 4096 + off, mfn * 4096 + off, esz as 4 | 8, 0n);
    }
  }

  copyPage(dst: Pfn, src: Pfn): void {
    const dmfn = this.mfnOfPfn(dst);
    const smfn = this.mfnOfPfn(src);
    if (!this.storeFaults(dst, dmfn)) {
      this.d.mmu.mem.copyFrame(dmfn, smfn);
      return;
    }
    const esz = this.d.pae ? 8 : 4;
    const mem = this.d.mmu.mem;
    for (let off = 0; off < 4096; off += esz) {
      const v = esz === 8 ? mem.read64(smfn * 4096 + off) : BigInt(mem.read32(smfn * 4096 + off));
      const o = esz === 8 ? mem.read64(dmfn * 4096 + off) : BigInt(mem.read32(dmfn * 4096 + off));
      if (v !== o) this.storeFault(dst * 4096 + off, dmfn * 4096 + off, esz as 4 | 8, v);
    }
  }
}
