/**
 * kernel/exit.c and kernel/fork.c's mmput/mmdrop: the last user of an mm
 * tears it down — exit_mmap (arch_exit_mmap, unmap every vma, free the user
 * page tables), then pgd_free and the mm_struct back to its slab.
 *
 * An exiting task's mm is still loaded while exit_mmap runs: 2.6.22's
 * exit_mm drops tsk->mm but keeps it as active_mm (enter_lazy_tlb, an
 * mm_count reference), mmput -> exit_mmap tears it down with CR3 still
 * pointing at it, and the CR3 write comes at the next switch_mm, in
 * schedule(); __mmdrop (pgd_free) runs after that, in finish_task_switch.
 * The model's next task is the idle task (init_mm, leave_mm). Natively the
 * zap's TLB flushes are then real CR3 reloads of the dying mm; Xen's
 * arch_exit_mmap (xen_exit_mmap) loads swapper_pg_dir itself first.
 */
import type { KState, MmStruct, Task } from '../kstate.js';
import { exit_mmap } from '../mm/mmap.js';
import type { PgtableImpl } from '../mm/pgtable-common.js';
import { leave_mm } from './sched.js';
import type { TaskList } from './tasks.js';

/** mmput: exit_mmap then mmdrop. */
export function mmput(k: KState, impl: PgtableImpl, mm: MmStruct): void {
  exit_mmap(k, mm);
  // schedule() away from the exiting task: switch_mm to the next one.
  if (k.active_mm === mm) leave_mm(k);
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
