/**
 * The seed: pgtable.c exactly as "[patch 07/26] Xen-paravirt_ops: Allow
 * paravirt backend to choose kernel PMD sharing" posted it (2007-03-01),
 * bugs included, so that they can be shown:
 *  1. the PAE constructor puts the pgd on pgd_list before pgd_alloc has
 *     installed its kernel pmds (a sync or set_pmd_pte in between walks an
 *     empty slot) — see the hook points in pgd_alloc;
 *  2. pgd_dtor calls release_pd for a PAE pgd that was never announced with
 *     alloc_pd;
 *  3. (fault.c) _vmalloc_sync_all steps by PGDIR_SIZE — see vmalloc-sync.ts;
 *  4. (fault.c) vmalloc_sync_one's set_pmd is not flushed in lazy mode.
 * Also as posted: a freed pgd goes back to the slab constructed and stays on
 * pgd_list until its slab page is destroyed (pgd_dtor runs then).
 */
import { GFP_KERNEL } from './page-alloc.js';
import { partial } from '../snapshot.js';
import type { KState } from '../kstate.js';
import {
  clone_pgd_range,
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
import { memzero } from './pgtable-defs.js';

/** Non-PAE pgd constructor: zero the user part, clone the kernel part, announce, list. */
function pgd_ctor_2level(k: KState, pgd: number): void {
  const L = k.L;
  memzero(k.mem, pgd, L.USER_PTRS_PER_PGD * 4);
  k.work.clearBytes(L.USER_PTRS_PER_PGD * 4);
  clone_pgd_range(k, pgd + L.USER_PTRS_PER_PGD * 4, k.swapper_pg_dir + L.USER_PTRS_PER_PGD * 4, L.KERNEL_PGD_PTRS);
  k.spin_lock_irqsave(k.pgd_lock);
  // must happen under lock
  paravirt_alloc_pd_clone(k, pgd / 4096, k.swapper_pg_dir / 4096, L.USER_PTRS_PER_PGD, L.KERNEL_PGD_PTRS);
  pgd_list_add(k, pgd);
  k.spin_unlock_irqrestore(k.pgd_lock);
}

/** PAE pgd constructor: shared -> clone the kernel entries; unshared -> zero the user part and list. */
function pgd_ctor_pae(k: KState, pgd: number): void {
  const L = k.L;
  if (k.SHARED_KERNEL_PMD) {
    clone_pgd_range(k, pgd + L.USER_PTRS_PER_PGD * 8, k.swapper_pg_dir + L.USER_PTRS_PER_PGD * 8, L.KERNEL_PGD_PTRS);
  } else {
    memzero(k.mem, pgd, L.USER_PTRS_PER_PGD * 8);
    k.work.clearBytes(L.USER_PTRS_PER_PGD * 8);
    k.spin_lock_irqsave(k.pgd_lock);
    pgd_list_add(k, pgd);
    k.spin_unlock_irqrestore(k.pgd_lock);
  }
}

export function seed_pgd_ctor(k: KState, pgd: number): void {
  if (k.L.pae) pgd_ctor_pae(k, pgd);
  else pgd_ctor_2level(k, pgd);
}

export function seed_pgd_dtor(k: KState, pgd: number): void {
  k.BUG_ON(k.SHARED_KERNEL_PMD, 'pgd_dtor', 'pgd destructor called with a shared kernel pmd');
  // As posted: release_pd even for a PAE pgd nobody announced with alloc_pd.
  paravirt_release_pd(k, pgd / 4096);
  k.spin_lock_irqsave(k.pgd_lock);
  pgd_list_del(k, pgd);
  k.spin_unlock_irqrestore(k.pgd_lock);
}

export const seedPgtable: PgtableImpl = {
  pgtable_cache_init(k) {
    const L = k.L;
    let pgd_size = L.PTRS_PER_PGD * L.ENTRY_SIZE;
    if (L.PTRS_PER_PMD > 1) {
      k.pmd_cache = k.slab.kmem_cache_create('pmd', L.PTRS_PER_PMD * 8, L.PTRS_PER_PMD * 8, pmd_ctor(k), null);
      // Unshared kernel pmd: pgd_list links through the page, one pgd per page.
      if (!k.SHARED_KERNEL_PMD) pgd_size = 4096;
    }
    k.pgd_cache = k.slab.kmem_cache_create(
      'pgd',
      pgd_size,
      pgd_size,
      partial(seed_pgd_ctor, k),
      !k.SHARED_KERNEL_PMD ? partial(seed_pgd_dtor, k) : null,
    );
  },

  pgd_alloc(k, owner) {
    const L = k.L;
    const pgd = k.slab.kmem_cache_alloc(k.pgd_cache, GFP_KERNEL, `pgd_alloc(${owner})`);
    if (L.PTRS_PER_PMD === 1 || pgd === 0) return pgd;
    // The window of bug 1: the pgd is constructed (and, unshared, listed) but
    // its kernel slots are not populated yet.
    k.raiseHook('pgd_alloc:after-pgd_ctor');
    let i = 0;
    for (; i < k.UNSHARED_PTRS_PER_PGD; ++i) {
      const pmd = pmd_cache_alloc(k, i);
      if (pmd === 0) break;
      paravirt_alloc_pd(k, Math.floor(pmd / 4096));
      if (i >= L.USER_PTRS_PER_PGD) k.raiseHook('pgd_alloc:before-set_pgd');
      set_pgd(k, pgd + i * 8, pgd_entry_for(pmd));
    }
    if (i === k.UNSHARED_PTRS_PER_PGD) return pgd;
    // out_oom: unwind every pmd already installed.
    for (i--; i >= 0; i--) {
      const pmd = pgd_pmd(k, pgd + i * 8);
      paravirt_release_pd(k, Math.floor(pmd / 4096));
      pmd_cache_free(k, pmd, i);
    }
    k.slab.kmem_cache_free(k.pgd_cache, pgd);
    return 0;
  },

  pgd_free(k, pgd) {
    const L = k.L;
    // in the PAE case user pgd entries are overwritten before usage
    if (L.PTRS_PER_PMD > 1) {
      for (let i = 0; i < k.UNSHARED_PTRS_PER_PGD; ++i) {
        const pmd = pgd_pmd(k, pgd + i * 8);
        paravirt_release_pd(k, Math.floor(pmd / 4096));
        pmd_cache_free(k, pmd, i);
      }
    }
    // in the non-PAE case, free_pgtables() clears user pgd entries
    k.slab.kmem_cache_free(k.pgd_cache, pgd);
  },
};
