/**
 * arch/i386/mm/fault.c: do_page_fault, vmalloc_fault, vmalloc_sync_one and
 * vmalloc_sync_all.
 *
 * A kernel-mode, not-present fault at a kernel address is first offered to
 * vmalloc_fault: the current pgd (read from CR3) lacks the pmd/pde entry
 * init_mm has for that address, so it is copied in and the access retried.
 * Under PAE with a shared kernel pmd this never happens; with unshared kernel
 * pmds (Xen) or in 2-level paging it is how a pgd learns of vmalloc areas
 * created after it.
 *
 * vmalloc_sync_all pushes init_mm's entries into every pgd on pgd_list
 * ahead of time; its stride is where the seed is wrong under PAE
 * (PGDIR_SIZE: one 2 MiB pmd entry per GiB) and the fix steps by PMD_SIZE
 * from VMALLOC_START to VMALLOC_END. The fixed vmalloc_sync_one also flushes
 * lazy MMU mode after its set_pmd, so the retried access sees it.
 */
import { PFEC_P, PFEC_RSVD, PFEC_U, PFEC_W } from '../../emulator/paging-bits.js';
import type { KState, MmStruct } from '../kstate.js';
import { VM_EXEC, VM_READ, VM_WRITE } from '../kstate.js';
import { hex } from '../../emulator/hex.js';
import { pgdListEntries } from './pgtable-common.js';
import { _PAGE_PSE, entryPfn, pgd_read, pmd_offset, pmd_read, present, pte_offset, pte_read, readRaw } from './pgtable-defs.js';
import { handle_mm_fault } from './memory.js';
import { find_vma } from './mmap.js';

export type PageFaultOutcome = 'fixed' | 'segv' | 'oom';

/**
 * vmalloc_sync_one(pgd, address): copy init_mm's pmd entry for `address`
 * into `pgd` if it lacks it. Returns the address of init_mm's pmd entry, or
 * -1 when init_mm has nothing there.
 */
export function vmalloc_sync_one(k: KState, pgd: number, address: number): number {
  const L = k.L;
  const index = Math.floor(address / L.PGDIR_SIZE);
  const pgdp = pgd + index * L.ENTRY_SIZE;
  const pgdp_k = k.swapper_pg_dir + index * L.ENTRY_SIZE;
  // pgd_present/pud_present are always true when the level is folded (2-level).
  if (L.pae && !present(pgd_read(k, pgdp_k))) return -1;
  // As Linux computes it: an empty pgd entry of `pgd` gives a pointer into page 0.
  const pmdp = pmd_offset(k, pgdp, address);
  const pmdp_k = pmd_offset(k, pgdp_k, address);
  const pmd_k = pmd_read(k, pmdp_k);
  if (!present(pmd_k)) return -1;
  const pmd = pmd_read(k, pmdp);
  if (!present(pmd)) {
    k.ops.set_pmd(pmdp, readRaw(k, pmdp_k));
    k.stats.vmallocSyncSets++;
    // The fix for bug 4: in lazy MMU mode the set_pmd must be issued now.
    if (k.variant === 'patched' && k.lazyMode === 'mmu') k.ops.lazy_flush();
  } else if (entryPfn(pmd) !== entryPfn(pmd_k)) {
    k.BUG(
      'vmalloc_sync_one',
      `pgd ${hex(pgd)}: pmd entry for ${hex(address)} maps frame ${hex(entryPfn(pmd))}, init_mm maps ${hex(entryPfn(pmd_k))}`,
    );
  }
  return pmdp_k;
}

/** vmalloc_fault(address): 0 if the current pgd was synced and the pte exists, -1 otherwise. */
export function vmalloc_fault(k: KState, address: number): number {
  // Do not use "current": the pgd is whatever CR3 holds.
  const pgd_paddr = k.ops.read_cr3();
  const pmdp_k = vmalloc_sync_one(k, pgd_paddr, address);
  if (pmdp_k < 0) return -1;
  const pmd_k = pmd_read(k, pmdp_k);
  // A large direct-map page needs no pte.
  if ((pmd_k & _PAGE_PSE) !== 0n) return 0;
  const pte_k = pte_read(k, pte_offset(k, pmd_k, address));
  if (!present(pte_k)) return -1;
  return 0;
}

/** vmalloc_sync_all() for the kernel's variant. */
export function vmalloc_sync_all(k: KState): void {
  k.stats.vmallocSyncAll++;
  switch (k.variant) {
    case 'patched':
      return vmalloc_sync_all_fixed(k);
    case 'seed':
      // pgtable.h: if (!SHARED_KERNEL_PMD) _vmalloc_sync_all();
      if (!k.SHARED_KERNEL_PMD) return _vmalloc_sync_all(k, true);
      return;
    case 'prepatch':
      // 2.6.21: a no-op under PAE, the pgd walk in 2-level paging.
      if (!k.L.pae) return _vmalloc_sync_all(k, false);
      return;
  }
}

