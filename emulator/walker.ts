/**
 * The page walker: 2-level (32-bit) and PAE paging, the cold path taken on a
 * TLB miss (SDM vol. 3 4.3, 4.4, 4.6, 4.7, 4.8).
 *
 * Order of checks, per level: present, then reserved bits; after the leaf,
 * the access rights combined over all levels. On success the accessed flag of
 * every entry used is set (PAE PDPTEs have none) and, for a write, the leaf's
 * dirty flag. A walk that faults changes nothing in memory.
 *
 * With `commit` false the walk is a probe: no A/D updates, no counters, no
 * cycles (the reference walk used by debuggers, traces and the fuzzer).
 *
 *   2-level:  CR3 -> PDE[va 31:22] -> PTE[va 21:12] -> 4 KiB page
 *                               \-> (PS, CR4.PSE) 4 MiB page
 *   PAE:      PDPTE reg[va 31:30] -> PDE[va 29:21] -> PTE[va 20:12] -> 4 KiB
 *                                              \-> (PS) 2 MiB page
 */
import type { CycleFigures, MmuCounters } from './cost-model.js';
import type { Cpu } from './cpu.js';
import * as bits from './paging-bits.js';
import type { PhysMem } from './phys-mem.js';
import * as tlb from './tlb.js';
import type { WalkEntryRead } from './trace.js';

// The constants the walk uses, as this module's own: V8 folds a module's own
// constants into optimized code, but reads an imported (or exported) one from
// its module cell, with a TDZ check, at every use (some 25 per walk).
const CR3_PDPT_MASK = bits.CR3_PDPT_MASK;
const PAE_HI_ADDR_MASK = bits.PAE_HI_ADDR_MASK;
const PAE_RSVD_HI = bits.PAE_RSVD_HI;
const PDE2M_RSVD_LO = bits.PDE2M_RSVD_LO;
const PDE4M_ADDR_HI_MASK = bits.PDE4M_ADDR_HI_MASK;
const PDE4M_RSVD_LO = bits.PDE4M_RSVD_LO;
const PFEC_ID = bits.PFEC_ID;
const PFEC_P = bits.PFEC_P;
const PFEC_RSVD = bits.PFEC_RSVD;
const PFEC_U = bits.PFEC_U;
const PFEC_W = bits.PFEC_W;
const PTE_A = bits.PTE_A;
const PTE_D = bits.PTE_D;
const PTE_G = bits.PTE_G;
const PTE_NX_HI = bits.PTE_NX_HI;
const PTE_P = bits.PTE_P;
const PTE_PS = bits.PTE_PS;
const PTE_RW = bits.PTE_RW;
const PTE_US = bits.PTE_US;
const TLBF_D = tlb.TLBF_D;
const TLBF_G = tlb.TLBF_G;
const TLBF_NX = tlb.TLBF_NX;
const TLBF_RW = tlb.TLBF_RW;
const TLBF_US = tlb.TLBF_US;

export class Walker {
  // ---- result of the last walk (no allocation per walk) ----
  /** Whether the last walk faulted, and its #PF error code. */
  fault = false;
  errorCode = 0;
  /** 4 KiB frame of the translated address. */
  pfn = 0;
  /** First 4 KiB frame of the page (large pages: its base). */
  basePfn = 0;
  /** 0 for 4 KiB, else log2 of the large page size (21 or 22). */
  largeShift = 0;
  /** TLBF_* flags of the translation. */
  flags = 0;
  /** Paging-structure entries read from memory. */
  depth = 0;
  /** Cycles charged by this walk (entry reads and A/D updates). */
  cycles = 0;
  /** Entries read, when `record` is on. */
  entries: WalkEntryRead[] = [];
  /** `record` as 0 or 1 (the walk tests it; V8 tracks no type for a boolean field, see Cpu.mode). */
  private rec = 0;

  /** Whether walks record the entries they read (for traces and probes). */
  get record(): boolean {
    return this.rec !== 0;
  }
  set record(on: boolean) {
    this.rec = on ? 1 : 0;
  }

  // Set once in the constructor (`declare`: see Cpu).
  private declare readonly mem: PhysMem;
  private declare readonly cpu: Cpu;
  private declare readonly counters: MmuCounters;
  private declare readonly cyc: CycleFigures;
  /** Direct-mapped, hash-indexed walk-entry cache (64-byte lines), cost model only. */
  private declare readonly lineTag: Float64Array;
  private declare readonly lineMask: number;

