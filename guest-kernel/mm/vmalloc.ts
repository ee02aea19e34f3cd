/**
 * mm/vmalloc.c: vmalloc and vfree. Areas live between VMALLOC_START and
 * VMALLOC_END with a guard page after each; their pages (highmem allowed)
 * are mapped in init_mm's page tables only (swapper_pg_dir). Kernel pte
 * pages are allocated on demand and never freed. Other pgds learn of a new
 * mapping through vmalloc_fault, or vmalloc_sync_all (fault.ts) when asked.
 */
import type { KState, VmStruct } from '../kstate.js';
import { hex } from '../../emulator/hex.js';
import { alignUp } from '../layout.js';
import { GFP_KERNEL, __GFP_HIGHMEM } from './page-alloc.js';
import { pfn_pte, pmd_offset, pmd_read, present, pte_offset, pte_read } from './pgtable-defs.js';
import { pmd_populate_kernel, pte_alloc_one_kernel } from './pgtable.js';

export { vmalloc_sync_all } from './fault.js';

const VM_STRUCT_SIZE = 32;

function kernel_pmdp(k: KState, va: number): number {
  const pgdp = k.swapper_pg_dir + Math.floor(va / k.L.PGDIR_SIZE) * k.L.ENTRY_SIZE;
  return pmd_offset(k, pgdp, va);
}

/** pte_alloc_kernel(pmd, address): the pte entry address, or -1 when out of memory. */
function pte_alloc_kernel(k: KState, va: number): number {
  const pmdp = kernel_pmdp(k, va);
  let pmd = pmd_read(k, pmdp);
  if (!present(pmd)) {
    const pfn = pte_alloc_one_kernel(k);
    if (pfn < 0) return -1;
    pmd_populate_kernel(k, pmdp, pfn);
    pmd = pmd_read(k, pmdp);
  }
  return pte_offset(k, pmd, va);
}

/** __get_vm_area: first fit in [VMALLOC_START, VMALLOC_END), size plus a guard page. */
function get_vm_area(k: KState, size: number): VmStruct | null {
  const L = k.L;
  size += 4096;
  let addr = L.VMALLOC_START;
  let at = 0;
  for (; at < k.vmlist.length; at++) {
    const tmp = k.vmlist[at]!;
    if (addr + size <= tmp.addr) break;
    addr = tmp.addr + tmp.size;
  }
  if (addr + size > L.VMALLOC_END) return null;
  const obj = k.slab.kmalloc(VM_STRUCT_SIZE, '__get_vm_area');
  if (obj === 0) return null;
  const area: VmStruct = { addr, size, pages: [], obj, pagesObj: 0, pagesObjSize: 0 };
  k.vmlist.splice(at, 0, area);
  return area;
}

/** unmap_vm_area: clear the ptes in init_mm and flush the kernel TLB. */
function unmap_vm_area(k: KState, area: VmStruct): void {
  const end = area.addr + area.size - 4096;
  for (let va = area.addr; va < end; va += 4096) {
    const pmd = pmd_read(k, kernel_pmdp(k, va));
    if (!present(pmd)) continue;
    const ptep = pte_offset(k, pmd, va);
    if (pte_read(k, ptep) !== 0n) k.ops.pte_clear(k.init_mm, va, ptep);
  }
  // flush_tlb_kernel_range -> flush_tlb_all
  k.ops.flush_tlb_kernel();
}

/** vfree / the error path of __vmalloc_area: unmap, free the pages, the array and the vm_struct. */
function free_area(k: KState, area: VmStruct): void {
  unmap_vm_area(k, area);
  const i = k.vmlist.indexOf(area);
  if (i >= 0) k.vmlist.splice(i, 1);
  for (const pfn of area.pages) k.pages.free_page(pfn);
  if (area.pagesObj !== 0) k.slab.kfree(area.pagesObj, area.pagesObjSize);
  k.slab.kfree(area.obj, VM_STRUCT_SIZE);
}

/** vmalloc(size): the area, or null when out of memory or address space. */
export function vmalloc(k: KState, size: number): VmStruct | null {
  if (!Number.isInteger(size) || size <= 0) throw new RangeError(`vmalloc(${size}): bad size`);
  size = alignUp(size, 4096);
  const nr_pages = size / 4096;
  const area = get_vm_area(k, size);
  if (area === null) return null;
  // The page array (struct page *[nr_pages]); large arrays in Linux come from
  // vmalloc itself, here from the bigger kmalloc caches.
  area.pagesObjSize = Math.max(4, nr_pages * 4);
  if (area.pagesObjSize > 131072) {
    free_area(k, area);
    return null;
  }
  area.pagesObj = k.slab.kmalloc(area.pagesObjSize, '__vmalloc_area');
  if (area.pagesObj === 0) {
    free_area(k, area);
    return null;
  }
  for (let i = 0; i < nr_pages; i++) {
    const pfn = k.pages.alloc_pages(GFP_KERNEL | __GFP_HIGHMEM, 0, '__vmalloc_area');
    if (pfn < 0) {
      free_area(k, area);
      return null;
    }
    area.pages.push(pfn);
  }
  // map_vm_area
  for (let i = 0; i < nr_pages; i++) {
    const va = area.addr + i * 4096;
    const ptep = pte_alloc_kernel(k, va);
    if (ptep < 0) {
      free_area(k, area);
      return null;
    }
    k.ops.set_pte_at(k.init_mm, va, ptep, k.ops.make_pte(pfn_pte(area.pages[i]!, k.prot.PAGE_KERNEL)));
  }
  return area;
}

/** vfree(addr) */
export function vfree(k: KState, addr: number): void {
  const area = k.vmlist.find((a) => a.addr === addr);
  if (area === undefined) k.BUG('vfree', `trying to vfree() nonexistent vm area ${hex(addr)}`);
  free_area(k, area);
}
