/**
 * mm/memory.c for anonymous private memory: the user half of a pgd.
 *  - handle_mm_fault: find or allocate the pte page, then demand-page
 *    (do_anonymous_page: the shared ZERO_PAGE read-only on a read, a fresh
 *    zeroed page on a write) or break copy-on-write (do_wp_page: reuse the
 *    page if this pte is its only user, else copy it);
 *  - copy_page_range (fork): pte pages allocated in the child, private
 *    writable ptes write-protected in both, the frame shared with a reference
 *    per pte;
 *  - zap_page_range (munmap/exit): ptes cleared, references dropped;
 *  - free_pgtables: pte pages no vma needs any more are unhooked and freed.
 * Updates go through the backend's set_pte_at / set_pmd, except where 2.6.22
 * writes the pte itself (ptep_set_wrprotect, ptep_get_and_clear,
 * ptep_set_access_flags: plain stores through the direct map); the copy and
 * zap loops run in lazy MMU mode, as 2.6.22 does.
 */
import type { KState, MmStruct, Vma } from '../kstate.js';
import { VM_WRITE } from '../kstate.js';
import { GFP_HIGHUSER, PG_anon, __GFP_ZERO } from './page-alloc.js';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_RW,
  entryPfn,
  pfn_pte,
  pmd_offset,
  pmd_read,
  present,
  pte_offset,
  pte_read,
} from './pgtable-defs.js';
import { PTE_A, PTE_P, PTE_RW } from '../../emulator/paging-bits.js';
import { pteFromWords, pteLo } from '../../hypervisor/types.js';
import type { GuestMemory } from '../../hypervisor/paravirt-ops.js';
import { pmd_clear, pmd_populate, pte_alloc_one, pte_free } from './pgtable.js';

export type FaultResult = 'fixed' | 'oom';


/** Address of the pmd entry for `va` in `mm` (PAE user pmds always exist: pgd_alloc preallocates them). */
export function mm_pmdp(k: KState, mm: MmStruct, va: number): number {
  const pgdp = mm.pgd + Math.floor(va / k.L.PGDIR_SIZE) * k.L.ENTRY_SIZE;
  return pmd_offset(k, pgdp, va);
}

/** The pte entry address for `va`, or -1 when no pte page exists. */
export function mm_ptep(k: KState, mm: MmStruct, va: number): number {
  const v = pmd_read(k, mm_pmdp(k, mm, va));
  return present(v) ? pte_offset(k, v, va) : -1;
}

/** __pte_alloc: a pte page under `pmdp` if there is none. False when out of memory. */
function pte_alloc(k: KState, mm: MmStruct, pmdp: number): boolean {
  if (present(pmd_read(k, pmdp))) return true;
  const pfn = pte_alloc_one(k);
  if (pfn < 0) return false;
  pmd_populate(k, mm, pmdp, pfn);
  return true;
}

/**
 * ptep_get_and_clear (include/asm-i386/pgtable-3level.h / -2level.h of
 * 2.6.22): not a paravirt op. PAE: an xchg of the low word with 0, then a
 * store of 0 to the high word; 2-level: an xchg of the word. Plain stores
 * through the direct map: each traps into Xen when the table is pinned
 * (read-only), and none is batched.
 */
function ptep_get_and_clear(k: KState, ptep: number): void {
  k.mem.write32(ptep, 0);
  if (k.L.pae) k.mem.write32(ptep + 4, 0);
}

/** maybe_mkwrite */
function maybe_mkwrite(pte: bigint, vma: Vma): bigint {
  return (vma.flags & VM_WRITE) !== 0 ? pte | _PAGE_RW : pte;
}

function flushIfActive(k: KState, mm: MmStruct, va: number): void {
  if (k.active_mm === mm) k.ops.flush_tlb_single(va);
}

/** handle_mm_fault(mm, vma, address, write_access) */
export function handle_mm_fault(k: KState, mm: MmStruct, vma: Vma, address: number, write: boolean): FaultResult {
  const pmdp = mm_pmdp(k, mm, address);
  if (!pte_alloc(k, mm, pmdp)) return 'oom';
  const ptep = pte_offset(k, pmd_read(k, pmdp), address);
  const pte = pte_read(k, ptep);
  if (!present(pte)) return do_anonymous_page(k, mm, vma, address, ptep, write);
  if (write && (pte & _PAGE_RW) === 0n) return do_wp_page(k, mm, vma, address, ptep, pte);
  // The entry already allows the access: a stale TLB entry (ptep_set_access_flags + flush_tlb_page).
  k.stats.faultsSpurious++;
  flushIfActive(k, mm, address);
  return 'fixed';
}