  constructor(mem: PhysMem, cpu: Cpu, counters: MmuCounters, cyc: CycleFigures, walkCacheLines: number) {
    this.mem = mem;
    this.cpu = cpu;
    this.counters = counters;
    this.cyc = cyc;
    const lines = 1 << Math.ceil(Math.log2(Math.max(1, walkCacheLines)));
    this.lineTag = new Float64Array(lines).fill(-1);
    this.lineMask = lines - 1;
  }

  /** Cost of reading one paging entry at byte address pfn*4096 + word*4. */
  private entryCost(pfn: number, word: number): number {
    // Lines at the same offset of different frames (a PDE and the PTE below
    // it, often) must not all collide: index by a fold of frame and offset.
    const line = pfn * 64 + (word >>> 4);
    const i = ((word >>> 4) ^ pfn ^ (pfn >>> 6)) & this.lineMask;
    const tags = this.lineTag;
    if (tags[i] === line) {
      this.counters.walkCacheHits++;
      return this.cyc.walkEntryCached;
    }
    tags[i] = line;
    this.counters.walkCacheMisses++;
    return this.cyc.walkEntryMemory;
  }

  /** Forget the walk cache (a new machine state, e.g. between vector cases). */
  resetCache(): void {
    this.lineTag.fill(-1);
  }

  /**
   * Walk the tables for `va` with access class `acc` (kind * 2 + user).
   * Sets the result fields; returns true on success.
   */
  walk(va: number, acc: number, commit: boolean): boolean {
    this.largeShift = 0;
    if (this.rec !== 0) this.entries = [];
    return this.cpu.pae ? this.walkPae(va, acc, commit) : this.walk2(va, acc, commit);
  }

  /** End a faulting walk: `code` is P/RSVD; W, U and I/D come from the access. */
  private fail(code: number, acc: number, depth: number, cycles: number): false {
    let ec = code;
    const kind = acc >> 1;
    if (kind === 1) ec |= PFEC_W;
    if ((acc & 1) !== 0) ec |= PFEC_U;
    if (kind === 2 && this.cpu.pae && this.cpu.nxe) ec |= PFEC_ID;
    this.fault = true;
    this.errorCode = ec;
    this.depth = depth;
    this.cycles = cycles;
    return false;
  }

  /**
   * Permission check on combined flags (SDM 4.6): a user access needs U/S;
   * a write needs R/W unless it is a supervisor write with CR0.WP clear; a
   * fetch needs XD clear (when EFER.NXE is set).
   */
  private allowed(acc: number, rw: boolean, us: boolean, nx: boolean): boolean {
    if ((acc & 1) !== 0 && !us) return false;
    const kind = acc >> 1;
    if (kind === 0) return true;
    if (kind === 1) return rw || ((acc & 1) === 0 && !this.cpu.wp);
    return !(nx && this.cpu.nxe);
  }

