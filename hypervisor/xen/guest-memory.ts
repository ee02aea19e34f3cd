/**
 * Guest memory as the PV guest kernel sees it through its direct map:
 * pseudo-physical addresses, translated through the p2m to the machine
 * frames the domain owns.
 *
 * Page tables are mapped read-only for the guest, so a store into a frame
 * Xen has typed as a page table faults into Xen:
 *  - an L1: with the writable_pagetables assist, Xen emulates the store as a
 *    validated update (a trap, charged as one);
 *  - an L2/L3: Xen does not emulate it; the fault goes back to the guest,
 *    which cannot handle it: the store is refused.
 * Stores into any other frame are plain stores (no cost: the guest kernel's
 * own work is not the backend's).
 */
import type { GuestMemory } from '../paravirt-ops.js';
import { pteFromWords, pteHi, pteLo, type GuestPhys, type Pfn } from '../types.js';
import type { XenDomain } from './domain.js';
import { PGT_L1 } from './frame-table.js';
import type { XenHypercalls } from './hypercalls.js';
import { R, typeName } from './reasons.js';

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

  /** The store hits a page-table frame: emulate (L1) or refuse (L2/L3). Returns true if handled. */
  private trapped(ma: number, bytes: 4 | 8, value: bigint): boolean {
    const mfn = Math.floor(ma / 4096);
    const f = this.d.frames.get(mfn);
    if (f === undefined || f.count === 0 || f.type < 1 || f.type > 4) return false;
    if (f.type === PGT_L1) {
      this.hv.ptwr(mfn, ma - mfn * 4096, bytes, value);
      return true;
    }
    this.d.memlog.length = 0;
    this.d.log(R.writeToPageTable(mfn, typeName(f.type, f.xenL2)));
    throw this.d.refuse('guest store to a page table', mfn);
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
        out.set(this.d.mmu.mem.frame(mfn).subarray(w, w + words)); // Int32 -> Uint32: read32's `>>> 0`
        return;
      }
    }
    for (let i = 0; i < words; i++) out[i] = this.read32(addr + 4 * i);
  }

  write32(addr: GuestPhys, value: number): void {
    // Fast path: an aligned store into a frame that is not a page table (a plain store, as below).
    if ((addr >>> 0) === addr && (addr & 3) === 0) {
      const mfn = this.d.p2m.pfnToMfn(addr >>> 12);
      if (mfn >= 0 && !this.d.frames.isPageTable(mfn)) {
        this.d.mmu.mem.frameW(mfn)[(addr & 0xfff) >>> 2] = value | 0;
        return;
      }
    }
    const ma = this.ma(addr, 4);
    // The value is only made a bigint for a store that may trap.
    if (this.d.frames.isPageTable(Math.floor(ma / 4096)) && this.trapped(ma, 4, BigInt(value >>> 0))) return;
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
    const pt = this.d.frames.isPageTable(Math.floor(ma / 4096));
    if (pt && (ma & 7) === 0 && this.trapped(ma, 8, value & 0xffffffffffffffffn)) return;
    if (pt && (ma & 7) !== 0) {
      // A misaligned 8-byte store into a page table: two 4-byte halves, each trapped.
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
      if (dmfn >= 0 && smfn >= 0 && dmfn !== smfn && (da & 3) === 0 && (sa & 3) === 0 && n % 4 === 0 && !this.d.frames.isPageTable(dmfn)) {
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
      if (mfn >= 0 && (a & 3) === 0 && n % 4 === 0 && !this.d.frames.isPageTable(mfn)) {
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
    if (!this.d.frames.isPageTable(mfn)) {
      this.d.mmu.mem.zeroFrame(mfn);
      return;
    }
    // Zeroing a live table: every non-zero entry is a trapped store (or refused above L1).
    const esz = this.d.pae ? 8 : 4;
    for (let off = 0; off < 4096; off += esz) {
      const v = esz === 8 ? this.d.mmu.mem.read64(mfn * 4096 + off) : BigInt(this.d.mmu.mem.read32(mfn * 4096 + off));
      if (v !== 0n) this.trapped(mfn * 4096 + off, esz as 4 | 8, 0n);
    }
  }

  copyPage(dst: Pfn, src: Pfn): void {
    const dmfn = this.mfnOfPfn(dst);
    const smfn = this.mfnOfPfn(src);
    if (!this.d.frames.isPageTable(dmfn)) {
      this.d.mmu.mem.copyFrame(dmfn, smfn);
      return;
    }
    const esz = this.d.pae ? 8 : 4;
    const mem = this.d.mmu.mem;
    for (let off = 0; off < 4096; off += esz) {
      const v = esz === 8 ? mem.read64(smfn * 4096 + off) : BigInt(mem.read32(smfn * 4096 + off));
      const o = esz === 8 ? mem.read64(dmfn * 4096 + off) : BigInt(mem.read32(dmfn * 4096 + off));
      if (v !== o) this.trapped(dmfn * 4096 + off, esz as 4 | 8, v);
    }
  }
}
