/**
 * The guest kernel's boot and its small API (what the workload interpreter
 * drives): processes, fork/exec/exit, context switches, mmap/munmap, user
 * loads and stores, vmalloc/vfree and kernel accesses to vmalloc areas,
 * change_page_attr, plus the state the checks need.
 *
 * The kernel reaches the machine only through the ParavirtOps instance given
 * at boot. A process's memory access is `ops.access(va, kind, user)`; on a
 * #PF the kernel's do_page_fault runs and the access is retried (a bounded
 * number of times: a fault that persists after being handled is a BUG for the
 * kernel, a SIGSEGV for a user access).
 *
 * Boot order (start_kernel): the page allocator over the guest's frames
 * (kernel image and low 1 MiB reserved), paging_init (swapper_pg_dir, direct
 * map, fixmap, pkmap; CR3), the kmalloc caches, pgtable_cache_init (pmd and
 * pgd caches, SHARED_KERNEL_PMD from the backend), mm_struct and
 * vm_area_struct caches.
 */
import { ACCESS_READ, ACCESS_WRITE, type AccessKind } from '../emulator/paging-bits.js';
import type { ParavirtOps } from '../hypervisor/paravirt-ops.js';
import { checkInvariants } from './invariants.js';
import { exec_mmap } from './kernel/exec.js';
import { mmput } from './kernel/exit.js';
import { dup_mm, mm_alloc } from './kernel/fork.js';
import { activate_mm, leave_mm, switch_mm } from './kernel/sched.js';
import {
  InvariantViolation,
  KState,
  type HookFn,
  type HookPoint,
  type KernelStats,
  type MmStruct,
  type Task,
  type Variant,
} from './kstate.js';
import {
  KERNEL_IMAGE_PAGES,
  KERNEL_TEXT_START_PFN,
  PAGE_OFFSET_BY_SPLIT,
  computeLayout,
  hex,
  type Layout,
  type Split,
} from './layout.js';
import { do_page_fault } from './mm/fault.js';
import { paging_init } from './mm/init.js';
import { EINVAL, ENOMEM, check_range, do_mmap, do_munmap, type Prot } from './mm/mmap.js';
import { PageAllocator } from './mm/page-alloc.js';
import { change_page_attr, cpaProt, global_flush_tlb, type CpaMode } from './mm/pageattr.js';
import type { PgtableImpl } from './mm/pgtable-common.js';
import { pgdListEntries } from './mm/pgtable-common.js';
import { protections } from './mm/pgtable-defs.js';
import { pgtableFor, pgtable_cache_init } from './mm/pgtable.js';
import { SlabAllocator } from './mm/slab.js';
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

/** What the kernel reports to an attached event sink (traces): cheap when none is attached. */
export type KernelEvent =
  | {
      type: 'fault';
      /** How do_page_fault resolved it. */
      kind: 'user' | 'cow' | 'vmalloc' | 'spurious' | 'segv' | 'oom';
      va: number;
      errorCode: number;
      user: boolean;
      /** The faulting process, 0 for a kernel access on init_mm. */
      pid: number;
    }
  | { type: 'switch'; fromPid: number; toPid: number }
  | { type: 'process'; op: 'create' | 'fork' | 'exec' | 'exit'; name: string; pid: number };

export type KernelEventSink = (e: KernelEvent) => void;

/** Retries of one access after a handled fault (demand page, then COW, then give up). */
const MAX_USER_FAULTS = 4;
const MAX_KERNEL_FAULTS = 3;
/** Frames kept at boot: the low 1 MiB and the kernel image. */
const BOOT_RESERVED_PFNS = KERNEL_TEXT_START_PFN + KERNEL_IMAGE_PAGES;

export function bootKernel(cfg: BootConfig): Kernel {
  return new Kernel(cfg);
}

function splitFromPageOffset(pageOffset: number): Split {
  for (const s of Object.keys(PAGE_OFFSET_BY_SPLIT) as Split[]) if (PAGE_OFFSET_BY_SPLIT[s] === pageOffset >>> 0) return s;
  throw new RangeError(`backend config pageOffset ${hex(pageOffset)} is not a VMSPLIT (3G/2G/1G)`);
}

export class Kernel {
  /** The kernel's globals (for the invariant checker, tools and tests). */
  readonly k: KState;
  readonly L: Layout;
  readonly ops: ParavirtOps;
  readonly variant: Variant;
  private readonly impl: PgtableImpl;
  private readonly tasks = new Map<string, Task>();
  private current: Task | null = null;
  private nextPid = 1;
  checkEachOp: boolean;
  private sink: KernelEventSink | null = null;