  private walk2(va: number, acc: number, commitArg: boolean): boolean {
    // One pointer compare; the tests below are then on a known boolean, not a full ToBoolean each.
    const commit = commitArg === true;
    const mem = this.mem;
    const cpu = this.cpu;
    const record = this.rec !== 0;
    const pdPfn = cpu.cr3 >>> 12;
    const pdeWord = va >>> 22;
    const pde = mem.frame(pdPfn)[pdeWord]!;
    let cycles = commit ? this.entryCost(pdPfn, pdeWord) : 0;
    if (record) this.entries.push({ level: 'pde', pa: pdPfn * 4096 + pdeWord * 4, value: BigInt(pde >>> 0) });
    if ((pde & PTE_P) === 0) return this.fail(0, acc, 1, cycles);
    if ((pde & PTE_PS) !== 0 && cpu.pse) {
      // 4 MiB page: bits 21:17 reserved, 16:13 are address bits 35:32.
      if ((pde & PDE4M_RSVD_LO) !== 0) return this.fail(PFEC_P | PFEC_RSVD, acc, 1, cycles);
      const rw = (pde & PTE_RW) !== 0;
      const us = (pde & PTE_US) !== 0;
      if (!this.allowed(acc, rw, us, false)) return this.fail(PFEC_P, acc, 1, cycles);
      const base = ((pde >>> 12) & 0xffc00) + ((pde & PDE4M_ADDR_HI_MASK) >>> 13) * 0x100000;
      let leaf = pde;
      if (commit) {
        const want = acc >> 1 === 1 ? PTE_A | PTE_D : PTE_A;
        if ((leaf & want) !== want) {
          leaf = this.setAD(pdPfn, pdeWord, leaf, want);
          cycles += this.cyc.adUpdate;
        }
      }
      this.basePfn = base;
      this.pfn = base + ((va >>> 12) & 0x3ff);
      this.largeShift = 22;
      this.flags = (rw ? TLBF_RW : 0) | (us ? TLBF_US : 0) | ((leaf & PTE_D) !== 0 ? TLBF_D : 0) |
        ((leaf & PTE_G) !== 0 && cpu.pge ? TLBF_G : 0);
      this.depth = 1;
      this.cycles = cycles;
      this.fault = false;
      return true;
    }
    const ptPfn = pde >>> 12;
    const pteWord = (va >>> 12) & 0x3ff;
    const pte = mem.frame(ptPfn)[pteWord]!;
    if (commit) cycles += this.entryCost(ptPfn, pteWord);
    if (record) this.entries.push({ level: 'pte', pa: ptPfn * 4096 + pteWord * 4, value: BigInt(pte >>> 0) });
    if ((pte & PTE_P) === 0) return this.fail(0, acc, 2, cycles);
    const rw = (pde & pte & PTE_RW) !== 0;
    const us = (pde & pte & PTE_US) !== 0;
    if (!this.allowed(acc, rw, us, false)) return this.fail(PFEC_P, acc, 2, cycles);
    let leaf = pte;
    if (commit) {
      if ((pde & PTE_A) === 0) {
        this.setAD(pdPfn, pdeWord, pde, PTE_A);
        cycles += this.cyc.adUpdate;
      }
      const want = acc >> 1 === 1 ? PTE_A | PTE_D : PTE_A;
      if ((leaf & want) !== want) {
        leaf = this.setAD(ptPfn, pteWord, leaf, want);
        cycles += this.cyc.adUpdate;
      }
    }
    this.basePfn = this.pfn = pte >>> 12;
    this.flags = (rw ? TLBF_RW : 0) | (us ? TLBF_US : 0) | ((leaf & PTE_D) !== 0 ? TLBF_D : 0) |
      ((leaf & PTE_G) !== 0 && cpu.pge ? TLBF_G : 0);
    this.depth = 2;
    this.cycles = cycles;
    this.fault = false;
    return true;
  }

