/**
 * arch/i386/kernel/entry.S `system_call`: a system call enters the kernel by
 * int $0x80 and leaves by iret. `system_call(k, fn)` charges the entry and
 * exit through the paravirt interface (ParavirtOps.syscall: natively the
 * gate and iret; under Xen the trap table's direct entry and the iret
 * hypercall) and the entry path's kernel footprint, then runs the handler.
 * The Kernel facade's system-call-like methods (fork, execve, exit, mmap,
 * munmap, getppid) go through it.
 */
import type { KState } from '../kstate.js';

export function system_call<T>(k: KState, handler: () => T): T {
  k.work.syscall();
  return handler();
}