/** do_anonymous_page: ZERO_PAGE read-only on a read, a new zeroed page on a write. */
function do_anonymous_page(k: KState, mm: MmStruct, vma: Vma, address: number, ptep: number, write: boolean): FaultResult {
  let entry: bigint;
  if (write) {
    const pfn = k.pages.alloc_pages(GFP_HIGHUSER | __GFP_ZERO, 0, 'do_anonymous_page');
    if (pfn < 0) return 'oom';
    k.pages.flags[pfn]! |= PG_anon;
    entry = maybe_mkwrite(pfn_pte(pfn, vma.page_prot) | _PAGE_DIRTY, vma);
  } else {
    k.pages.get_page(k.empty_zero_page);
    entry = pfn_pte(k.empty_zero_page, vma.page_prot);
  }
  k.ops.set_pte_at(mm, address, ptep, k.ops.make_pte(entry));
  mm.rss++;
  k.stats.faultsUser++;
  return 'fixed';
}

/** do_wp_page: a write to a present, write-protected pte in a writable vma. */
function do_wp_page(k: KState, mm: MmStruct, vma: Vma, address: number, ptep: number, orig: bigint): FaultResult {
  const old = entryPfn(orig);
  const pages = k.pages;
  if (old !== k.empty_zero_page && (pages.flags[old]! & PG_anon) !== 0 && pages._count[old] === 1) {
    // Only this pte maps the page: reuse it. ptep_set_access_flags (2.6.22
    // pgtable.h, dirty): a plain store of the low word, pte_update_defer,
    // flush_tlb_page.
    const entry = maybe_mkwrite(orig | _PAGE_DIRTY | _PAGE_ACCESSED, vma);
    k.mem.write32(ptep, pteLo(k.ops.make_pte(entry)));
    k.ops.pte_update_defer(mm, address, ptep);
    flushIfActive(k, mm, address);
    k.stats.faultsCow++;
    return 'fixed';
  }
  let pfn: number;
  if (old === k.empty_zero_page) {
    pfn = pages.alloc_pages(GFP_HIGHUSER | __GFP_ZERO, 0, 'do_wp_page');
  } else {
    pfn = pages.alloc_pages(GFP_HIGHUSER, 0, 'do_wp_page');
    if (pfn >= 0) {
      k.mem.copyPage(pfn, old); // cow_user_page
      k.work.copyPages(1);
    }
  }
  if (pfn < 0) return 'oom';
  pages.flags[pfn]! |= PG_anon;
  const entry = maybe_mkwrite(pfn_pte(pfn, vma.page_prot) | _PAGE_DIRTY, vma);
  // ptep_clear_flush (ptep_get_and_clear, flush_tlb_page), then the new pte.
  ptep_get_and_clear(k, ptep);
  flushIfActive(k, mm, address);
  k.ops.set_pte_at(mm, address, ptep, k.ops.make_pte(entry));
  pages.put_page(old); // page_cache_release(old_page)
  k.stats.faultsCow++;
  return 'fixed';
}

// Scratch for the pte loops' bulk reads (one pte page at most: 1024 words).
const SCRATCH_COPY = new Uint32Array(1024);
const SCRATCH_ZAP = new Uint32Array(1024);

/** `words` 32-bit words of guest memory from `addr` into `out` (read32 each, or the backend's read32s). */
function readEntryWords(mem: GuestMemory, addr: number, words: number, out: Uint32Array): Uint32Array {
  if (mem.read32s !== undefined) mem.read32s(addr, out, words);
  else for (let j = 0; j < words; j++) out[j] = mem.read32(addr + 4 * j);
  return out;
}

/** Iterate the pmd spans [s, e) of [start, end). */
function forEachPmdSpan(k: KState, start: number, end: number, fn: (s: number, e: number) => boolean | void): void {
  const PMD = k.L.PMD_SIZE;
  for (let s = start; s < end; ) {
    const next = Math.min(end, (Math.floor(s / PMD) + 1) * PMD);
    if (fn(s, next) === false) return;
    s = next;
  }
}

