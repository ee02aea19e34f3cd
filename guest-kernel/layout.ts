/**
 * The i386 kernel's virtual-memory layout, computed once at boot from the
 * configuration (PAE or 2-level, VMSPLIT, memory size) and the hole the
 * backend reserves at the top of the address space.
 *
 * Why a separate file: every other part of the kernel (pgd_ctor's
 * USER_PTRS_PER_PGD, vmalloc's VMALLOC_START, the fault handler's TASK_SIZE
 * test) depends on these numbers, and Linux spreads them over
 * include/asm-i386/{page.h,pgtable.h,pgtable-2level-defs.h,
 * pgtable-3level-defs.h,fixmap.h,highmem.h}. They are gathered here under
 * their kernel names.
 *
 *   0 ............ TASK_SIZE = PAGE_OFFSET ...... high_memory  +8M gap
 *   | user        | direct map of lowmem         |   | VMALLOC_START .. VMALLOC_END
 *   .. PKMAP_BASE (LAST_PKMAP pages) .. FIXADDR_START .. FIXADDR_TOP | hypervisor hole
 *
 * All addresses are unsigned 32-bit values held in plain numbers.
 */

export type Split = '3G' | '2G' | '1G';

export interface LayoutConfig {
  pae: boolean;
  split: Split;
  /** Guest memory in bytes (pfns 0 .. memBytes/4096 - 1). */
  memBytes: number;
  /** Bytes the backend keeps at the top (reserve_top_address); 0 natively. */
  reservedTop: number;
}

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
/** 2^32, for unsigned 32-bit arithmetic on plain numbers. */
export const FOUR_G = 0x1_0000_0000;

/** __PAGE_OFFSET for each CONFIG_VMSPLIT_* choice (arch/i386/Kconfig). */
export const PAGE_OFFSET_BY_SPLIT: Record<Split, number> = {
  '3G': 0xc0000000,
  '2G': 0x80000000,
  '1G': 0x40000000,
};

/** VMALLOC_OFFSET: the 8 MiB gap between the direct map and vmalloc (pgtable.h). */
export const VMALLOC_OFFSET = 8 << 20;
/** Default __VMALLOC_RESERVE (init.c): 128 MiB of address space for vmalloc, pkmap, fixmap. */
export const DEFAULT_VMALLOC_RESERVE = 128 << 20;

/**
 * The fixmap of a uniprocessor 2.6.21 configuration with local APIC,
 * IO-APIC (MAX_IO_APICS 64), HIGHMEM (KM_TYPE_NR 14 kmap slots), ACPI (4)
 * and PCI MMCONFIG (fixmap.h `enum fixed_addresses`): FIX_HOLE, FIX_VDSO,
 * FIX_DBGP_BASE, FIX_EARLYCON_MEM_BASE, FIX_APIC_BASE, 64 IO-APIC slots,
 * 14 KMAP slots, 4 ACPI slots, FIX_PCIE_MCFG = 88 permanent slots, followed
 * by NR_FIX_BTMAPS = 16 boot-time slots (include/asm-i386/fixmap.h of
 * 2.6.21/2.6.22; 64 is a much later kernel's value).
 */
export const END_OF_PERMANENT_FIXED_ADDRESSES = 88;
export const NR_FIX_BTMAPS = 16;
export const END_OF_FIXED_ADDRESSES = END_OF_PERMANENT_FIXED_ADDRESSES + NR_FIX_BTMAPS;

/** The kernel image: loaded at 1 MiB (CONFIG_PHYSICAL_START), 1 MiB of text then 1 MiB of data/bss. */
export const KERNEL_TEXT_START_PFN = 0x100;
export const KERNEL_TEXT_PAGES = 256;
export const KERNEL_IMAGE_PAGES = 512;

