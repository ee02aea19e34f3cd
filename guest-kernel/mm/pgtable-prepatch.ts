/**
 * pgtable.c before the seed patch (Linux 2.6.21): the kernel pmd is always
 * shared, whatever the backend asks. A PAE pgd is a 32-byte slab object
 * (PTRS_PER_PGD * sizeof(pgd_t), aligned to 32) whose kernel slots are cloned
 * from swapper_pg_dir, i.e. point at swapper's own kernel pmd(s); only user
 * pmds are allocated. pgd_list and the pgd destructor exist only for
 * 2-level paging.
 *
 * Under Xen this cannot work: the pgd is not a page of its own (an L3 must be
 * at offset 0 of its frame) and its slot-3 pmd is shared with every other
 * pgd ("PAE L3 3rd slot is shared"). That is the problem the seed solves.
 */
import { partial } from '../snapshot.js';
import type { KState } from '../kstate.js';
import { GFP_KERNEL } from './page-alloc.js';
import {
  clone_pgd_range,
  pgd_entry_for,
  pgd_list_add,
  pgd_list_del,
  pgd_pmd,
  pmd_ctor,
  set_pgd,
  type PgtableImpl,
  paravirt_alloc_pd,
  paravirt_alloc_pd_clone,
  paravirt_release_pd,
} from './pgtable-common.js';
import { memzero } from './pgtable-defs.js';

function pgd_ctor(k: KState, pgd: number): void {
  const L = k.L;
  if (L.PTRS_PER_PMD === 1) {
    memzero(k.mem, pgd, L.USER_PTRS_PER_PGD * 4);
    k.work.clearBytes(L.USER_PTRS_PER_PGD * 4);
    k.spin_lock_irqsave(k.pgd_lock);
  }
  clone_pgd_range(
    k,
    pgd + L.USER_PTRS_PER_PGD * L.ENTRY_SIZE,
    k.swapper_pg_dir + L.USER_PTRS_PER_PGD * L.ENTRY_SIZE,
    L.KERNEL_PGD_PTRS,
  );
  if (L.PTRS_PER_PMD > 1) return;
  // must happen under lock
  paravirt_alloc_pd_clone(k, pgd / 4096, k.swapper_pg_dir / 4096, L.USER_PTRS_PER_PGD, L.PTRS_PER_PGD - L.USER_PTRS_PER_PGD);
  pgd_list_add(k, pgd);
  k.spin_unlock_irqrestore(k.pgd_lock);
}

/** never called when PTRS_PER_PMD > 1 */
function pgd_dtor(k: KState, pgd: number): void {
  paravirt_release_pd(k, pgd / 4096);
  k.spin_lock_irqsave(k.pgd_lock);
  pgd_list_del(k, pgd);
  k.spin_unlock_irqrestore(k.pgd_lock);
}

function user_pmd_alloc(k: KState): number {
  return k.slab.kmem_cache_alloc(k.pmd_cache!, GFP_KERNEL, 'pgd_alloc');
}

export const prepatchPgtable: PgtableImpl = {
  pgtable_cache_init(k) {
    const L = k.L;
    // Before the patch the PAE kernel pmd is shared, full stop (2-level: no pmd to share).
    k.SHARED_KERNEL_PMD = L.pae;
    if (L.PTRS_PER_PMD > 1) {
      k.pmd_cache = k.slab.kmem_cache_create('pmd', L.PTRS_PER_PMD * 8, L.PTRS_PER_PMD * 8, pmd_ctor(k), null);
    }
    k.pgd_cache = k.slab.kmem_cache_create(
      'pgd',
      L.PTRS_PER_PGD * L.ENTRY_SIZE,
      L.PTRS_PER_PGD * L.ENTRY_SIZE,
      partial(pgd_ctor, k),
      L.PTRS_PER_PMD === 1 ? partial(pgd_dtor, k) : null,
    );
  },

  pgd_alloc(k, owner) {
    const L = k.L;
    const pgd = k.slab.kmem_cache_alloc(k.pgd_cache, GFP_KERNEL, `pgd_alloc(${owner})`);
    if (L.PTRS_PER_PMD === 1 || pgd === 0) return pgd;
    k.raiseHook('pgd_alloc:after-pgd_ctor');
    let i = 0;
    for (; i < L.USER_PTRS_PER_PGD; ++i) {
      const pmd = user_pmd_alloc(k);
      if (pmd === 0) break;
      paravirt_alloc_pd(k, Math.floor(pmd / 4096));
      set_pgd(k, pgd + i * 8, pgd_entry_for(pmd));
    }
    if (i === L.USER_PTRS_PER_PGD) return pgd;
    // out_oom
    for (i--; i >= 0; i--) {
      const pmd = pgd_pmd(k, pgd + i * 8);
      paravirt_release_pd(k, Math.floor(pmd / 4096));
      k.slab.kmem_cache_free(k.pmd_cache!, pmd);
    }
    k.slab.kmem_cache_free(k.pgd_cache, pgd);
    return 0;
  },

  pgd_free(k, pgd) {
    const L = k.L;
    // in the PAE case user pgd entries are overwritten before usage
    if (L.PTRS_PER_PMD > 1) {
      for (let i = 0; i < L.USER_PTRS_PER_PGD; ++i) {
        const pmd = pgd_pmd(k, pgd + i * 8);
        paravirt_release_pd(k, Math.floor(pmd / 4096));
        k.slab.kmem_cache_free(k.pmd_cache!, pmd);
      }
    }
    k.slab.kmem_cache_free(k.pgd_cache, pgd);
  },
};
