/**
 * The guest kernel's small API (what the workload interpreter drives), a
 * facade over the kernel's files, split as Linux splits them:
 *  - init/main.ts: start_kernel (page allocator, paging_init, caches);
 *  - kernel/fork.ts, exec.ts, exit.ts, sched.ts: the task paths (do_fork,
 *    do_execve, do_exit, schedule/context_switch), kernel/tasks.ts the task
 *    list and `current`;
 *  - kernel/traps.ts: the fault path (a user or kernel access, #PF,
 *    do_page_fault, retry, SIGSEGV, the OOM kill);
 *  - mm/: the memory manager (mmap, memory, fault, vmalloc, pageattr, pgtable).
 *
 * The kernel reaches the machine only through the ParavirtOps instance given
 * at boot.
 */
import { ACCESS_READ, ACCESS_WRITE } from '../emulator/paging-bits.js';
import type { ParavirtOps } from '../hypervisor/paravirt-ops.js';
import { start_kernel } from './init/main.js';
import { checkInvariants, type IncrementalInvariantChecker } from './invariants.js';
import { system_call } from './kernel/entry.js';
import { do_execve } from './kernel/exec.js';
import { do_exit } from './kernel/exit.js';
import { create_process, do_fork } from './kernel/fork.js';
import { context_switch, ensure_current, switch_to_idle } from './kernel/sched.js';
import { TaskList, type KernelEventSink } from './kernel/tasks.js';
import { kernel_load32, kernel_store32, user_load32, user_store32 } from './kernel/misaligned.js';
import { user_access } from './kernel/traps.js';
import { InvariantViolation, type HookFn, type HookPoint, type KernelStats, type KState, type MmStruct, type Variant } from './kstate.js';
import { hex } from '../emulator/hex.js';
import type { Layout, Split } from './layout.js';
import { EINVAL, check_range, do_mmap, do_munmap, type Prot } from './mm/mmap.js';
import { change_page_attr, cpaProt, global_flush_tlb, type CpaMode } from './mm/pageattr.js';
import type { PgtableImpl } from './mm/pgtable-common.js';
import { pgdListEntries } from './mm/pgtable-common.js';
import { vfree, vmalloc, vmalloc_sync_all } from './mm/vmalloc.js';

export { KernelBug, InvariantViolation, HOOK_POINTS, VARIANTS, type Variant, type HookPoint } from './kstate.js';
export type { Split } from './layout.js';
export type { Prot } from './mm/mmap.js';
export type { CpaMode } from './mm/pageattr.js';
export { ENOMEM, EINVAL } from './mm/mmap.js';

export interface BootConfig {
  /** The backend, already created for the machine (its config gives PAE and memory size). */
  ops: ParavirtOps;
  /** VMSPLIT; default from ops.config.pageOffset. */
  split?: Split;
  /** pgtable.c variant; default 'patched'. */
  variant?: Variant;
  /** Check PAE / memory size against the backend's config (optional). */
  pae?: boolean;
  memBytes?: number;
  /** Run the invariant checker after every API operation (throws InvariantViolation). */
  checkEachOp?: boolean;
}

/** A vmalloc'd area as the API hands it out. */
export interface VmallocArea {
  readonly addr: number;
  /** Bytes usable (page aligned). */
  readonly size: number;
}

/** The outcome of a user access: the value (loads), 'ok' (stores, touches), 'segv', or 'oom' (the process was killed). */
export type UserLoad = number | 'segv' | 'oom';
export type UserStore = 'ok' | 'segv' | 'oom';

/** What a leak check compares before and after. */
export interface KernelSnapshot {
  framesUsed: number;
  framesFree: number;
  slabObjects: number;
  slabByCache: Record<string, number>;
  pgdList: number;
  mms: number;
  vmAreas: number;
}

export type { KernelEvent, KernelEventSink } from './kernel/tasks.js';

export function bootKernel(cfg: BootConfig): Kernel {
  return new Kernel(cfg);
}

export class Kernel {
  /** The kernel's globals (for the invariant checker, tools and tests). */
  readonly k: KState;
  readonly L: Layout;
  readonly ops: ParavirtOps;
  readonly variant: Variant;
  private readonly impl: PgtableImpl;
  private readonly tasks = new TaskList();
  checkEachOp: boolean;

  constructor(cfg: BootConfig) {
    this.ops = cfg.ops;
    this.variant = cfg.variant ?? 'patched';
    this.checkEachOp = cfg.checkEachOp ?? false;
    const { k, impl } = start_kernel({ ops: cfg.ops, split: cfg.split, variant: this.variant, pae: cfg.pae, memBytes: cfg.memBytes });
    this.k = k;
    this.L = k.L;
    this.impl = impl;
    this.after();
  }

  // ---- processes ----

