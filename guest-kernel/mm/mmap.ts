/**
 * mm/mmap.c for anonymous private mappings: the vma list of an mm, mmap with
 * MAP_FIXED semantics (an existing mapping in the range is unmapped first),
 * munmap with vma splitting (split_vma allocates a vm_area_struct and can
 * fail), and exit_mmap, which tears down the whole user address space
 * (arch_exit_mmap first: under Xen that unpins the pgd, so the teardown is
 * plain stores).
 */
import type { KState, MmStruct, Vma } from '../kstate.js';
import { VM_EXEC, VM_MAYEXEC, VM_MAYREAD, VM_MAYWRITE, VM_READ, VM_WRITE } from '../kstate.js';
import { GFP_KERNEL } from './page-alloc.js';
import { free_pgtables, zap_page_range } from './memory.js';

export const ENOMEM = 12;
export const EINVAL = 22;

export type Prot = 'r' | 'rw' | 'rx' | 'rwx';

export function protToVmFlags(prot: Prot): number {
  let f = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (prot.includes('r')) f |= VM_READ;
  if (prot.includes('w')) f |= VM_WRITE;
  if (prot.includes('x')) f |= VM_EXEC;
  return f;
}

/** vm_get_page_prot: protection_map for a private mapping (writable ones start copy-on-write). */
export function vm_get_page_prot(k: KState, flags: number): bigint {
  const P = k.prot;
  const exec = (flags & VM_EXEC) !== 0;
  if ((flags & VM_WRITE) !== 0) return exec ? P.PAGE_COPY_EXEC : P.PAGE_COPY;
  return exec ? P.PAGE_READONLY_EXEC : P.PAGE_READONLY;
}

/** find_vma: the first vma with vm_end > addr. */
export function find_vma(mm: MmStruct, addr: number): Vma | undefined {
  for (const v of mm.vmas) if (v.end > addr) return v;
  return undefined;
}

function insert_vma(mm: MmStruct, vma: Vma): void {
  let i = 0;
  while (i < mm.vmas.length && mm.vmas[i]!.start < vma.start) i++;
  mm.vmas.splice(i, 0, vma);
}

function free_vma(k: KState, vma: Vma): void {
  k.slab.kmem_cache_free(k.vm_area_cachep, vma.obj);
}

/** Check an mmap/munmap range for the configuration (page aligned, inside user space). */
export function check_range(k: KState, addr: number, len: number): boolean {
  return (
    Number.isInteger(addr) &&
    Number.isInteger(len) &&
    addr % 4096 === 0 &&
    len % 4096 === 0 &&
    len > 0 &&
    addr >= 0 &&
    addr + len <= k.L.TASK_SIZE
  );
}

/** do_mmap_pgoff(MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS): 0 or -errno. */
export function do_mmap(k: KState, mm: MmStruct, addr: number, len: number, prot: Prot): number {
  if (!check_range(k, addr, len)) return -EINVAL;
  k.work.path('mmap'); // do_mmap_pgoff's fixed part and footprint
  const r = do_munmap(k, mm, addr, len);
  if (r < 0) return r;
  const obj = k.slab.kmem_cache_alloc(k.vm_area_cachep, GFP_KERNEL, 'do_mmap');
  if (obj === 0) return -ENOMEM;
  const flags = protToVmFlags(prot);
  insert_vma(mm, { start: addr, end: addr + len, flags, page_prot: vm_get_page_prot(k, flags), obj });
  return 0;
}

/** split_vma(mm, vma, addr): the part below addr becomes a new vma. False when out of memory. */
function split_vma(k: KState, mm: MmStruct, vma: Vma, addr: number): boolean {
  const obj = k.slab.kmem_cache_alloc(k.vm_area_cachep, GFP_KERNEL, 'split_vma');
  if (obj === 0) return false;
  const below: Vma = { start: vma.start, end: addr, flags: vma.flags, page_prot: vma.page_prot, obj };
  vma.start = addr;
  insert_vma(mm, below);
  return true;
}

/** do_munmap: 0 or -errno. */
export function do_munmap(k: KState, mm: MmStruct, start: number, len: number): number {
  if (!check_range(k, start, len)) return -EINVAL;
  const end = start + len;
  const first = find_vma(mm, start);
  if (first === undefined || first.start >= end) return 0;
  k.work.path('munmap'); // do_munmap's fixed part and footprint (a range with a vma in it)
  if (first.start < start && !split_vma(k, mm, first, start)) return -ENOMEM;
  const last = find_vma(mm, end - 1);
  if (last !== undefined && last.start < end && last.end > end && !split_vma(k, mm, last, end)) return -ENOMEM;
  // detach_vmas_to_be_unmapped
  const gone = mm.vmas.filter((v) => v.start >= start && v.end <= end);
  mm.vmas = mm.vmas.filter((v) => !(v.start >= start && v.end <= end));
  // unmap_region
  for (const v of gone) zap_page_range(k, mm, v.start, v.end);
  free_pgtables(k, mm, start, end);
  for (const v of gone) free_vma(k, v);
  return 0;
}

/** exit_mmap: arch_exit_mmap, unmap everything, free every user page table. */
export function exit_mmap(k: KState, mm: MmStruct): void {
  k.ops.exit_mmap(mm);
  const vmas = mm.vmas;
  for (const v of vmas) zap_page_range(k, mm, v.start, v.end, true);
  mm.vmas = [];
  for (const v of vmas) free_pgtables(k, mm, v.start, v.end);
  for (const v of vmas) free_vma(k, v);
}
