/**
 * fs/exec.c's exec_mmap: a fresh mm (mm_alloc: new pgd) replaces the old
 * one; activate_mm makes it current (under Xen: pinned, then the new base
 * pointer); the old mm is put. If the new mm cannot be allocated the exec
 * fails with -ENOMEM and the process keeps its old mm.
 */
import type { KState, Task } from '../kstate.js';
import type { PgtableImpl } from '../mm/pgtable-common.js';
import { ENOMEM } from '../mm/mmap.js';
import { mmput } from './exit.js';
import { mm_alloc } from './fork.js';
import { activate_mm } from './sched.js';
import type { TaskList } from './tasks.js';

export function exec_mmap(k: KState, impl: PgtableImpl, tsk: Task): number {
  const mm = mm_alloc(k, impl, tsk.name);
  if (mm === null) return -ENOMEM;
  const old = tsk.mm;
  tsk.mm = mm;
  activate_mm(k, k.active_mm, mm);
  mmput(k, impl, old);
  return 0;
}

/**
 * do_execve for NAME: exec_mmap (a fresh mm; the old one torn down); the
 * process becomes current. 0 or -ENOMEM (the process keeps its old mm).
 */
export function do_execve(k: KState, impl: PgtableImpl, tasks: TaskList, name: string): number {
  const t = tasks.get(name);
  const from = tasks.currentPid;
  k.work.path('exec'); // open, binfmt, the new mm's setup apart from the page tables
  const r = exec_mmap(k, impl, t);
  if (r === 0) {
    tasks.current = t;
    tasks.emit({ type: 'process', op: 'exec', name, pid: t.pid });
    if (from !== t.pid) tasks.emit({ type: 'switch', fromPid: from, toPid: t.pid });
  }
  return r;
}
