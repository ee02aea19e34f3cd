/**
 * The fault path of arch/i386/kernel/entry.S (`page_fault` → do_page_fault,
 * arch/i386/mm/fault.c) seen from the code that took the fault: a user or
 * kernel access is made on the processor; a #PF enters the kernel, which
 * resolves it (demand page, copy-on-write, vmalloc_fault) and returns to
 * retry the instruction, a bounded number of times (a fault that persists
 * after being handled is a BUG for the kernel, a SIGSEGV for a user access);
 * a user fault do_page_fault cannot resolve sends SIGSEGV
 * (force_sig_info_fault), and one that could not allocate kills the process
 * (the OOM path).
 */
import type { AccessKind } from '../../emulator/paging-bits.js';
import type { KState, Task } from '../kstate.js';
import { hex } from '../../emulator/hex.js';
import { do_page_fault } from '../mm/fault.js';
import type { PgtableImpl } from '../mm/pgtable-common.js';
import { do_exit } from './exit.js';
import { ensure_current } from './sched.js';
import type { TaskList } from './tasks.js';

/** Retries of one access after a handled fault (demand page, then COW, then give up). */
const MAX_USER_FAULTS = 4;
const MAX_KERNEL_FAULTS = 3;

type FaultKind = 'user' | 'cow' | 'vmalloc' | 'spurious' | 'segv' | 'oom';

/** Which counter a handled fault moved (for the event sink). */
function faultKind(k: KState, before: number[], out: string): FaultKind {
  if (out === 'segv' || out === 'oom') return out;
  const st = k.stats;
  if (st.faultsCow !== before[1]) return 'cow';
  if (st.faultsVmalloc !== before[2]) return 'vmalloc';
  if (st.faultsUser !== before[0]) return 'user';
  return 'spurious';
}

function faultCounters(k: KState): number[] {
  const st = k.stats;
  return [st.faultsUser, st.faultsCow, st.faultsVmalloc];
}

/**
 * A user access of `size` bytes at `va` by task `t` (switched to first):
 * the guest-physical address reached, 'segv' (SIGSEGV delivered) or 'oom'
 * (the process was killed).
 */
export function user_access(
  k: KState,
  impl: PgtableImpl,
  tasks: TaskList,
  t: Task,
  va: number,
  kind: AccessKind,
  size: number,
): number | 'segv' | 'oom' {
  if (!Number.isInteger(va) || va < 0 || va > 0xffffffff || va % size !== 0) {
    throw new RangeError(`user access at ${String(va)}: not an aligned 32-bit address`);
  }
  ensure_current(k, tasks, t);
  for (let faults = 0; ; faults++) {
    const r = k.ops.access(va, kind, true);
    if (r.ok) return r.gpa;
    if (r.fault === 'GP') {
      // do_general_protection, user mode: SIGSEGV (its frame, the handler, sigreturn).
      k.stats.faultsSegv++;
      k.work.path('signal');
      k.work.syscall();
      return 'segv';
    }
    if (faults >= MAX_USER_FAULTS) {
      k.BUG('do_page_fault', `user fault at ${hex(va)} (error code ${hex(r.errorCode)}) persists after ${faults} handled faults`);
    }
    const before = tasks.sink !== null ? faultCounters(k) : null;
    const out = do_page_fault(k, r.errorCode, t.mm);
    // handle_mm_fault's path for a fault it resolved; a bad access leaves do_page_fault early (bad_area).
    if (out !== 'segv') k.work.path('fault');
    if (before !== null) {
      tasks.emit({ type: 'fault', kind: faultKind(k, before, out), va, errorCode: r.errorCode, user: true, pid: t.pid });
    }
    if (out === 'segv') {
      // force_sig_info_fault: the frame, the handler, and sigreturn (a system call).
      k.work.path('signal');
      k.work.syscall();
      return 'segv';
    }
    if (out === 'oom') {
      // The fault could not allocate: the OOM path kills the process.
      k.stats.oomKills++;
      do_exit(k, impl, tasks, t);
      return 'oom';
    }
  }
}

/** A kernel access at `va` in the current context: the guest-physical address (a fault that cannot be fixed is a BUG). */
export function kernel_access(k: KState, tasks: TaskList, va: number, kind: AccessKind): number {
  for (let faults = 0; ; faults++) {
    const r = k.ops.access(va, kind, false);
    if (r.ok) return r.gpa;
    if (r.fault === 'GP') {
      // do_general_protection, kernel mode: no fixup, die("general protection fault").
      k.BUG('do_general_protection', `general protection fault: 0000 at ${hex(va)} (beyond the segment limit)`);
    }
    if (faults >= MAX_KERNEL_FAULTS) {
      k.BUG(
        'do_page_fault',
        `unable to handle kernel paging request at ${hex(va)}: the fault (error code ${hex(r.errorCode)}) repeats after ${faults} fixes`,
      );
    }
    const before = tasks.sink !== null ? faultCounters(k) : null;
    k.work.path('fault');
    const out = do_page_fault(k, r.errorCode, null);
    if (before !== null) {
      tasks.emit({ type: 'fault', kind: faultKind(k, before, out), va, errorCode: r.errorCode, user: false, pid: tasks.currentPid });
    }
  }
}
