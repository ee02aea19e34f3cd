/**
 * arch/i386/mm/pgtable.c: the pgd/pmd allocation code the seed patch
 * changes, in the variant chosen at boot (`patched`, `seed`, `prepatch`),
 * plus the pte page helpers of pgtable.c/pgalloc.h every variant shares
 * (pte_alloc_one, pte_alloc_one_kernel, pmd_populate, pte_free).
 */
import { immutable } from '../snapshot.js';
import type { KState, MmStruct, Variant } from '../kstate.js';
import { GFP_KERNEL, PG_pagetable, __GFP_REPEAT, __GFP_ZERO } from './page-alloc.js';
import type { PgtableImpl } from './pgtable-common.js';
import { _KERNPG_TABLE, _PAGE_TABLE } from './pgtable-defs.js';
import { patchedPgtable } from './pgtable-patched.js';
import { prepatchPgtable } from './pgtable-prepatch.js';
import { seedPgtable } from './pgtable-seed.js';

export { pgd_list_add, pgd_list_del, pgdListEntries } from './pgtable-common.js';

// Shared, not copied, by machine snapshots.
for (const impl of [patchedPgtable, seedPgtable, prepatchPgtable]) immutable(impl);

export function pgtableFor(variant: Variant): PgtableImpl {
  switch (variant) {
    case 'patched':
      return patchedPgtable;
    case 'seed':
      return seedPgtable;
    case 'prepatch':
      return prepatchPgtable;
  }
}

/**
 * pgtable_cache_init. SHARED_KERNEL_PMD comes from the backend under PAE
 * (paravirt_ops.shared_kernel_pmd) and is 0 in 2-level paging
 * (pgtable-2level-defs.h); prepatch forces it to 1 (PAE) inside its init.
 */
export function pgtable_cache_init(k: KState, impl: PgtableImpl): void {
  k.SHARED_KERNEL_PMD = k.L.pae ? k.ops.sharedKernelPmd : false;
  impl.pgtable_cache_init(k);
}

/** pte_alloc_one(mm, address): a zeroed page for a user pte table, or -1. */
export function pte_alloc_one(k: KState): number {
  const pfn = k.pages.alloc_pages(GFP_KERNEL | __GFP_REPEAT | __GFP_ZERO, 0, 'pte_alloc_one');
  if (pfn >= 0) k.pages.flags[pfn]! |= PG_pagetable;
  return pfn;
}

/** pte_alloc_one_kernel: a zeroed lowmem page for a kernel pte table, or -1. */
export function pte_alloc_one_kernel(k: KState): number {
  const pfn = k.pages.get_zeroed_page(GFP_KERNEL | __GFP_REPEAT, 'pte_alloc_one_kernel');
  if (pfn >= 0) k.pages.flags[pfn]! |= PG_pagetable;
  return pfn;
}

/** pmd_populate(mm, pmd, pte page): announce the pte page (paravirt_alloc_pt(mm, pfn) as 2.6.23 passes it), then point the pmd at it. */
export function pmd_populate(k: KState, mm: MmStruct, pmdp: number, ptePfn: number): void {
  k.ops.alloc_pt(ptePfn, mm);
  k.ops.set_pmd(pmdp, k.ops.make_pmd(BigInt(ptePfn * 4096) | _PAGE_TABLE));
}

/** pmd_populate_kernel(&init_mm, pmd, pte): pgalloc.h of 2.6.21/2.6.22 uses _PAGE_TABLE here too (not _KERNPG_TABLE). */
export function pmd_populate_kernel(k: KState, pmdp: number, ptePfn: number): void {
  k.ops.alloc_pt(ptePfn, k.init_mm);
  k.ops.set_pmd(pmdp, k.ops.make_pmd(BigInt(ptePfn * 4096) | _PAGE_TABLE));
}

/** pmd_clear (PAE op) / set_pmd(pmd, 0) in 2-level. */
export function pmd_clear(k: KState, pmdp: number): void {
  if (k.L.pae) k.ops.pmd_clear(pmdp);
  else k.ops.set_pmd(pmdp, 0n);
}

/** __pte_free_tlb: release_pt, then the page goes back. */
export function pte_free(k: KState, ptePfn: number): void {
  k.ops.release_pt(ptePfn);
  k.pages.flags[ptePfn]! &= ~PG_pagetable;
  k.pages.free_page(ptePfn);
}

/** mm_alloc_pgd */
export function mm_alloc_pgd(k: KState, impl: PgtableImpl, mm: MmStruct): boolean {
  const pgd = impl.pgd_alloc(k, mm.owner);
  if (pgd === 0) return false;
  mm.pgd = pgd;
  return true;
}
