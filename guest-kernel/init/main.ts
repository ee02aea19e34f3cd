/**
 * init/main.c's start_kernel, as far as the memory manager goes: the page
 * allocator over the guest's frames (setup_arch / free_all_bootmem, the low
 * 1 MiB and the kernel image kept), paging_init (swapper_pg_dir, the direct
 * map, fixmap, pkmap; CR3), init_mm, the kmalloc caches, pgtable_cache_init
 * (pmd and pgd caches, SHARED_KERNEL_PMD from the backend), and the
 * mm_struct and vm_area_struct caches (fork_init / proc_caches_init).
 */
import type { ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { partial } from '../snapshot.js';
import { KState, type MmStruct, type Variant } from '../kstate.js';
import { hex } from '../../emulator/hex.js';
import { KERNEL_IMAGE_PAGES, KERNEL_TEXT_START_PFN, PAGE_OFFSET_BY_SPLIT, computeLayout, type Split } from '../layout.js';
import { paging_init } from '../mm/init.js';
import { PageAllocator } from '../mm/page-alloc.js';
import type { PgtableImpl } from '../mm/pgtable-common.js';
import { protections } from '../mm/pgtable-defs.js';
import { pgtableFor, pgtable_cache_init } from '../mm/pgtable.js';
import { SlabAllocator } from '../mm/slab.js';
import { KernelWork } from '../kernel/work.js';

/** Frames kept at boot: the low 1 MiB and the kernel image. */
export const BOOT_RESERVED_PFNS = KERNEL_TEXT_START_PFN + KERNEL_IMAGE_PAGES;

export interface StartKernelConfig {
  ops: ParavirtOps;
  split?: Split;
  variant: Variant;
  pae?: boolean;
  memBytes?: number;
}

function splitFromPageOffset(pageOffset: number): Split {
  for (const s of Object.keys(PAGE_OFFSET_BY_SPLIT) as Split[]) if (PAGE_OFFSET_BY_SPLIT[s] === pageOffset >>> 0) return s;
  throw new RangeError(`backend config pageOffset ${hex(pageOffset)} is not a VMSPLIT (3G/2G/1G)`);
}

/** start_kernel: the booted kernel's state and its pgtable.c variant. */
export function start_kernel(cfg: StartKernelConfig): { k: KState; impl: PgtableImpl } {
  const ops = cfg.ops;
  const pae = ops.config.pae;
  if (cfg.pae !== undefined && cfg.pae !== pae) throw new RangeError(`boot: pae=${cfg.pae} but the backend was set up with pae=${pae}`);
  const memBytes = ops.mem.nrPages * 4096;
  if (cfg.memBytes !== undefined && cfg.memBytes !== memBytes) {
    throw new RangeError(`boot: memBytes ${cfg.memBytes} but the backend has ${memBytes}`);
  }
  const split = cfg.split ?? splitFromPageOffset(ops.config.pageOffset);
  if (PAGE_OFFSET_BY_SPLIT[split] !== ops.config.pageOffset >>> 0) {
    throw new RangeError(`boot: split ${split} but the backend was set up with pageOffset ${hex(ops.config.pageOffset)}`);
  }
  const L = computeLayout({ pae, split, memBytes, reservedTop: ops.reservedTop });
  if (L.max_low_pfn < BOOT_RESERVED_PFNS + 1024) {
    throw new RangeError(`boot: ${memBytes} bytes of lowmem is too little (need at least ${(BOOT_RESERVED_PFNS + 1024) * 4} KiB)`);
  }
  const pages = new PageAllocator(ops.mem, L.max_pfn, L.max_low_pfn);
  pages.freeBootmem(0, L.max_pfn, (pfn) => pfn < BOOT_RESERVED_PFNS);
  const slab = new SlabAllocator(pages, ops.mem);
  const k = new KState(ops, L, cfg.variant, pages, slab, protections(pae, ops.globalPagesAllowed !== false));
  const impl = pgtableFor(cfg.variant);
  k.work = new KernelWork(k);
  // clear_page for every zeroed allocation (__GFP_ZERO, bootmem): the page allocator's callback.
  pages.onZero = partial(clearZeroed, k);

  paging_init(k);
  const init_mm: MmStruct = { pgd: k.swapper_pg_dir, vmas: [], obj: 0, rss: 0, owner: 'init_mm', id: 0 };
  k.init_mm = init_mm;
  k.active_mm = init_mm;
  pgtable_cache_init(k, impl);
  k.mm_cachep = slab.kmem_cache_create('mm_struct', 416, 32, null, null);
  k.vm_area_cachep = slab.kmem_cache_create('vm_area_struct', 84, 4, null, null);
  return { k, impl };
}

/** clear_page for the page allocator's zeroed allocations (its onZero). */
function clearZeroed(k: KState, pages: number): void {
  k.work.clearPages(pages);
}
