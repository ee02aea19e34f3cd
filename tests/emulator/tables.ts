/**
 * Test helper (not a test): builds 2-level and PAE page tables in an
 * emulated PhysMem and turns paging on, so the emulator unit tests can state
 * mappings in one line. Layout: 2-level page directory at pfn 1; PAE PDPT at
 * 0x1000 with the four page directories at pfn 2..5; page tables allocated
 * from pfn 0x10 upwards.
 */
import { CR0_PE, CR0_PG, CR0_WP, CR4_PAE, CR4_PGE, CR4_PSE, EFER_NXE, PTE_P, PTE_RW, PTE_US } from '../../emulator/paging-bits.js';
import type { Mmu } from '../../emulator/mmu.js';
import type { PhysMem } from '../../emulator/phys-mem.js';

export const URW = PTE_P | PTE_RW | PTE_US;

export interface ModeOpts {
  wp?: boolean;
  pge?: boolean;
  pse?: boolean;
  nxe?: boolean;
}

/** 2-level tables: PD at pfn 1. */
export class Tables2 {
  private nextPt = 0x10;
  constructor(readonly mem: PhysMem) {}

  pdeAddr(va: number): number {
    return 0x1000 + (va >>> 22) * 4;
  }

  /** The PTE address for `va` (its page table must exist). */
  pteAddr(va: number): number {
    const pde = this.mem.read32(this.pdeAddr(va));
    return (pde & 0xfffff000) + ((va >>> 12) & 0x3ff) * 4;
  }

  /** Map a 4 KiB page; a missing page table is created with `pdeBits`. */
  map(va: number, pfn: number, bits = URW, pdeBits = URW): void {
    const pdeAt = this.pdeAddr(va);
    let pde = this.mem.read32(pdeAt);
    if ((pde & PTE_P) === 0) {
      pde = ((this.nextPt++ << 12) | pdeBits) >>> 0;
      this.mem.write32(pdeAt, pde);
    }
    this.mem.write32(this.pteAddr(va), ((pfn << 12) | bits) >>> 0);
  }

  /** A raw PDE value (4 MiB pages, odd bits). */
  setPde(va: number, value: number): void {
    this.mem.write32(this.pdeAddr(va), value >>> 0);
  }
}

/** PAE tables: PDPT at 0x1000 (all four PDPTEs present), PDs at pfn 2..5. */
export class TablesPae {
  private nextPt = 0x10;
  constructor(readonly mem: PhysMem) {
    for (let i = 0; i < 4; i++) mem.write32(0x1000 + 8 * i, ((2 + i) << 12) | PTE_P);
  }

  pdeAddr(va: number): number {
    return (2 + (va >>> 30)) * 4096 + ((va >>> 21) & 0x1ff) * 8;
  }

  pteAddr(va: number): number {
    const pde = this.mem.read32(this.pdeAddr(va));
    const hi = this.mem.read32(this.pdeAddr(va) + 4) & 0xf;
    return hi * 2 ** 32 + (pde & 0xfffff000) + ((va >>> 12) & 0x1ff) * 8;
  }

  /** Map a 4 KiB page to a frame that may lie above 4 GiB; `hi` ORs into the high word (e.g. PTE_NX_HI). */
  map(va: number, pfn: number, bits = URW, hi = 0, pdeBits = URW): void {
    const pdeAt = this.pdeAddr(va);
    if ((this.mem.read32(pdeAt) & PTE_P) === 0) {
      this.mem.write32(pdeAt, ((this.nextPt++ << 12) | pdeBits) >>> 0);
      this.mem.write32(pdeAt + 4, 0);
    }
    const at = this.pteAddr(va);
    this.mem.write32(at, (((pfn & 0xfffff) << 12) | bits) >>> 0);
    this.mem.write32(at + 4, ((pfn >>> 20) | hi) >>> 0);
  }

  setPde(va: number, lo: number, hi = 0): void {
    this.mem.write32(this.pdeAddr(va), lo >>> 0);
    this.mem.write32(this.pdeAddr(va) + 4, hi >>> 0);
  }
}

/** Turn on 2-level paging with CR3 = 0x1000. */
export function paging2(mmu: Mmu, o: ModeOpts = {}): void {
  mmu.writeCr4((o.pse ?? true ? CR4_PSE : 0) | (o.pge ? CR4_PGE : 0));
  mmu.writeCr3(0x1000);
  const r = mmu.writeCr0(CR0_PE | CR0_PG | (o.wp ?? true ? CR0_WP : 0));
  if (r !== 'ok') throw new Error('paging2: #GP');
}

/** Turn on PAE paging with CR3 = 0x1000. */
export function pagingPae(mmu: Mmu, o: ModeOpts = {}): void {
  mmu.writeEfer(o.nxe ?? true ? EFER_NXE : 0);
  mmu.writeCr4(CR4_PAE | (o.pge ? CR4_PGE : 0));
  mmu.writeCr3(0x1000);
  const r = mmu.writeCr0(CR0_PE | CR0_PG | (o.wp ?? true ? CR0_WP : 0));
  if (r !== 'ok') throw new Error('pagingPae: #GP');
}

/** Deterministic xorshift32 (tests must not use Math.random). */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
