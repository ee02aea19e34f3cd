/**
 * arch/i386/mm/pageattr.c: change_page_attr on the kernel's direct map.
 * A page inside a large (2/4 MiB) mapping gets its large page split first:
 * a new pte page announced with alloc_pt, every pte at the reference
 * protection except the one changed. page_private of the pte page counts its
 * non-default ptes; when it drops to zero (and the pte page was not made at
 * boot) the large page is restored and the pte page is released
 * (release_pt) and freed at global_flush_tlb.
 *
 * set_pmd_pte changes init_mm's entry and, when the kernel pmd is not shared
 * (2-level paging, or PAE under Xen), the same entry in every pgd on
 * pgd_list. Before the patch the test was `PTRS_PER_PMD > 1`.
 */
import type { KState } from '../kstate.js';
import { __pa } from '../layout.js';
import { GFP_KERNEL, PG_pagetable, PG_private, PG_reserved } from './page-alloc.js';
import { pgdListEntries } from './pgtable-common.js';
import { _PAGE_PSE, pfn_pte, pgd_read, pmd_offset, pmd_read, present, pte_offset } from './pgtable-defs.js';

export type CpaMode = 'ro' | 'rw' | 'nx' | 'x';

export function cpaProt(k: KState, mode: CpaMode): bigint {
  const P = k.prot;
  switch (mode) {
    case 'ro':
      return P.PAGE_KERNEL_RO;
    case 'rw':
      return P.PAGE_KERNEL;
    case 'nx':
      return P.PAGE_KERNEL | P.NX;
    case 'x':
      return P.PAGE_KERNEL_EXEC;
  }
}

interface Kpte {
  /** Address of the entry (a pmd entry when large). */
  addr: number;
  large: boolean;
}

/** lookup_address(address) in init_mm. */
export function lookup_address(k: KState, address: number): Kpte | null {
  const L = k.L;
  const pgdp = k.swapper_pg_dir + Math.floor(address / L.PGDIR_SIZE) * L.ENTRY_SIZE;
  if (L.pae && !present(pgd_read(k, pgdp))) return null;
  const pmdp = pmd_offset(k, pgdp, address);
  const pmd = pmd_read(k, pmdp);
  if (!present(pmd)) return null;
  if ((pmd & _PAGE_PSE) !== 0n) return { addr: pmdp, large: true };
  return { addr: pte_offset(k, pmd, address), large: false };
}

/** split_large_page: a pte page reproducing the large page, `prot` at `address`. */
function split_large_page(k: KState, address: number, prot: bigint, ref_prot: bigint): number {
  const L = k.L;
  const base = k.pages.alloc_pages(GFP_KERNEL, 0, 'split_large_page');
  if (base < 0) return -1;
  k.pages.flags[base]! |= PG_private | PG_pagetable;
  k.pages.private[base] = 0;
  const pa = __pa(L, address);
  let addr = pa - (pa % L.LARGE_PAGE_SIZE);
  k.ops.alloc_pt(base);
  for (let i = 0; i < L.PTRS_PER_PTE; i++, addr += 4096) {
    k.ops.set_pte(base * 4096 + i * L.ENTRY_SIZE, k.ops.make_pte(pfn_pte(addr / 4096, addr === pa ? prot : ref_prot)));
  }
  return base;
}

/** set_pmd_pte: init_mm, then every pgd on pgd_list when the kernel pmd is not shared. */
function set_pmd_pte(k: KState, kpte: number, address: number, pte: bigint): void {
  const L = k.L;
  k.ops.set_pte_atomic(kpte, k.ops.make_pte(pte)); // change init_mm
  if (k.variant === 'prepatch' ? L.PTRS_PER_PMD > 1 : k.SHARED_KERNEL_PMD) return;
  k.spin_lock_irqsave(k.pgd_lock);
  for (const pgd of pgdListEntries(k)) {
    const pgdp = pgd + Math.floor(address / L.PGDIR_SIZE) * L.ENTRY_SIZE;
    const pmdp = pmd_offset(k, pgdp, address);
    k.ops.set_pte_atomic(pmdp, k.ops.make_pte(pte));
  }
  k.spin_unlock_irqrestore(k.pgd_lock);
}

