/**
 * What the three pgtable.c variants share (arch/i386/mm/pgtable.c):
 * pgd_list threaded through the pgd pages' struct page (`index` = next,
 * `private` = pprev), clone_pgd_range, pmd_ctor, the seed's
 * pmd_cache_alloc/pmd_cache_free, and set_pgd (which under PAE is the
 * backend's set_pud: there is no set_pgd op).
 *
 * pprev encoding: page_private holds -2 for "&pgd_list" (the head) or the
 * pfn of the previous pgd page (standing for &prev->index).
 */
import { partial } from '../snapshot.js';
import type { KState } from '../kstate.js';
import { PG_pagetable } from './page-alloc.js';
import { _PAGE_PRESENT, entryPa, memcpy, memzero, pgd_read, readRaw } from './pgtable-defs.js';
import type { KmemCache } from './slab.js';

export const PGD_LIST_HEAD = -2;

/** A pgtable.c variant: the functions the rest of the kernel calls. */
export interface PgtableImpl {
  /** pgtable_cache_init: create pmd_cache and pgd_cache. */
  pgtable_cache_init(k: KState): void;
  /** pgd_alloc: a pgd (guest-physical address), or 0 when out of memory. */
  pgd_alloc(k: KState, owner: string): number;
  pgd_free(k: KState, pgd: number): void;
}

// ---- pgd_list ----

export function pgd_list_add(k: KState, pgd: number): void {
  const page = Math.floor(pgd / 4096);
  const p = k.pages;
  p.index[page] = k.pgd_list;
  if (k.pgd_list >= 0) p.private[k.pgd_list] = page;
  k.pgd_list = page;
  p.private[page] = PGD_LIST_HEAD;
}

export function pgd_list_del(k: KState, pgd: number): void {
  const page = Math.floor(pgd / 4096);
  const p = k.pages;
  const next = p.index[page]!;
  const pprev = p.private[page]!;
  if (pprev === PGD_LIST_HEAD) k.pgd_list = next;
  else p.index[pprev] = next;
  if (next >= 0) p.private[next] = pprev;
  p.index[page] = 0;
  p.private[page] = 0;
}

/** The pgds on pgd_list (page_address of each page), in list order. Stops on a cycle. */
export function pgdListEntries(k: KState): number[] {
  const out: number[] = [];
  for (let page = k.pgd_list; page >= 0; page = k.pages.index[page]!) {
    out.push(page * 4096);
    if (out.length > k.pages.nrPages) break;
  }
  return out;
}

// ---- pgd helpers ----

/** clone_pgd_range(dst, src, count): copy pgd entries. */
export function clone_pgd_range(k: KState, dst: number, src: number, count: number): void {
  memcpy(k.mem, dst, src, count * k.L.ENTRY_SIZE);
  k.work.copyBytes(count * k.L.ENTRY_SIZE);
}

/** set_pgd(pgdp, __pgd(val)): PAE only, through set_pud with make_pgd. */
export function set_pgd(k: KState, pgdp: number, val: bigint): void {
  k.ops.set_pud(pgdp, val === 0n ? 0n : k.ops.make_pgd(val));
}

/** The pmd page a PAE pgd entry points to (__va(pgd_val(pgdent) - 1) in the seed: Present is the only flag). */
export function pgd_pmd(k: KState, pgdp: number): number {
  return entryPa(pgd_read(k, pgdp));
}

/** pmd_ctor: a pmd from the slab comes zeroed. */
export function pmd_ctor(k: KState): (obj: number, cache: KmemCache) => void {
  return partial(pmd_ctor_obj, k);
}

function pmd_ctor_obj(k: KState, obj: number): void {
  memzero(k.mem, obj, k.L.PTRS_PER_PMD * 8);
  k.work.clearBytes(k.L.PTRS_PER_PMD * 8); // a whole page: clear_page
}

/**
 * pmd_cache_alloc(idx) (the seed): a kernel slot gets a fresh page holding a
 * copy of swapper_pg_dir's kernel pmd for that slot; a user slot a zeroed
 * pmd from pmd_cache. Returns the pmd's address or 0.
 */
export function pmd_cache_alloc(k: KState, idx: number, copy = true): number {
  if (idx >= k.L.USER_PTRS_PER_PGD) {
    const pfn = k.pages.__get_free_page(0, 'pmd_cache_alloc');
    if (pfn < 0) return 0;
    k.pages.flags[pfn]! |= PG_pagetable;
    const pmd = pfn * 4096;
    if (copy) copy_kernel_pmd(k, pmd, idx);
    return pmd;
  }
  const pmd = k.slab.kmem_cache_alloc(k.pmd_cache!, 0, 'pmd_cache_alloc');
  if (pmd !== 0) k.pages.flags[Math.floor(pmd / 4096)]! |= PG_pagetable;
  return pmd;
}

/** memcpy(pmd, pgd_page_vaddr(swapper_pg_dir[idx]), sizeof(pmd_t) * PTRS_PER_PMD) */
export function copy_kernel_pmd(k: KState, pmd: number, idx: number): void {
  const src = pgd_pmd(k, k.swapper_pg_dir + idx * 8);
  memcpy(k.mem, pmd, src, k.L.PTRS_PER_PMD * 8);
  k.work.copyBytes(k.L.PTRS_PER_PMD * 8);
}

export function pmd_cache_free(k: KState, pmd: number, idx: number): void {
  const pfn = Math.floor(pmd / 4096);
  k.pages.flags[pfn]! &= ~PG_pagetable;
  if (idx >= k.L.USER_PTRS_PER_PGD) k.pages.free_page(pfn);
  else k.slab.kmem_cache_free(k.pmd_cache!, pmd);
}

/** A PAE pgd entry for a pmd: __pgd(1 + __pa(pmd)) — only Present (PDPTE rules). */
export function pgd_entry_for(pmd: number): bigint {
  return BigInt(pmd) | _PAGE_PRESENT;
}

/** Raw entry i of a pgd (for messages). */
export function pgdEntryRaw(k: KState, pgd: number, i: number): bigint {
  return readRaw(k, pgd + i * k.L.ENTRY_SIZE);
}

// ---- the page-directory hooks, with pvmmu's guest debug check ----

/** paravirt_alloc_pd(pfn), noting the announcement for the debug check. */
export function paravirt_alloc_pd(k: KState, pfn: number): void {
  k.pdAnnounced[pfn] = 1;
  k.ops.alloc_pd(pfn);
}

/** paravirt_alloc_pd_clone(pfn, clonepfn, start, count), noting the announcement. */
export function paravirt_alloc_pd_clone(k: KState, pfn: number, clonePfn: number, start: number, count: number): void {
  k.pdAnnounced[pfn] = 1;
  k.ops.alloc_pd_clone(pfn, clonePfn, start, count);
}

/**
 * paravirt_release_pd(pfn). The debug check: a release of a pfn never
 * announced is recorded (the invariant checker reports it) and still passed
 * to the backend, as the kernel would pass it.
 */
export function paravirt_release_pd(k: KState, pfn: number): void {
  if (k.pdAnnounced[pfn] !== 1) k.unbalancedReleasePd.push(pfn);
  k.pdAnnounced[pfn] = 0;
  k.ops.release_pd(pfn);
}