export interface Layout {
  readonly pae: boolean;
  readonly split: Split;
  /** sizeof(pgd_t) == sizeof(pmd_t) == sizeof(pte_t): 8 under PAE, 4 otherwise. */
  readonly ENTRY_SIZE: number;
  readonly PAGE_OFFSET: number;
  readonly TASK_SIZE: number;
  readonly PGDIR_SHIFT: number;
  readonly PGDIR_SIZE: number;
  readonly PTRS_PER_PGD: number;
  /** PAE: 21; 2-level: the pmd is folded into the pgd, PMD_SHIFT == PGDIR_SHIFT. */
  readonly PMD_SHIFT: number;
  readonly PMD_SIZE: number;
  readonly PTRS_PER_PMD: number;
  readonly PTRS_PER_PTE: number;
  /** Size of a direct-map large page (LARGE_PAGE_SIZE): 2 MiB PAE, 4 MiB 2-level. */
  readonly LARGE_PAGE_SIZE: number;
  readonly USER_PTRS_PER_PGD: number;
  readonly KERNEL_PGD_PTRS: number;
  /** __FIXADDR_TOP after reserve_top_address. */
  readonly FIXADDR_TOP: number;
  readonly FIXADDR_START: number;
  readonly FIXADDR_BOOT_START: number;
  readonly LAST_PKMAP: number;
  readonly PKMAP_BASE: number;
  /** __VMALLOC_RESERVE (128 MiB plus the reserved top). */
  readonly VMALLOC_RESERVE: number;
  readonly MAXMEM: number;
  /** Frames of guest memory. */
  readonly max_pfn: number;
  /** First frame above lowmem (end of the direct map). */
  readonly max_low_pfn: number;
  readonly high_memory: number;
  readonly VMALLOC_START: number;
  readonly VMALLOC_END: number;
  /** Start of the address range the backend keeps (2^32 - reservedTop). */
  readonly HYPERVISOR_START: number;
  /** Virtual end of kernel text (_etext). */
  readonly _etext: number;
}

export function pageAlignDown(x: number, align: number): number {
  return x - (x % align);
}

export function alignUp(x: number, align: number): number {
  return Math.ceil(x / align) * align;
}

