/**
 * arch/i386/mm/init.c at boot: paging_init -> pagetable_init builds
 * swapper_pg_dir (init_mm's pgd): the kernel pmd(s) under PAE, the direct map
 * of lowmem (large pages when the backend allows PSE, 4 KiB pages otherwise),
 * the page tables of the fixmap and of the pkmap area, between the backend's
 * pagetable_setup_start/done hooks; then CR3 is loaded (load_cr3) and the TLB
 * flushed.
 *
 * Boot-time tables come from bootmem (alloc_bootmem_low_pages): their frames
 * are PageReserved, so change_page_attr never frees or merges them.
 */
import type { KState } from '../kstate.js';
import { END_OF_FIXED_ADDRESSES, PAGE_SIZE, alignUp, pageAlignDown } from '../layout.js';
import { PG_pagetable } from './page-alloc.js';
import { paravirt_alloc_pd, pgd_entry_for, set_pgd } from './pgtable-common.js';
import { _PAGE_TABLE, pfn_pte, pmd_offset, pmd_read, pte_offset, present, pgd_read } from './pgtable-defs.js';

function bootmemTable(k: KState): number {
  const pfn = k.pages.alloc_bootmem_low_pages();
  k.pages.flags[pfn]! |= PG_pagetable;
  return pfn;
}

/** is_kernel_text(addr): the kernel's text is mapped executable. */
function is_kernel_text(k: KState, addr: number): boolean {
  return addr >= k.L.PAGE_OFFSET && addr < k.L._etext;
}

/** one_md_table_init(pgd): PAE allocates the pmd for a pgd slot; 2-level returns the pgd entry. */
function one_md_table_init(k: KState, pgdp: number): void {
  if (!k.L.pae) return;
  const pfn = bootmemTable(k);
  paravirt_alloc_pd(k, pfn);
  set_pgd(k, pgdp, pgd_entry_for(pfn * PAGE_SIZE));
}

/** one_page_table_init(pmd): a pte page under an empty pmd entry. Returns the pte page's address. */
function one_page_table_init(k: KState, pmdp: number): number {
  const v = pmd_read(k, pmdp);
  if (present(v)) return Number(v & 0xffffff000n);
  const pfn = bootmemTable(k);
  k.ops.alloc_pt(pfn);
  k.ops.set_pmd(pmdp, k.ops.make_pmd(BigInt(pfn * PAGE_SIZE) | _PAGE_TABLE));
  return pfn * PAGE_SIZE;
}

/** kernel_physical_mapping_init: map lowmem at PAGE_OFFSET. */
function kernel_physical_mapping_init(k: KState, pgd_base: number): void {
  const L = k.L;
  const ES = L.ENTRY_SIZE;
  const P = k.prot;
  const usePse = k.ops.largePagesAllowed;
  let pfn = 0;
  for (let pgd_idx = L.USER_PTRS_PER_PGD; pgd_idx < L.PTRS_PER_PGD; pgd_idx++) {
    const pgdp = pgd_base + pgd_idx * ES;
    if (L.pae) one_md_table_init(k, pgdp);
    if (pfn >= L.max_low_pfn) continue;
    for (let pmd_idx = 0; pmd_idx < L.PTRS_PER_PMD && pfn < L.max_low_pfn; pmd_idx++) {
      const address = pfn * PAGE_SIZE + L.PAGE_OFFSET;
      const pmdp = pmd_offset(k, pgdp, address);
      // Map with big pages if possible (the whole large page must be lowmem
      // here; Linux would map the tail beyond max_low_pfn too).
      if (usePse && pfn + L.PTRS_PER_PTE <= L.max_low_pfn) {
        const address2 = (pfn + L.PTRS_PER_PTE - 1) * PAGE_SIZE + L.PAGE_OFFSET + PAGE_SIZE - 1;
        const prot =
          is_kernel_text(k, address) || is_kernel_text(k, address2) ? P.PAGE_KERNEL_LARGE_EXEC : P.PAGE_KERNEL_LARGE;
        k.ops.set_pmd(pmdp, k.ops.make_pmd(pfn_pte(pfn, prot)));
        pfn += L.PTRS_PER_PTE;
      } else {
        const pte = one_page_table_init(k, pmdp);
        for (let pte_ofs = 0; pte_ofs < L.PTRS_PER_PTE && pfn < L.max_low_pfn; pte_ofs++, pfn++) {
          const a = pfn * PAGE_SIZE + L.PAGE_OFFSET;
          const prot = is_kernel_text(k, a) ? P.PAGE_KERNEL_EXEC : P.PAGE_KERNEL;
          k.ops.set_pte(pte + pte_ofs * ES, k.ops.make_pte(pfn_pte(pfn, prot)));
        }
      }
    }
  }
}

/** page_table_range_init(start, end, pgd_base): pte pages (no mappings) for [start, end). */
function page_table_range_init(k: KState, start: number, end: number, pgd_base: number): void {
  const L = k.L;
  for (let vaddr = pageAlignDown(start, L.PMD_SIZE); vaddr < end; vaddr += L.PMD_SIZE) {
    const pgdp = pgd_base + Math.floor(vaddr / L.PGDIR_SIZE) * L.ENTRY_SIZE;
    if (L.pae && !present(pgd_read(k, pgdp))) one_md_table_init(k, pgdp);
    one_page_table_init(k, pmd_offset(k, pgdp, vaddr));
  }
}

/** The pte page mapping `va` in swapper_pg_dir, if there is one (for tests and tools). */
export function kernelPtePage(k: KState, va: number): number {
  const pgdp = k.swapper_pg_dir + Math.floor(va / k.L.PGDIR_SIZE) * k.L.ENTRY_SIZE;
  const v = pmd_read(k, pmd_offset(k, pgdp, va));
  return present(v) ? pte_offset(k, v, 0) : -1;
}

/** paging_init / pagetable_init */
export function paging_init(k: KState): void {
  const L = k.L;
  const ops = k.ops;
  k.swapper_pg_dir = bootmemTable(k) * PAGE_SIZE;
  // ZERO_PAGE: mapped read-only for anonymous read faults.
  k.empty_zero_page = k.pages.alloc_bootmem_low_pages();
  const pgd_base = k.swapper_pg_dir;

  ops.pagetable_setup_start(pgd_base);
  kernel_physical_mapping_init(k, pgd_base);
  // Fixed mappings: only the page-table structure is created here.
  const fixStart = L.FIXADDR_TOP - (END_OF_FIXED_ADDRESSES - 1) * PAGE_SIZE;
  page_table_range_init(k, fixStart, alignUp(L.FIXADDR_TOP, L.PMD_SIZE), pgd_base);
  // permanent_kmaps_init
  page_table_range_init(k, L.PKMAP_BASE, L.PKMAP_BASE + PAGE_SIZE * L.LAST_PKMAP, pgd_base);
  ops.pagetable_setup_done(pgd_base);

  // load_cr3(swapper_pg_dir); __flush_tlb_all()
  ops.write_cr3(pgd_base);
  ops.flush_tlb_kernel();
}