  private walkPae(va: number, acc: number, commitArg: boolean): boolean {
    // One pointer compare; the tests below are then on a known boolean, not a full ToBoolean each.
    const commit = commitArg === true;
    const mem = this.mem;
    const cpu = this.cpu;
    const record = this.rec !== 0;
    const rsvdHi = cpu.nxe ? PAE_RSVD_HI : PAE_RSVD_HI | PTE_NX_HI;
    const i = va >>> 30;
    const pdpteLo = cpu.pdpteLo[i]!;
    const pdpteHi = cpu.pdpteHi[i]!;
    if (record) this.entries.push({ level: 'pdpte', pa: ((cpu.cr3 & CR3_PDPT_MASK) >>> 0) + 8 * i, value: cpu.pdpte(i) });
    if ((pdpteLo & PTE_P) === 0) return this.fail(0, acc, 0, 0);
    // PDE
    const pdPfn = (pdpteLo >>> 12) + (pdpteHi & PAE_HI_ADDR_MASK) * 0x100000;
    const pdeWord = ((va >>> 21) & 0x1ff) * 2;
    const pdFrame = mem.frame(pdPfn);
    const pdeLo = pdFrame[pdeWord]!;
    const pdeHi = pdFrame[pdeWord + 1]!;
    let cycles = commit ? this.entryCost(pdPfn, pdeWord) : 0;
    if (record) this.entries.push({ level: 'pde', pa: pdPfn * 4096 + pdeWord * 4, value: u64(pdeLo, pdeHi) });
    if ((pdeLo & PTE_P) === 0) return this.fail(0, acc, 1, cycles);
    if ((pdeHi & rsvdHi) !== 0) return this.fail(PFEC_P | PFEC_RSVD, acc, 1, cycles);
    if ((pdeLo & PTE_PS) !== 0) {
      if ((pdeLo & PDE2M_RSVD_LO) !== 0) return this.fail(PFEC_P | PFEC_RSVD, acc, 1, cycles);
      const rw = (pdeLo & PTE_RW) !== 0;
      const us = (pdeLo & PTE_US) !== 0;
      const nx = (pdeHi & PTE_NX_HI) !== 0;
      if (!this.allowed(acc, rw, us, nx)) return this.fail(PFEC_P, acc, 1, cycles);
      const base = ((pdeLo >>> 12) & 0xffe00) + (pdeHi & PAE_HI_ADDR_MASK) * 0x100000;
      let leaf = pdeLo;
      if (commit) {
        const want = acc >> 1 === 1 ? PTE_A | PTE_D : PTE_A;
        if ((leaf & want) !== want) {
          leaf = this.setAD(pdPfn, pdeWord, leaf, want);
          cycles += this.cyc.adUpdate;
        }
      }
      this.basePfn = base;
      this.pfn = base + ((va >>> 12) & 0x1ff);
      this.largeShift = 21;
      this.flags = (rw ? TLBF_RW : 0) | (us ? TLBF_US : 0) | (nx ? TLBF_NX : 0) |
        ((leaf & PTE_D) !== 0 ? TLBF_D : 0) | ((leaf & PTE_G) !== 0 && cpu.pge ? TLBF_G : 0);
      this.depth = 1;
      this.cycles = cycles;
      this.fault = false;
      return true;
    }
    // PTE
    const ptPfn = (pdeLo >>> 12) + (pdeHi & PAE_HI_ADDR_MASK) * 0x100000;
    const pteWord = ((va >>> 12) & 0x1ff) * 2;
    const ptFrame = mem.frame(ptPfn);
    const pteLo = ptFrame[pteWord]!;
    const pteHi = ptFrame[pteWord + 1]!;
    if (commit) cycles += this.entryCost(ptPfn, pteWord);
    if (record) this.entries.push({ level: 'pte', pa: ptPfn * 4096 + pteWord * 4, value: u64(pteLo, pteHi) });
    if ((pteLo & PTE_P) === 0) return this.fail(0, acc, 2, cycles);
    if ((pteHi & rsvdHi) !== 0) return this.fail(PFEC_P | PFEC_RSVD, acc, 2, cycles);
    const rw = (pdeLo & pteLo & PTE_RW) !== 0;
    const us = (pdeLo & pteLo & PTE_US) !== 0;
    const nx = ((pdeHi | pteHi) & PTE_NX_HI) !== 0;
    if (!this.allowed(acc, rw, us, nx)) return this.fail(PFEC_P, acc, 2, cycles);
    let leaf = pteLo;
    if (commit) {
      if ((pdeLo & PTE_A) === 0) {
        this.setAD(pdPfn, pdeWord, pdeLo, PTE_A);
        cycles += this.cyc.adUpdate;
      }
      const want = acc >> 1 === 1 ? PTE_A | PTE_D : PTE_A;
      if ((leaf & want) !== want) {
        leaf = this.setAD(ptPfn, pteWord, leaf, want);
        cycles += this.cyc.adUpdate;
      }
    }
    this.basePfn = this.pfn = (pteLo >>> 12) + (pteHi & PAE_HI_ADDR_MASK) * 0x100000;
    this.flags = (rw ? TLBF_RW : 0) | (us ? TLBF_US : 0) | (nx ? TLBF_NX : 0) |
      ((leaf & PTE_D) !== 0 ? TLBF_D : 0) | ((leaf & PTE_G) !== 0 && cpu.pge ? TLBF_G : 0);
    this.depth = 2;
    this.cycles = cycles;
    this.fault = false;
    return true;
  }

  /**
   * Set the `want` bits (A, or A and D) in an entry's low word; the caller
   * has checked that some are clear and charges the locked update. Returns
   * the new low word.
   */
  private setAD(pfn: number, word: number, lo: number, want: number): number {
    const nv = lo | want;
    this.mem.frameW(pfn)[word] = nv;
    this.counters.adUpdates++;
    return nv;
  }
}

function u64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