/** Compute the layout (include/asm-i386 macros, reserve_top_address in init.c). */
export function computeLayout(cfg: LayoutConfig): Layout {
  const pae = cfg.pae;
  const PAGE_OFFSET = PAGE_OFFSET_BY_SPLIT[cfg.split];
  if (PAGE_OFFSET === undefined) throw new RangeError(`unknown split ${String(cfg.split)}`);
  if (!(cfg.memBytes > 0) || cfg.memBytes % PAGE_SIZE !== 0) {
    throw new RangeError(`memBytes ${cfg.memBytes} is not a positive multiple of the page size`);
  }
  const reservedTop = cfg.reservedTop >>> 0;
  if (reservedTop % PAGE_SIZE !== 0) throw new RangeError(`reservedTop 0x${reservedTop.toString(16)} not page aligned`);

  const PGDIR_SHIFT = pae ? 30 : 22;
  const PGDIR_SIZE = 2 ** PGDIR_SHIFT;
  const PTRS_PER_PGD = pae ? 4 : 1024;
  const PMD_SHIFT = pae ? 21 : 22;
  const PMD_SIZE = 2 ** PMD_SHIFT;
  const PTRS_PER_PMD = pae ? 512 : 1;
  const PTRS_PER_PTE = pae ? 512 : 1024;
  const TASK_SIZE = PAGE_OFFSET;

  // reserve_top_address(reserve): __FIXADDR_TOP = -reserve - PAGE_SIZE,
  // __VMALLOC_RESERVE += reserve.
  const FIXADDR_TOP = FOUR_G - reservedTop - PAGE_SIZE;
  const VMALLOC_RESERVE = DEFAULT_VMALLOC_RESERVE + reservedTop;
  const FIXADDR_START = FIXADDR_TOP - END_OF_PERMANENT_FIXED_ADDRESSES * PAGE_SIZE;
  const FIXADDR_BOOT_START = FIXADDR_TOP - END_OF_FIXED_ADDRESSES * PAGE_SIZE;
  // highmem.h: LAST_PKMAP 512 (PAE) or 1024; PKMAP_BASE aligned down to PMD_SIZE.
  const LAST_PKMAP = pae ? 512 : 1024;
  const PKMAP_BASE = pageAlignDown(FIXADDR_BOOT_START - PAGE_SIZE * (LAST_PKMAP + 1), PMD_SIZE);
  // page.h: MAXMEM = -__PAGE_OFFSET - __VMALLOC_RESERVE.
  const MAXMEM = FOUR_G - PAGE_OFFSET - VMALLOC_RESERVE;

  const max_pfn = cfg.memBytes / PAGE_SIZE;
  const max_low_pfn = Math.min(max_pfn, Math.floor(MAXMEM / PAGE_SIZE));
  const high_memory = PAGE_OFFSET + max_low_pfn * PAGE_SIZE;
  // pgtable.h: VMALLOC_START = (high_memory + 2*VMALLOC_OFFSET - 1) & ~(VMALLOC_OFFSET - 1)
  const VMALLOC_START = pageAlignDown(high_memory + 2 * VMALLOC_OFFSET - 1, VMALLOC_OFFSET);
  // With CONFIG_HIGHMEM: VMALLOC_END = PKMAP_BASE - 2*PAGE_SIZE.
  const VMALLOC_END = PKMAP_BASE - 2 * PAGE_SIZE;
  if (VMALLOC_END <= VMALLOC_START) {
    throw new RangeError(
      `no room for vmalloc: VMALLOC_START 0x${VMALLOC_START.toString(16)} >= VMALLOC_END 0x${VMALLOC_END.toString(16)}`,
    );
  }

  return {
    pae,
    split: cfg.split,
    ENTRY_SIZE: pae ? 8 : 4,
    PAGE_OFFSET,
    TASK_SIZE,
    PGDIR_SHIFT,
    PGDIR_SIZE,
    PTRS_PER_PGD,
    PMD_SHIFT,
    PMD_SIZE,
    PTRS_PER_PMD,
    PTRS_PER_PTE,
    LARGE_PAGE_SIZE: PMD_SIZE,
    // USER_PTRS_PER_PGD = TASK_SIZE / PGDIR_SIZE; KERNEL_PGD_PTRS = PTRS_PER_PGD - USER_PTRS_PER_PGD.
    USER_PTRS_PER_PGD: TASK_SIZE / PGDIR_SIZE,
    KERNEL_PGD_PTRS: PTRS_PER_PGD - TASK_SIZE / PGDIR_SIZE,
    FIXADDR_TOP,
    FIXADDR_START,
    FIXADDR_BOOT_START,
    LAST_PKMAP,
    PKMAP_BASE,
    VMALLOC_RESERVE,
    MAXMEM,
    max_pfn,
    max_low_pfn,
    high_memory,
    VMALLOC_START,
    VMALLOC_END,
    HYPERVISOR_START: FOUR_G - reservedTop,
    _etext: PAGE_OFFSET + (KERNEL_TEXT_START_PFN + KERNEL_TEXT_PAGES) * PAGE_SIZE,
  };
}

/** pgd_index(address) */
export function pgd_index(L: Layout, va: number): number {
  return Math.floor((va >>> 0) / L.PGDIR_SIZE) % L.PTRS_PER_PGD;
}

/** pmd_index(address): 0 in 2-level (folded). */
export function pmd_index(L: Layout, va: number): number {
  return L.pae ? ((va >>> 21) & 511) : 0;
}

/** pte_index(address) */
export function pte_index(L: Layout, va: number): number {
  return L.pae ? ((va >>> 12) & 511) : ((va >>> 12) & 1023);
}

/** __va(pa) for lowmem. */
export function __va(L: Layout, pa: number): number {
  return L.PAGE_OFFSET + pa;
}

/** __pa(va) for direct-map addresses. */
export function __pa(L: Layout, va: number): number {
  return (va >>> 0) - L.PAGE_OFFSET;
}