  /** A new process with a fresh, empty mm (like init's first exec); it becomes current. 0 or -ENOMEM. */
  createProcess(name: string): number {
    return this.after(create_process(this.k, this.impl, this.tasks, name));
  }

  /** fork: CHILD gets a copy of PARENT's mm (copy-on-write). 0 or -ENOMEM. */
  fork(parent: string, child: string): number {
    return this.after(system_call(this.k, () => do_fork(this.k, this.impl, this.tasks, parent, child)));
  }

  /** exec: a fresh empty mm; the old one is torn down; the process becomes current. 0 or -ENOMEM. */
  exec(name: string): number {
    return this.after(system_call(this.k, () => do_execve(this.k, this.impl, this.tasks, name)));
  }

  /** exit: tear down the mm and forget the process. */
  exit(name: string): void {
    const t = this.tasks.get(name);
    system_call(this.k, () => do_exit(this.k, this.impl, this.tasks, t));
    this.after();
  }

  /** A null system call (getppid) by NAME, switched to first: int $0x80 in and out. */
  syscall(name: string): void {
    const t = this.tasks.get(name);
    ensure_current(this.k, this.tasks, t);
    system_call(this.k, () => t.pid);
    this.after();
  }

  /** Context switch to NAME (its pgd into CR3). */
  switchTo(name: string): void {
    context_switch(this.k, this.tasks, this.tasks.get(name));
    this.after();
  }

  /** Switch to init_mm (the idle task's swapper_pg_dir). */
  switchToIdle(): void {
    switch_to_idle(this.k, this.tasks);
    this.after();
  }

  // ---- mappings ----

  mmap(name: string, addr: number, len: number, prot: Prot): number {
    const t = this.tasks.get(name);
    return this.after(system_call(this.k, () => do_mmap(this.k, t.mm, addr, len, prot)));
  }

  munmap(name: string, addr: number, len: number): number {
    const t = this.tasks.get(name);
    return this.after(system_call(this.k, () => do_munmap(this.k, t.mm, addr, len)));
  }

  /** Is [addr, addr+len) a valid mmap range for this configuration? */
  validRange(addr: number, len: number): boolean {
    return check_range(this.k, addr, len);
  }

  // ---- user accesses ----

  userRead32(name: string, addr: number): UserLoad {
    const t = this.tasks.get(name);
    return this.after(user_load32(this.k, this.impl, this.tasks, t, addr));
  }

  userWrite32(name: string, addr: number, value: number): UserStore {
    const t = this.tasks.get(name);
    return this.after(user_store32(this.k, this.impl, this.tasks, t, addr, value));
  }

  /** A user access to every page of [addr, addr+len) (a write leaves the data unchanged). */
  touch(name: string, addr: number, len: number, kind: 'read' | 'write'): UserStore {
    const t = this.tasks.get(name);
    const start = addr - (addr % 4096);
    const acc = kind === 'write' ? ACCESS_WRITE : ACCESS_READ;
    for (let va = start; va < addr + len; va += 4096) {
      const r = user_access(this.k, this.impl, this.tasks, t, va, acc, 1);
      if (typeof r !== 'number') return this.after(r);
    }
    return this.after('ok');
  }

  // ---- kernel memory ----

  /** vmalloc: an area, or null when out of memory / address space. */
  vmalloc(len: number): VmallocArea | null {
    const a = vmalloc(this.k, len);
    return this.after(a === null ? null : { addr: a.addr, size: a.size - 4096 });
  }

  vfree(area: VmallocArea | number): void {
    vfree(this.k, typeof area === 'number' ? area : area.addr);
    this.after();
  }

  /** A kernel load from a vmalloc area, in the current context. */
  kernelRead32(area: VmallocArea, offset: number): number {
    const va = this.areaVa(area, offset);
    return this.after(kernel_load32(this.k, this.tasks, va));
  }

  kernelWrite32(area: VmallocArea, offset: number, value: number): void {
    const va = this.areaVa(area, offset);
    kernel_store32(this.k, this.tasks, va, value);
    this.after();
  }

  /** A kernel load at any kernel virtual address (direct map, vmalloc), in the current context. */
  kernelReadVa(va: number): number {
    return this.after(kernel_load32(this.k, this.tasks, va >>> 0));
  }

  kernelWriteVa(va: number, value: number): void {
    kernel_store32(this.k, this.tasks, va >>> 0, value);
    this.after();
  }
  /** vmalloc_sync_all() */
  vmallocSyncAll(): void {
    vmalloc_sync_all(this.k);
    this.after();
  }

