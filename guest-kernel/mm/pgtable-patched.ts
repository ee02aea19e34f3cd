/**
 * The seed with the fixes found later (the default kernel). pgd_alloc follows
 * the 2008 rework ("preallocate and prepopulate separately"):
 *  - the pmds are preallocated first, with nothing published; an allocation
 *    failure frees what was taken and nothing else has seen the pgd;
 *  - then, under pgd_lock (interrupts off), pgd_ctor fills the pgd, the
 *    kernel pmds are copied from swapper_pg_dir and installed, and the pgd is
 *    put on pgd_list: anything walking pgd_list sees a complete pgd or none;
 *  - pgd_free takes the pmds down, unlists the pgd (pgd_dtor) and frees it,
 *    so pgd_list holds exactly the live pgds;
 *  - no release_pd for a PAE pgd that was never announced (the 2-level pgd
 *    was announced by alloc_pd_clone and is released, balanced).
 * The slab caches keep the seed's sizes (page-sized pgds when unshared) but
 * no constructor/destructor for pgds: construction happens in pgd_alloc.
 */
import type { KState } from '../kstate.js';
import { GFP_KERNEL } from './page-alloc.js';
import {
  clone_pgd_range,
  copy_kernel_pmd,
  pgd_entry_for,
  pgd_list_add,
  pgd_list_del,
  pgd_pmd,
  pmd_cache_alloc,
  pmd_cache_free,
  pmd_ctor,
  set_pgd,
  type PgtableImpl,
  paravirt_alloc_pd,
  paravirt_alloc_pd_clone,
  paravirt_release_pd,
} from './pgtable-common.js';
import { memzero, pgd_read, present } from './pgtable-defs.js';

/** pgd_ctor, called with pgd_lock held. */
function pgd_ctor(k: KState, pgd: number): void {
  const L = k.L;
  const ES = L.ENTRY_SIZE;
  memzero(k.mem, pgd, L.USER_PTRS_PER_PGD * ES);
  k.work.clearBytes(L.USER_PTRS_PER_PGD * ES);
  if (!L.pae || k.SHARED_KERNEL_PMD) {
    clone_pgd_range(k, pgd + L.USER_PTRS_PER_PGD * ES, k.swapper_pg_dir + L.USER_PTRS_PER_PGD * ES, L.KERNEL_PGD_PTRS);
    if (!L.pae) paravirt_alloc_pd_clone(k, pgd / 4096, k.swapper_pg_dir / 4096, L.USER_PTRS_PER_PGD, L.KERNEL_PGD_PTRS);
  } else {
    memzero(k.mem, pgd + L.USER_PTRS_PER_PGD * ES, L.KERNEL_PGD_PTRS * ES);
    k.work.clearBytes(L.KERNEL_PGD_PTRS * ES);
  }
  // list required to sync kernel mapping updates
  if (!k.SHARED_KERNEL_PMD) pgd_list_add(k, pgd);
}

/** pgd_dtor: unlist (no release_pd for a PAE pgd nobody announced). */
function pgd_dtor(k: KState, pgd: number): void {
  if (!k.L.pae) paravirt_release_pd(k, pgd / 4096);
  if (k.SHARED_KERNEL_PMD) return;
  k.spin_lock_irqsave(k.pgd_lock);
  pgd_list_del(k, pgd);
  k.spin_unlock_irqrestore(k.pgd_lock);
}

/** preallocate_pmds: every pmd the pgd needs, or none. */
function preallocate_pmds(k: KState, pmds: number[]): boolean {
  for (let i = 0; i < k.UNSHARED_PTRS_PER_PGD; i++) {
    // Kernel pmds are copied later, under pgd_lock, so they are current.
    const pmd = pmd_cache_alloc(k, i, false);
    if (pmd === 0) {
      free_pmds(k, pmds);
      return false;
    }
    pmds.push(pmd);
  }
  return true;
}

function free_pmds(k: KState, pmds: number[]): void {
  for (let i = pmds.length - 1; i >= 0; i--) pmd_cache_free(k, pmds[i]!, i);
  pmds.length = 0;
}

/** pgd_prepopulate_pmd: install the preallocated pmds (pgd_lock held). */
function pgd_prepopulate_pmd(k: KState, pgd: number, pmds: number[]): void {
  const L = k.L;
  for (let i = 0; i < pmds.length; i++) {
    const pmd = pmds[i]!;
    if (i >= L.USER_PTRS_PER_PGD) {
      copy_kernel_pmd(k, pmd, i);
      k.raiseHook('pgd_alloc:before-set_pgd');
    }
    paravirt_alloc_pd(k, Math.floor(pmd / 4096));
    set_pgd(k, pgd + i * 8, pgd_entry_for(pmd));
  }
}

/** pgd_mop_up_pmds: take the pmds out of the pgd and free them. */
function pgd_mop_up_pmds(k: KState, pgd: number): void {
  for (let i = 0; i < k.UNSHARED_PTRS_PER_PGD; i++) {
    const pgdp = pgd + i * 8;
    const v = pgd_read(k, pgdp);
    if (!present(v)) continue;
    const pmd = pgd_pmd(k, pgdp);
    // The pgd is no longer in use by the processor (native_make_pgd(0)).
    k.mem.write64(pgdp, 0n);
    paravirt_release_pd(k, Math.floor(pmd / 4096));
    pmd_cache_free(k, pmd, i);
  }
}

export const patchedPgtable: PgtableImpl = {
  pgtable_cache_init(k) {
    const L = k.L;
    let pgd_size = L.PTRS_PER_PGD * L.ENTRY_SIZE;
    if (L.PTRS_PER_PMD > 1) {
      k.pmd_cache = k.slab.kmem_cache_create('pmd', L.PTRS_PER_PMD * 8, L.PTRS_PER_PMD * 8, pmd_ctor(k), null);
      if (!k.SHARED_KERNEL_PMD) pgd_size = 4096;
    }
    k.pgd_cache = k.slab.kmem_cache_create('pgd', pgd_size, pgd_size, null, null);
  },

  pgd_alloc(k, owner) {
    const pgd = k.slab.kmem_cache_alloc(k.pgd_cache, GFP_KERNEL, `pgd_alloc(${owner})`);
    if (pgd === 0) return 0;
    const pmds: number[] = [];
    if (k.L.pae && !preallocate_pmds(k, pmds)) {
      k.slab.kmem_cache_free(k.pgd_cache, pgd);
      return 0;
    }
    // Make sure that pre-populating the pmds is atomic with respect to
    // anything walking pgd_list: it never sees a partially populated pgd.
    k.spin_lock_irqsave(k.pgd_lock);
    pgd_ctor(k, pgd);
    k.raiseHook('pgd_alloc:after-pgd_ctor');
    pgd_prepopulate_pmd(k, pgd, pmds);
    k.spin_unlock_irqrestore(k.pgd_lock);
    return pgd;
  },

  pgd_free(k, pgd) {
    if (k.L.pae) pgd_mop_up_pmds(k, pgd);
    pgd_dtor(k, pgd);
    k.slab.kmem_cache_free(k.pgd_cache, pgd);
  },
};
