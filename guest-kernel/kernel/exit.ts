/**
 * kernel/exit.c and kernel/fork.c's mmput/mmdrop: the last user of an mm
 * tears it down — exit_mmap (arch_exit_mmap, unmap every vma, free the user
 * page tables), then pgd_free and the mm_struct back to its slab. An mm that
 * is still loaded in CR3 is switched away from first (leave_mm), as the
 * scheduler does before the mm is dropped.
 */
import type { KState, MmStruct, Task } from '../kstate.js';
import { exit_mmap } from '../mm/mmap.js';
import type { PgtableImpl } from '../mm/pgtable-common.js';
import { leave_mm } from './sched.js';
import type { TaskList } from './tasks.js';

/** mmput: exit_mmap then mmdrop. */
export function mmput(k: KState, impl: PgtableImpl, mm: MmStruct): void {
  if (k.active_mm === mm) leave_mm(k);
  exit_mmap(k, mm);
  mmdrop(k, impl, mm);
}

/** mmdrop -> __mmdrop: pgd_free, free_mm. */
export function mmdrop(k: KState, impl: PgtableImpl, mm: MmStruct): void {
  k.BUG_ON(k.active_mm === mm, '__mmdrop', `freeing the mm of ${mm.owner} while it is in CR3`);
  impl.pgd_free(k, mm.pgd);
  k.mms.delete(mm);
  k.slab.kmem_cache_free(k.mm_cachep, mm.obj);
}

/** do_exit for a task: its mm is put (exit_mm → mmput), the task forgotten. */
export function do_exit(k: KState, impl: PgtableImpl, tasks: TaskList, t: Task): void {
  const wasCurrent = tasks.current === t;
  k.work.path('exit'); // exit_notify, release_task, the parent's wait4
  if (wasCurrent) tasks.current = null;
  tasks.remove(t);
  mmput(k, impl, t.mm);
  tasks.emit({ type: 'process', op: 'exit', name: t.name, pid: t.pid });
  if (wasCurrent) tasks.emit({ type: 'switch', fromPid: t.pid, toPid: 0 });
}