  /** change_page_attr on the direct map of [phys, phys + pages*4096), then global_flush_tlb. 0, -EINVAL or -ENOMEM. */
  changePageAttr(phys: number, pages: number, mode: CpaMode): number {
    const pfn = phys / 4096;
    if (!Number.isInteger(pfn) || !Number.isInteger(pages) || pages <= 0 || pfn < 0 || pfn + pages > this.L.max_low_pfn) {
      return this.after(-EINVAL);
    }
    const r = change_page_attr(this.k, pfn, pages, cpaProt(this.k, mode));
    global_flush_tlb(this.k);
    return this.after(r);
  }

  /** Run `fn` in lazy MMU mode (arch_enter/leave_lazy_mmu_mode around it). */
  lazyMmu<T>(fn: () => T): T {
    this.k.enterLazyMmu();
    try {
      return fn();
    } finally {
      this.k.leaveLazyMmu();
    }
  }

  /** Run `fn` as an interrupt when execution reaches `point` (one shot). */
  setHook(point: HookPoint, fn: HookFn): void {
    this.k.setHook(point, fn);
  }

  // ---- fault injection ----

  /** Fail the k-th allocation from now (page or slab); null disarms. */
  failAt(k: number | null): void {
    this.k.pages.failAt(k);
  }

  /** Allocation attempts since boot. */
  get allocations(): number {
    return this.k.pages.allocations;
  }

  /** The failure injected by failAt, once it happened. */
  get injected(): { k: number; site: string } | null {
    return this.k.pages.lastInjected;
  }

  // ---- state ----

  get stats(): KernelStats {
    return this.k.stats;
  }

  get processes(): string[] {
    return this.tasks.names;
  }

  hasProcess(name: string): boolean {
    return this.tasks.has(name);
  }

  get currentProcess(): string | null {
    return this.tasks.current === null ? null : this.tasks.current.name;
  }

  /** pgds of live processes. */
  get pgdsAlive(): number {
    return this.k.mms.size;
  }

  get framesUsed(): number {
    return this.k.pages.used;
  }

  get framesFree(): number {
    return this.k.pages.free;
  }

  get framesTotal(): number {
    return this.k.pages.nrPages;
  }

  get pgdListLength(): number {
    return pgdListEntries(this.k).length;
  }

  /** The pid of a process (1, 2, ... in creation order; 0 is the idle task on init_mm). */
  pidOf(name: string): number {
    return this.tasks.get(name).pid;
  }

  /** The pid whose mm is loaded (0 when idle). */
  get currentPid(): number {
    return this.tasks.currentPid;
  }

  /** Attach (or detach with null) a sink for faults, switches and process events. */
  setEventSink(sink: KernelEventSink | null): void {
    this.tasks.sink = sink;
  }

  /** The pgd (guest-physical) of a process. */
  pgdOf(name: string): number {
    return this.tasks.get(name).mm.pgd;
  }

  /** Release every free slab page (kmem_cache_shrink on every cache). */
  shrinkCaches(): number {
    return this.k.slab.shrinkAll();
  }

  snapshot(): KernelSnapshot {
    return {
      framesUsed: this.framesUsed,
      framesFree: this.framesFree,
      slabObjects: this.k.slab.liveObjects,
      slabByCache: this.k.slab.liveByCache(),
      pgdList: this.pgdListLength,
      mms: this.k.mms.size,
      vmAreas: this.k.vmlist.length,
    };
  }

  /** Every invariant violation found (empty when the state is sound). */
  checkInvariants(): string[] {
    // The page allocator's recount and the leak scan per 64-frame chunk
    // written since the last check (the same findings as a scan of every
    // frame, which tests/guest-kernel/mm/page-alloc.test.ts compares): a
    // check then costs what changed, not the size of memory.
    return checkInvariants(this.k, this.tasksView(), undefined, true);
  }

  /** checkInvariants() through an incremental checker (the same findings; see IncrementalInvariantChecker). */
  checkInvariantsIncremental(checker: IncrementalInvariantChecker, frameChanged: (pfn: number) => boolean): string[] {
    return checker.check(this.k, this.tasksView(), frameChanged);
  }

  assertInvariants(): void {
    const v = this.checkInvariants();
    if (v.length > 0) throw new InvariantViolation(v);
  }

  // ---- internals ----

  private tasksView(): { name: string; mm: MmStruct }[] {
    return this.tasks.all;
  }

  private after<T>(v?: T): T {
    if (this.checkEachOp) this.assertInvariants();
    return v as T;
  }

  private areaVa(area: VmallocArea, offset: number): number {
    const a = this.k.vmlist.find((x) => x.addr === area.addr);
    if (a === undefined) throw new RangeError(`no vmalloc area at ${hex(area.addr)}`);
    if (!Number.isInteger(offset) || offset < 0 || offset + 4 > a.size - 4096) {
      throw new RangeError(`offset ${offset}: a 32-bit access there is not inside the vmalloc area (${a.size - 4096} bytes)`);
    }
    return a.addr + offset;
  }
}