/** revert_page: no more special protections in this large area — a large page again. */
function revert_page(k: KState, address: number): void {
  const L = k.L;
  const base = address - (address % L.LARGE_PAGE_SIZE);
  const ref_prot = base < L._etext ? k.prot.PAGE_KERNEL_LARGE_EXEC : k.prot.PAGE_KERNEL_LARGE;
  const pgdp = k.swapper_pg_dir + Math.floor(address / L.PGDIR_SIZE) * L.ENTRY_SIZE;
  const linear = pmd_offset(k, pgdp, address);
  set_pmd_pte(k, linear, address, pfn_pte(__pa(L, base) / 4096, ref_prot));
}

/** __change_page_attr(page, prot): 0, -EINVAL or -ENOMEM. */
function __change_page_attr(k: KState, pfn: number, prot: bigint): number {
  const L = k.L;
  const P = k.prot;
  const pages = k.pages;
  k.BUG_ON(pages.isHighmem(pfn), '__change_page_attr', `pfn ${pfn} is highmem`);
  const address = L.PAGE_OFFSET + pfn * 4096;
  const kpte = lookup_address(k, address);
  if (kpte === null) return -22;
  let kpte_page = Math.floor(kpte.addr / 4096);
  if (prot !== P.PAGE_KERNEL) {
    if (!kpte.large) {
      k.ops.set_pte_atomic(kpte.addr, k.ops.make_pte(pfn_pte(pfn, prot)));
    } else {
      const ref_prot = address - (address % L.LARGE_PAGE_SIZE) < L._etext ? P.PAGE_KERNEL_EXEC : P.PAGE_KERNEL;
      const split = split_large_page(k, address, prot, ref_prot);
      if (split < 0) return -12;
      set_pmd_pte(k, kpte.addr, address, pfn_pte(split, ref_prot));
      kpte_page = split;
      k.stats.cpaSplits++;
    }
    pages.private[kpte_page]!++;
  } else if (!kpte.large) {
    k.ops.set_pte_atomic(kpte.addr, k.ops.make_pte(pfn_pte(pfn, P.PAGE_KERNEL)));
    k.BUG_ON(pages.private[kpte_page] === 0, '__change_page_attr', `pte page ${kpte_page} has no changed pte to revert`);
    pages.private[kpte_page]!--;
  } else {
    k.BUG('__change_page_attr', `PAGE_KERNEL asked for ${address.toString(16)}, which a large page still maps at the default`);
  }
  // A pte page made at boot (reserved) is never replaced by a large page.
  if ((pages.flags[kpte_page]! & PG_reserved) === 0) {
    if (k.ops.largePagesAllowed && pages.private[kpte_page] === 0) {
      pages.flags[kpte_page]! &= ~PG_private;
      k.ops.release_pt(kpte_page);
      k.df_list.push(kpte_page);
      revert_page(k, address);
      k.stats.cpaReverts++;
    }
  }
  return 0;
}

/** change_page_attr(page, numpages, prot) */
export function change_page_attr(k: KState, pfn: number, numpages: number, prot: bigint): number {
  let err = 0;
  k.spin_lock_irqsave(k.cpa_lock);
  for (let i = 0; i < numpages; i++) {
    err = __change_page_attr(k, pfn + i, prot);
    if (err !== 0) break;
  }
  k.spin_unlock_irqrestore(k.cpa_lock);
  return err;
}

/** global_flush_tlb: flush every TLB, then free the pte pages of reverted large pages. */
export function global_flush_tlb(k: KState): void {
  const l = k.df_list;
  k.df_list = [];
  k.ops.flush_tlb_kernel();
  for (const pg of l) {
    const f = k.pages.flags[pg]!;
    if ((f & PG_reserved) !== 0 || !k.ops.largePagesAllowed || k.pages.private[pg] !== 0) continue;
    k.pages.flags[pg]! &= ~(PG_private | PG_pagetable);
    k.pages.free_page(pg);
  }
}