  constructor(cfg: BootConfig) {
    const ops = cfg.ops;
    this.ops = ops;
    const pae = ops.config.pae;
    if (cfg.pae !== undefined && cfg.pae !== pae) throw new RangeError(`boot: pae=${cfg.pae} but the backend was set up with pae=${pae}`);
    const memBytes = ops.mem.nrPages * 4096;
    if (cfg.memBytes !== undefined && cfg.memBytes !== memBytes) {
      throw new RangeError(`boot: memBytes ${cfg.memBytes} but the backend has ${memBytes}`);
    }
    const split = cfg.split ?? splitFromPageOffset(ops.config.pageOffset);
    if (PAGE_OFFSET_BY_SPLIT[split] !== ops.config.pageOffset >>> 0) {
      throw new RangeError(`boot: split ${split} but the backend was set up with pageOffset ${hex(ops.config.pageOffset)}`);
    }
    this.variant = cfg.variant ?? 'patched';
    this.checkEachOp = cfg.checkEachOp ?? false;
    const L = computeLayout({ pae, split, memBytes, reservedTop: ops.reservedTop });
    this.L = L;
    if (L.max_low_pfn < BOOT_RESERVED_PFNS + 1024) {
      throw new RangeError(`boot: ${memBytes} bytes of lowmem is too little (need at least ${(BOOT_RESERVED_PFNS + 1024) * 4} KiB)`);
    }
    const pages = new PageAllocator(ops.mem, L.max_pfn, L.max_low_pfn);
    pages.freeBootmem(0, L.max_pfn, (pfn) => pfn < BOOT_RESERVED_PFNS);
    const slab = new SlabAllocator(pages, ops.mem);
    const k = new KState(ops, L, this.variant, pages, slab, protections(pae, ops.globalPagesAllowed !== false));
    this.k = k;
    this.impl = pgtableFor(this.variant);

    paging_init(k);
    const init_mm: MmStruct = { pgd: k.swapper_pg_dir, vmas: [], obj: 0, rss: 0, owner: 'init_mm', id: 0 };
    k.init_mm = init_mm;
    k.active_mm = init_mm;
    pgtable_cache_init(k, this.impl);
    k.mm_cachep = slab.kmem_cache_create('mm_struct', 416, 32, null, null);
    k.vm_area_cachep = slab.kmem_cache_create('vm_area_struct', 84, 4, null, null);
    this.after();
  }

  // ---- processes ----

  /** A new process with a fresh, empty mm (like init's first exec); it becomes current. 0 or -ENOMEM. */
  createProcess(name: string): number {
    this.checkNewName(name);
    const mm = mm_alloc(this.k, this.impl, name);
    if (mm === null) return this.after(-ENOMEM);
    const t: Task = { name, pid: this.nextPid++, mm };
    this.tasks.set(name, t);
    const from = this.current?.pid ?? 0;
    activate_mm(this.k, this.k.active_mm, mm);
    this.current = t;
    this.emit({ type: 'process', op: 'create', name, pid: t.pid });
    this.emit({ type: 'switch', fromPid: from, toPid: t.pid });
    return this.after(0);
  }

  /** fork: CHILD gets a copy of PARENT's mm (copy-on-write). 0 or -ENOMEM. */
  fork(parent: string, child: string): number {
    const p = this.task(parent);
    this.checkNewName(child);
    const mm = dup_mm(this.k, this.impl, p.mm, child);
    if (mm === null) return this.after(-ENOMEM);
    const pid = this.nextPid++;
    this.tasks.set(child, { name: child, pid, mm });
    this.emit({ type: 'process', op: 'fork', name: child, pid });
    return this.after(0);
  }

  /** exec: a fresh empty mm; the old one is torn down; the process becomes current. 0 or -ENOMEM. */
  exec(name: string): number {
    const t = this.task(name);
    const from = this.current?.pid ?? 0;
    const r = exec_mmap(this.k, this.impl, t);
    if (r === 0) {
      this.current = t;
      this.emit({ type: 'process', op: 'exec', name, pid: t.pid });
      if (from !== t.pid) this.emit({ type: 'switch', fromPid: from, toPid: t.pid });
    }
    return this.after(r);
  }

  /** exit: tear down the mm and forget the process. */
  exit(name: string): void {
    const t = this.task(name);
    this.kill(t);
    this.after();
  }