/**
 * The seed's _vmalloc_sync_all (fault.c, 2.6.21 with the patch): from
 * `start` by PGDIR_SIZE while the address stays in kernel space, a pgd_index
 * bitmap `insync` remembering what is done. Over pgd_list, a sync that fails
 * may only fail at the first pgd (the kernel's own entry is missing, so every
 * pgd would fail alike): BUG_ON(page != pgd_list) otherwise, as 2.6.21 does.
 */
function _vmalloc_sync_all(k: KState, bugOnShared: boolean): void {
  const L = k.L;
  if (bugOnShared) k.BUG_ON(k.SHARED_KERNEL_PMD, '_vmalloc_sync_all', 'called with a shared kernel pmd');
  for (let address = k.syncStart; address >= L.TASK_SIZE && address < 0x1_0000_0000; address += L.PGDIR_SIZE) {
    const idx = Math.floor(address / L.PGDIR_SIZE);
    if (k.insync[idx] === 0) {
      k.spin_lock_irqsave(k.pgd_lock);
      let all = true;
      let first = true;
      for (const pgd of pgdListEntries(k)) {
        if (vmalloc_sync_one(k, pgd, address) < 0) {
          k.BUG_ON(!first, '_vmalloc_sync_all', `BUG_ON(page != pgd_list): the sync of ${address.toString(16)} failed at pgd ${pgd.toString(16)}, not the first on pgd_list`);
          all = false;
          break;
        }
        first = false;
      }
      k.spin_unlock_irqrestore(k.pgd_lock);
      if (all) k.insync[idx] = 1;
    }
    if (address === k.syncStart && k.insync[idx] === 1) k.syncStart = address + L.PGDIR_SIZE;
  }
}

/** The fixed vmalloc_sync_all: every PMD_SIZE step of the vmalloc area, every pgd. */
function vmalloc_sync_all_fixed(k: KState): void {
  const L = k.L;
  if (k.SHARED_KERNEL_PMD) return;
  const first = Math.floor(L.VMALLOC_START / L.PMD_SIZE) * L.PMD_SIZE;
  for (let address = first; address >= L.TASK_SIZE && address < L.VMALLOC_END; address += L.PMD_SIZE) {
    k.spin_lock_irqsave(k.pgd_lock);
    for (const pgd of pgdListEntries(k)) {
      if (vmalloc_sync_one(k, pgd, address) < 0) break;
    }
    k.spin_unlock_irqrestore(k.pgd_lock);
  }
}

/**
 * do_page_fault(error_code) for the fault at CR2. `mm` is the faulting
 * task's mm for user-space addresses (the active mm). Returns what the
 * faulting access should do next; throws KernelBug for an oops.
 */
export function do_page_fault(k: KState, error_code: number, mm: MmStruct | null): PageFaultOutcome {
  const address = k.ops.read_cr2() >>> 0;
  const user = (error_code & PFEC_U) !== 0;
  // i386 do_page_fault (2.6.21/2.6.22) has no reserved-bit check (pgtable_bad
  // is x86-64's): a reserved-bit fault takes the paths below like any other.
  if (address >= k.L.TASK_SIZE) {
    // Only a kernel-mode, not-present, non-reserved fault may be a vmalloc fault.
    if ((error_code & (PFEC_P | PFEC_U | PFEC_RSVD)) === 0 && vmalloc_fault(k, address) >= 0) {
      k.stats.faultsVmalloc++;
      return 'fixed';
    }
    // bad_area_nosemaphore
    if (user) return segv(k);
    k.BUG('do_page_fault', `unable to handle kernel paging request at ${hex(address)} (error code ${hex(error_code)})`);
  }
  if (!user) {
    // No exception-table fixup exists for the kernel paths modelled here.
    k.BUG('do_page_fault', `kernel access to user address ${hex(address)} (error code ${hex(error_code)})`);
  }
  if (mm === null) return segv(k);
  const vma = find_vma(mm, address);
  if (vma === undefined || vma.start > address) return segv(k);
  // good_area
  let write = false;
  switch (error_code & (PFEC_P | PFEC_W)) {
    case PFEC_W:
    case PFEC_W | PFEC_P:
      if ((vma.flags & VM_WRITE) === 0) return segv(k);
      write = true;
      break;
    case PFEC_P:
      // read (or fetch) of a present page that still faults: a protection violation
      return segv(k);
    default:
      if ((vma.flags & (VM_READ | VM_EXEC | VM_WRITE)) === 0) return segv(k);
  }
  const r = handle_mm_fault(k, mm, vma, address, write);
  return r;
}

function segv(k: KState): PageFaultOutcome {
  k.stats.faultsSegv++;
  return 'segv';
}
