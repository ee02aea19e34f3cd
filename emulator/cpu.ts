/**
 * Control registers, CPL and the side effects of writing them (SDM vol. 3
 * 2.5, 4.4.1, 4.10.4.1):
 *  - MOV to CR3 flushes non-global TLB entries; under PAE paging it loads the
 *    four PDPTE registers, and a present PDPTE with a reserved bit set raises
 *    #GP, leaving CR3 and the PDPTE registers unchanged.
 *  - MOV to CR0/CR4 that changes CR0.PG, CR4.PAE, CR4.PGE or CR4.PSE flushes
 *    the TLB (global entries too); if PAE paging is in use afterwards, the
 *    PDPTEs are loaded from CR3 (with the same #GP rule).
 *  - CR0.PG=1 with CR0.PE=0 is #GP.
 *  - CR0.WP and EFER.NXE change how cached translations are checked; the
 *    cached permissions are re-derived, nothing is flushed.
 */
import { CC_FLUSH, type MmuCounters, type CycleFigures } from './cost-model.js';
import {
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR3_PDPT_MASK,
  CR4_PAE,
  CR4_PGE,
  CR4_PSE,
  EFER_NXE,
  PDPTE_RSVD_HI,
  PDPTE_RSVD_LO,
  PTE_P,
} from './paging-bits.js';
import type { PhysMem } from './phys-mem.js';
import type { Tlbs } from './tlb.js';

// Cpu.mode bits (this module's own constants: V8 folds them into optimized code).
const M_PAGING = 1; // CR0.PG
const M_PAE = 2; // CR4.PAE
const M_PSE = 4; // CR4.PSE
const M_PGE = 8; // CR4.PGE
const M_WP = 16; // CR0.WP
const M_NXE = 32; // EFER.NXE

/** Result of a control-register write: applied, or #GP (nothing changed). */
export type CrWriteResult = 'ok' | 'GP';

export class Cpu {
  cr0 = 0;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  efer = 0;
  /** Current privilege level: 0 (supervisor) or 3 (user). */
  cpl = 0;
  /** PDPTE registers (PAE), as uint32 halves. */
  readonly pdpteLo = new Int32Array(4);
  readonly pdpteHi = new Int32Array(4);

  /**
   * The mode bits derived from the registers (M_* below), kept in step with
   * them for the hot paths, which read them through the getters. One integer
   * rather than six boolean fields: V8 tracks no type for a boolean field, so
   * every test of one in optimized code was a full ToBoolean (about ten
   * instructions); a bit of a small integer is one load and one test.
   */
  mode = 0;

  get paging(): boolean {
    return (this.mode & M_PAGING) !== 0;
  }
  get pae(): boolean {
    return (this.mode & M_PAE) !== 0;
  }
  get pse(): boolean {
    return (this.mode & M_PSE) !== 0;
  }
  get pge(): boolean {
    return (this.mode & M_PGE) !== 0;
  }
  get wp(): boolean {
    return (this.mode & M_WP) !== 0;
  }
  get nxe(): boolean {
    return (this.mode & M_NXE) !== 0;
  }

  // Set once in the constructor. `declare`, not parameter properties: an
  // emitted field declaration would first define them as undefined, and the
  // second store makes V8 treat them as mutable, untyped fields (a map or Smi
  // check at every use on the hot paths). Likewise in Mmu, TlbLevel, Walker.
  private declare readonly mem: PhysMem;
  private declare readonly tlbs: Tlbs;
  private declare readonly counters: MmuCounters;
  private declare readonly cycles: CycleFigures;
  private declare readonly onFlush: (kind: 'full' | 'non-global', cycles: number) => void;

  constructor(
    mem: PhysMem,
    tlbs: Tlbs,
    counters: MmuCounters,
    cycles: CycleFigures,
    onFlush: (kind: 'full' | 'non-global', cycles: number) => void,
  ) {
    this.mem = mem;
    this.tlbs = tlbs;
    this.counters = counters;
    this.cycles = cycles;
    this.onFlush = onFlush;
  }

  /** MOV to CR3. */
  writeCr3(value: number): CrWriteResult {
    value >>>= 0;
    let cost = this.cycles.cr3Write;
    if (this.paging && this.pae) {
      if (!this.loadPdptes(value)) {
        this.counters.gpFaults++;
        return 'GP';
      }
      cost += this.cycles.pdpteLoad;
    }
    this.cr3 = value;
    this.counters.cr3Writes++;
    this.counters.flushesNonGlobal++;
    this.counters.otherCycles += cost;
    this.counters.ledger[CC_FLUSH] += cost;
    this.tlbs.flush(true);
    this.onFlush('non-global', cost);
    return 'ok';
  }