  /** Context switch to NAME (its pgd into CR3). */
  switchTo(name: string): void {
    const t = this.task(name);
    const from = this.current?.pid ?? 0;
    switch_mm(this.k, this.k.active_mm, t.mm);
    this.current = t;
    if (from !== t.pid) this.emit({ type: 'switch', fromPid: from, toPid: t.pid });
    this.after();
  }

  /** Switch to init_mm (the idle task's swapper_pg_dir). */
  switchToIdle(): void {
    const from = this.current?.pid ?? 0;
    leave_mm(this.k);
    this.current = null;
    if (from !== 0) this.emit({ type: 'switch', fromPid: from, toPid: 0 });
    this.after();
  }

  // ---- mappings ----

  mmap(name: string, addr: number, len: number, prot: Prot): number {
    const t = this.task(name);
    return this.after(do_mmap(this.k, t.mm, addr, len, prot));
  }

  munmap(name: string, addr: number, len: number): number {
    const t = this.task(name);
    return this.after(do_munmap(this.k, t.mm, addr, len));
  }

  /** Is [addr, addr+len) a valid mmap range for this configuration? */
  validRange(addr: number, len: number): boolean {
    return check_range(this.k, addr, len);
  }

  // ---- user accesses ----

  userRead32(name: string, addr: number): UserLoad {
    const t = this.task(name);
    const r = this.userAccess(t, addr, ACCESS_READ, 4);
    return this.after(typeof r === 'number' ? this.ops.mem.read32(r) : r);
  }

  userWrite32(name: string, addr: number, value: number): UserStore {
    const t = this.task(name);
    const r = this.userAccess(t, addr, ACCESS_WRITE, 4);
    if (typeof r === 'number') this.ops.mem.write32(r, value >>> 0);
    return this.after(typeof r === 'number' ? 'ok' : r);
  }

