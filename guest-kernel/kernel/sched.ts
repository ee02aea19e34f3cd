/**
 * The context-switch half of include/asm-i386/mmu_context.h: switch_mm loads
 * the next mm's pgd into CR3 through the backend (natively a MOV CR3 that
 * flushes the non-global TLB entries and, under PAE, reloads the PDPTE
 * registers; under Xen MMUEXT_NEW_BASEPTR), and activate_mm is the exec-time
 * variant that first tells the backend about the new mm (Xen pins it).
 * leave_mm switches to init_mm's swapper_pg_dir (what an idle CPU runs on).
 */
import type { KState, MmStruct, Task } from '../kstate.js';
import type { TaskList } from './tasks.js';

/** switch_mm(prev, next) */
export function switch_mm(k: KState, prev: MmStruct, next: MmStruct): void {
  if (prev === next) return;
  k.ops.write_cr3(next.pgd); // load_cr3(next->pgd)
  k.active_mm = next;
}

/** activate_mm(prev, next): paravirt activate_mm, then switch_mm. */
export function activate_mm(k: KState, prev: MmStruct, next: MmStruct): void {
  k.ops.activate_mm(prev === k.init_mm ? null : prev, next);
  switch_mm(k, prev, next);
}

/** leave_mm: run on init_mm (swapper_pg_dir). */
export function leave_mm(k: KState): void {
  switch_mm(k, k.active_mm, k.init_mm);
}

/** schedule() → context_switch to task `t`: switch_mm to its mm, `current` = t. */
export function context_switch(k: KState, tasks: TaskList, t: Task): void {
  const from = tasks.currentPid;
  k.work.path('schedule');
  switch_mm(k, k.active_mm, t.mm);
  tasks.current = t;
  if (from !== t.pid) tasks.emit({ type: 'switch', fromPid: from, toPid: t.pid });
}

/** schedule() to the idle task: leave_mm (init_mm's swapper_pg_dir), no `current`. */
export function switch_to_idle(k: KState, tasks: TaskList): void {
  const from = tasks.currentPid;
  k.work.path('schedule');
  leave_mm(k);
  tasks.current = null;
  if (from !== 0) tasks.emit({ type: 'switch', fromPid: from, toPid: 0 });
}

/** Make `t` the running task with its mm loaded (before it touches user memory). */
export function ensure_current(k: KState, tasks: TaskList, t: Task): void {
  if (tasks.current !== t || k.active_mm !== t.mm) {
    const from = tasks.currentPid;
    k.work.path('schedule');
    switch_mm(k, k.active_mm, t.mm);
    tasks.current = t;
    tasks.emit({ type: 'switch', fromPid: from, toPid: t.pid });
  }
}