  /** MOV to CR0. */
  writeCr0(value: number): CrWriteResult {
    value >>>= 0;
    if ((value & CR0_PG) !== 0 && (value & CR0_PE) === 0) {
      this.counters.gpFaults++;
      return 'GP';
    }
    const changed = (value ^ this.cr0) >>> 0;
    return this.applyModeChange(value, this.cr4, (changed & CR0_PG) !== 0, (changed & CR0_PG) !== 0);
  }

  /** MOV to CR4. */
  writeCr4(value: number): CrWriteResult {
    value >>>= 0;
    const changed = (value ^ this.cr4) >>> 0;
    const relevant = (changed & (CR4_PAE | CR4_PGE | CR4_PSE)) !== 0;
    return this.applyModeChange(this.cr0, value, relevant, relevant);
  }

  /** WRMSR IA32_EFER (only NXE is modelled). */
  writeEfer(value: number): void {
    this.efer = value >>> 0;
    this.mode = (this.mode & ~M_NXE) | ((this.efer & EFER_NXE) !== 0 ? M_NXE : 0);
    this.tlbs.recomputeAllow(this.wp, this.nxe);
  }

  private applyModeChange(cr0: number, cr4: number, reloadPdptes: boolean, flush: boolean): CrWriteResult {
    const paging = (cr0 & CR0_PG) !== 0;
    const pae = (cr4 & CR4_PAE) !== 0;
    let cost = 0;
    if (reloadPdptes && paging && pae) {
      if (!this.loadPdptes(this.cr3)) {
        this.counters.gpFaults++;
        return 'GP';
      }
      cost += this.cycles.pdpteLoad;
    }
    const wpChanged = ((cr0 ^ this.cr0) & CR0_WP) !== 0;
    this.cr0 = cr0 >>> 0;
    this.cr4 = cr4 >>> 0;
    this.mode =
      (this.mode & M_NXE) |
      (paging ? M_PAGING : 0) |
      (pae ? M_PAE : 0) |
      ((cr4 & CR4_PSE) !== 0 ? M_PSE : 0) |
      ((cr4 & CR4_PGE) !== 0 ? M_PGE : 0) |
      ((cr0 & CR0_WP) !== 0 ? M_WP : 0);
    if (flush) {
      cost += this.cycles.fullFlush;
      this.counters.flushesFull++;
      this.tlbs.flush(false);
    } else if (wpChanged) {
      this.tlbs.recomputeAllow(this.wp, this.nxe);
    }
    this.counters.otherCycles += cost;
    this.counters.ledger[CC_FLUSH] += cost;
    if (flush) this.onFlush('full', cost);
    return 'ok';
  }

  /**
   * Load the four PDPTEs from the 32-byte aligned PDPT at `cr3`. Returns false
   * (registers untouched) if a present PDPTE has a reserved bit set.
   */
  private loadPdptes(cr3: number): boolean {
    const base = cr3 & CR3_PDPT_MASK;
    const pfn = base >>> 12;
    const w0 = (base & 0xfff) >>> 2;
    const f = this.mem.frame(pfn);
    for (let i = 0; i < 4; i++) {
      const lo = f[w0 + 2 * i]!;
      const hi = f[w0 + 2 * i + 1]!;
      if ((lo & PTE_P) !== 0 && ((lo & PDPTE_RSVD_LO) !== 0 || (hi & PDPTE_RSVD_HI) !== 0)) return false;
    }
    for (let i = 0; i < 4; i++) {
      this.pdpteLo[i] = f[w0 + 2 * i]!;
      this.pdpteHi[i] = f[w0 + 2 * i + 1]!;
    }
    return true;
  }

  /** Power-on state: all registers zero, paging off. */
  reset(): void {
    this.cr0 = this.cr2 = this.cr3 = this.cr4 = this.efer = this.cpl = 0;
    this.pdpteLo.fill(0);
    this.pdpteHi.fill(0);
    this.mode = 0;
  }

  /** PDPTE register i as a 64-bit value. */
  pdpte(i: number): bigint {
    return (BigInt(this.pdpteHi[i]! >>> 0) << 32n) | BigInt(this.pdpteLo[i]! >>> 0);
  }
}
