/**
 * kernel/fork.c: mm_alloc (a fresh mm: mm_struct from its slab, pgd_alloc)
 * and dup_mm for fork (dup_mmap: every vma duplicated, copy_page_range for
 * each, arch_dup_mmap at the end — Xen pins the new pgd there — and the
 * parent's TLB flushed because its writable ptes were write-protected).
 * Every failure unwinds through mmput, so nothing leaks.
 */
import type { KState, MmStruct, Task, Vma } from '../kstate.js';
import { ENOMEM } from '../mm/mmap.js';
import { GFP_KERNEL } from '../mm/page-alloc.js';
import { copy_page_range } from '../mm/memory.js';
import type { PgtableImpl } from '../mm/pgtable-common.js';
import { mmput } from './exit.js';
import { activate_mm } from './sched.js';
import type { TaskList } from './tasks.js';

/** allocate_mm + mm_init (pgd_alloc). Null when out of memory. */
export function mm_alloc(k: KState, impl: PgtableImpl, owner: string): MmStruct | null {
  const obj = k.slab.kmem_cache_alloc(k.mm_cachep, GFP_KERNEL, 'mm_alloc');
  if (obj === 0) return null;
  const mm: MmStruct = { pgd: 0, vmas: [], obj, rss: 0, owner, id: k.newMmId() };
  const pgd = impl.pgd_alloc(k, owner);
  if (pgd === 0) {
    k.slab.kmem_cache_free(k.mm_cachep, obj); // free_mm
    return null;
  }
  mm.pgd = pgd;
  k.mms.add(mm);
  return mm;
}

/** dup_mmap(mm, oldmm): false on out-of-memory (the caller mmputs the new mm). */
function dup_mmap(k: KState, mm: MmStruct, oldmm: MmStruct): boolean {
  let ok = true;
  for (const mpnt of oldmm.vmas) {
    const obj = k.slab.kmem_cache_alloc(k.vm_area_cachep, GFP_KERNEL, 'dup_mmap');
    if (obj === 0) {
      ok = false;
      break;
    }
    const tmp: Vma = { start: mpnt.start, end: mpnt.end, flags: mpnt.flags, page_prot: mpnt.page_prot, obj };
    // Linked before the copy, so a partial copy is torn down by exit_mmap.
    mm.vmas.push(tmp);
    if (!copy_page_range(k, mm, oldmm, mpnt)) {
      ok = false;
      break;
    }
  }
  // a new mm has just been created
  if (ok) k.ops.dup_mmap(oldmm, mm);
  // flush_tlb_mm(oldmm): its writable ptes are write-protected now.
  if (k.active_mm === oldmm) k.ops.flush_tlb_user();
  return ok;
}

/** dup_mm(tsk): the child's mm, or null (-ENOMEM) with nothing left behind. */
export function dup_mm(k: KState, impl: PgtableImpl, oldmm: MmStruct, owner: string): MmStruct | null {
  const mm = mm_alloc(k, impl, owner);
  if (mm === null) return null;
  if (!dup_mmap(k, mm, oldmm)) {
    mmput(k, impl, mm);
    return null;
  }
  return mm;
}

/**
 * do_fork → copy_process for CHILD of PARENT: the child's mm (dup_mm) and its
 * task. 0 or -ENOMEM (nothing left behind).
 */
export function do_fork(k: KState, impl: PgtableImpl, tasks: TaskList, parent: string, child: string): number {
  const p = tasks.get(parent);
  tasks.checkNewName(child);
  k.work.path('fork'); // copy_process, dup_mm apart from the page tables
  const mm = dup_mm(k, impl, p.mm, child);
  if (mm === null) return -ENOMEM;
  const pid = tasks.allocPid();
  tasks.add({ name: child, pid, mm });
  tasks.emit({ type: 'process', op: 'fork', name: child, pid });
  return 0;
}

/**
 * A new process with a fresh, empty mm (like init's first exec): mm_alloc,
 * the task, and activate_mm; it becomes current. 0 or -ENOMEM.
 */
export function create_process(k: KState, impl: PgtableImpl, tasks: TaskList, name: string): number {
  tasks.checkNewName(name);
  const mm = mm_alloc(k, impl, name);
  if (mm === null) return -ENOMEM;
  const t: Task = { name, pid: tasks.allocPid(), mm };
  tasks.add(t);
  const from = tasks.currentPid;
  activate_mm(k, k.active_mm, mm);
  tasks.current = t;
  tasks.emit({ type: 'process', op: 'create', name, pid: t.pid });
  tasks.emit({ type: 'switch', fromPid: from, toPid: t.pid });
  return 0;
}