  /** A user access to every page of [addr, addr+len) (a write leaves the data unchanged). */
  touch(name: string, addr: number, len: number, kind: 'read' | 'write'): UserStore {
    const t = this.task(name);
    const start = addr - (addr % 4096);
    const acc = kind === 'write' ? ACCESS_WRITE : ACCESS_READ;
    for (let va = start; va < addr + len; va += 4096) {
      const r = this.userAccess(t, va, acc, 1);
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
    return this.after(this.ops.mem.read32(this.kernelAccess(va, ACCESS_READ)));
  }

  kernelWrite32(area: VmallocArea, offset: number, value: number): void {
    const va = this.areaVa(area, offset);
    this.ops.mem.write32(this.kernelAccess(va, ACCESS_WRITE), value >>> 0);
    this.after();
  }

  /** A kernel load at any kernel virtual address (direct map, vmalloc), in the current context. */
  kernelReadVa(va: number): number {
    return this.after(this.ops.mem.read32(this.kernelAccess(va >>> 0, ACCESS_READ)));
  }

  kernelWriteVa(va: number, value: number): void {
    this.ops.mem.write32(this.kernelAccess(va >>> 0, ACCESS_WRITE), value >>> 0);
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
    return [...this.tasks.keys()];
  }

  hasProcess(name: string): boolean {
    return this.tasks.has(name);
  }

  get currentProcess(): string | null {
    return this.current === null ? null : this.current.name;
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
    return this.task(name).pid;
  }

  /** The pid whose mm is loaded (0 when idle). */
  get currentPid(): number {
    return this.current === null ? 0 : this.current.pid;
  }

  /** Attach (or detach with null) a sink for faults, switches and process events. */
  setEventSink(sink: KernelEventSink | null): void {
    this.sink = sink;
  }

  /** The pgd (guest-physical) of a process. */
  pgdOf(name: string): number {
    return this.task(name).mm.pgd;
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
    return checkInvariants(this.k, this.tasksView());
  }

  assertInvariants(): void {
    const v = this.checkInvariants();
    if (v.length > 0) throw new InvariantViolation(v);
  }

  // ---- internals ----

  private tasksView(): { name: string; mm: MmStruct }[] {
    return [...this.tasks.values()];
  }

  private after<T>(v?: T): T {
    if (this.checkEachOp) this.assertInvariants();
    return v as T;
  }

  private task(name: string): Task {
    const t = this.tasks.get(name);
    if (t === undefined) throw new RangeError(`no process named ${name}`);
    return t;
  }

  private checkNewName(name: string): void {
    if (this.tasks.has(name)) throw new RangeError(`a process named ${name} already exists`);
  }

  private ensureCurrent(t: Task): void {
    if (this.current !== t || this.k.active_mm !== t.mm) {
      const from = this.currentPid;
      switch_mm(this.k, this.k.active_mm, t.mm);
      this.current = t;
      this.emit({ type: 'switch', fromPid: from, toPid: t.pid });
    }
  }

  /** do_exit for a task: its mm is put, the task forgotten. */
  private kill(t: Task): void {
    const wasCurrent = this.current === t;
    if (wasCurrent) this.current = null;
    this.tasks.delete(t.name);
    mmput(this.k, this.impl, t.mm);
    this.emit({ type: 'process', op: 'exit', name: t.name, pid: t.pid });
    if (wasCurrent) this.emit({ type: 'switch', fromPid: t.pid, toPid: 0 });
  }

  private emit(e: KernelEvent): void {
    if (this.sink !== null) this.sink(e);
  }

  /** Which counter a handled fault moved (for the event sink). */
  private faultKind(before: number[], out: string): 'user' | 'cow' | 'vmalloc' | 'spurious' | 'segv' | 'oom' {
    if (out === 'segv' || out === 'oom') return out;
    const st = this.k.stats;
    if (st.faultsCow !== before[1]) return 'cow';
    if (st.faultsVmalloc !== before[2]) return 'vmalloc';
    if (st.faultsUser !== before[0]) return 'user';
    return 'spurious';
  }

  private faultCounters(): number[] {
    const st = this.k.stats;
    return [st.faultsUser, st.faultsCow, st.faultsVmalloc];
  }

  private userAccess(t: Task, va: number, kind: AccessKind, size: number): number | 'segv' | 'oom' {
    if (!Number.isInteger(va) || va < 0 || va > 0xffffffff || va % size !== 0) {
      throw new RangeError(`user access at ${String(va)}: not an aligned 32-bit address`);
    }
    this.ensureCurrent(t);
    for (let faults = 0; ; faults++) {
      const r = this.ops.access(va, kind, true);
      if (r.ok) return r.gpa;
      if (r.fault === 'GP') {
        // do_general_protection, user mode: SIGSEGV.
        this.k.stats.faultsSegv++;
        return 'segv';
      }
      if (faults >= MAX_USER_FAULTS) {
        this.k.BUG('do_page_fault', `user fault at ${hex(va)} (error code ${hex(r.errorCode)}) persists after ${faults} handled faults`);
      }
      const before = this.sink !== null ? this.faultCounters() : null;
      const out = do_page_fault(this.k, r.errorCode, t.mm);
      if (before !== null) {
        this.emit({ type: 'fault', kind: this.faultKind(before, out), va, errorCode: r.errorCode, user: true, pid: t.pid });
      }
      if (out === 'segv') return 'segv';
      if (out === 'oom') {
        // The fault could not allocate: the OOM path kills the process.
        this.k.stats.oomKills++;
        this.kill(t);
        return 'oom';
      }
    }
  }

  private kernelAccess(va: number, kind: AccessKind): number {
    for (let faults = 0; ; faults++) {
      const r = this.ops.access(va, kind, false);
      if (r.ok) return r.gpa;
      if (r.fault === 'GP') {
        // do_general_protection, kernel mode: no fixup, die("general protection fault").
        this.k.BUG('do_general_protection', `general protection fault: 0000 at ${hex(va)} (beyond the segment limit)`);
      }
      if (faults >= MAX_KERNEL_FAULTS) {
        this.k.BUG(
          'do_page_fault',
          `unable to handle kernel paging request at ${hex(va)}: the fault (error code ${hex(r.errorCode)}) repeats after ${faults} fixes`,
        );
      }
      const before = this.sink !== null ? this.faultCounters() : null;
      const out = do_page_fault(this.k, r.errorCode, null);
      if (before !== null) {
        this.emit({ type: 'fault', kind: this.faultKind(before, out), va, errorCode: r.errorCode, user: false, pid: this.currentPid });
      }
    }
  }

  private areaVa(area: VmallocArea, offset: number): number {
    const a = this.k.vmlist.find((x) => x.addr === area.addr);
    if (a === undefined) throw new RangeError(`no vmalloc area at ${hex(area.addr)}`);
    if (!Number.isInteger(offset) || offset < 0 || offset % 4 !== 0 || offset + 4 > a.size - 4096) {
      throw new RangeError(`offset ${offset} outside the vmalloc area (${a.size - 4096} bytes) or unaligned`);
    }
    return a.addr + offset;
  }
}