/** copy_page_range(dst, src, vma) for a private vma. Returns false on out-of-memory. */
export function copy_page_range(k: KState, dst: MmStruct, src: MmStruct, vma: Vma): boolean {
  let ok = true;
  const ES = k.L.ENTRY_SIZE;
  forEachPmdSpan(k, vma.start, vma.end, (s, e) => {
    const spmd = pmd_read(k, mm_pmdp(k, src, s));
    if (!present(spmd)) return;
    const dpmdp = mm_pmdp(k, dst, s);
    if (!pte_alloc(k, dst, dpmdp)) {
      ok = false;
      return false;
    }
    const dpte0 = pte_offset(k, pmd_read(k, dpmdp), s);
    const spte0 = pte_offset(k, spmd, s);
    const mem = k.mem;
    const ops = k.ops;
    const pae = k.L.pae;
    const hasPfnOf = ops.pte_val_pfn !== undefined;
    const hasWords = ops.set_pte_at_words !== undefined;
    // The source entries of the span, read up front (the loop writes none of
    // them before reading it: same values as reading each in turn).
    const wpe = ES / 4;
    const src32 = readEntryWords(mem, spte0, Math.ceil((e - s) / 4096) * wpe, SCRATCH_COPY);
    let copied = 0;
    let wrprotected = 0;
    k.enterLazyMmu();
    try {
      for (let va = s, i = 0; va < e; va += 4096, i++) {
        const sptep = spte0 + i * ES;
        // Cheap test on the low word first: most entries of a sparse table are empty.
        const lo = src32[i * wpe]!;
        if ((lo & PTE_P) === 0) continue;
        // copy_one_pte works on the raw (machine-form) value, as Linux does.
        // The values are built from the entry's two words (pte & NOT_RW etc.
        // without BigInt arithmetic: same values, far cheaper).
        const hi = pae ? src32[i * 2 + 1]! : 0;
        // is_cow_mapping: write-protect in the parent and the child. The
        // parent's: ptep_set_wrprotect (2.6.22 pgtable.h), clear_bit of RW in
        // pte_low, a plain locked store (one trapped write per pte when the
        // parent's tables are pinned, never batched), then pte_update.
        if ((lo & PTE_RW) !== 0) {
          mem.write32(sptep, lo & ~PTE_RW);
          ops.pte_update(src, va, sptep);
          wrprotected++;
        }
        // entryPfn(pte_val(pte)), from the words when the backend offers it (same value, no BigInt).
        k.pages.get_page(hasPfnOf ? ops.pte_val_pfn!(lo, hi) : entryPfn(ops.pte_val(pteFromWords(lo, hi))));
        // pte_wrprotect, pte_mkold (from the words when the backend offers it: the same store, no BigInt).
        if (hasWords) ops.set_pte_at_words!(dst, va, dpte0 + i * ES, lo & ~(PTE_RW | PTE_A), hi);
        else ops.set_pte_at(dst, va, dpte0 + i * ES, pteFromWords(lo & ~(PTE_RW | PTE_A), hi));
        dst.rss++;
        copied++;
      }
    } finally {
      k.leaveLazyMmu();
    }
    k.work.pteCopies(copied); // get_page + page_dup_rmap per pte
    k.work.lockedPteOps(wrprotected); // ptep_set_wrprotect: clear_bit, a locked RMW (under Xen it also traps: charged by Xen)
  });
  return ok;
}

/** zap_page_range: clear the ptes of [start, end) and drop the page references. */
export function zap_page_range(k: KState, mm: MmStruct, start: number, end: number): void {
  const ES = k.L.ENTRY_SIZE;
  forEachPmdSpan(k, start, end, (s, e) => {
    const pmd = pmd_read(k, mm_pmdp(k, mm, s));
    if (!present(pmd)) return;
    const pte0 = pte_offset(k, pmd, s);
    const mem = k.mem;
    const pae = k.L.pae;
    const ops = k.ops;
    const hasPfnOf = ops.pte_val_pfn !== undefined;
    // The span's entries, read up front (each is cleared only after it is
    // read, and a clear touches no other entry: same values).
    const wpe = ES / 4;
    const w32 = readEntryWords(mem, pte0, Math.ceil((e - s) / 4096) * wpe, SCRATCH_ZAP);
    let zapped = 0;
    k.enterLazyMmu();
    try {
      for (let va = s, i = 0; va < e; va += 4096, i++) {
        const ptep = pte0 + i * ES;
        const lo = w32[i * wpe]!;
        const hi = pae ? w32[i * 2 + 1]! : 0;
        if (lo === 0 && hi === 0) continue;
        const isPresent = (lo & PTE_P) !== 0;
        // ptep_get_and_clear_full: plain stores for a present pte; a
        // non-present one goes through pte_clear_not_present_full (pte_clear).
        if (isPresent) ptep_get_and_clear(k, ptep);
        else ops.pte_clear(mm, va, ptep);
        if (isPresent) {
          // entryPfn(pte_val(pte)), from the words when the backend offers it (same value, no BigInt).
          k.pages.put_page(hasPfnOf ? ops.pte_val_pfn!(lo, hi) : entryPfn(ops.pte_val(pteFromWords(lo, hi))));
          mm.rss--;
          zapped++;
        }
      }
    } finally {
      k.leaveLazyMmu();
    }
    k.work.pteZaps(zapped); // page_remove_rmap + put_page per present pte
  });
  // tlb_finish_mmu -> flush_tlb_mm: only the loaded mm has TLB entries.
  if (k.active_mm === mm) k.ops.flush_tlb_user();
}

/**
 * free_pgtables over [start, end): every pte page whose pmd span no vma of
 * `mm` touches any more is unhooked and freed.
 */
export function free_pgtables(k: KState, mm: MmStruct, start: number, end: number): void {
  const PMD = k.L.PMD_SIZE;
  const first = Math.floor(start / PMD) * PMD;
  const freed: number[] = [];
  for (let s = first; s < end; s += PMD) {
    const e = s + PMD;
    if (mm.vmas.some((v) => v.start < e && v.end > s)) continue;
    const pmdp = mm_pmdp(k, mm, s);
    const pmd = pmd_read(k, pmdp);
    if (!present(pmd)) continue;
    pmd_clear(k, pmdp);
    freed.push(entryPfn(pmd));
  }
  // tlb_finish_mmu: flush before the pages go back (__pte_free_tlb).
  if (freed.length > 0 && k.active_mm === mm) k.ops.flush_tlb_user();
  for (const pfn of freed) pte_free(k, pfn);
}
