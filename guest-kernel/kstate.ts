/**
 * The guest kernel's global state (what Linux keeps in globals: init_mm,
 * swapper_pg_dir, pgd_list, pgd_lock, the caches, vmlist) and the small
 * pieces of kernel infrastructure every mm file uses: BUG(), spinlocks with
 * interrupt masking, and the interrupt "hook points" that let a test run a
 * second kernel path at a named place inside another, deterministically.
 *
 * An interrupt hook registered for a point runs when execution reaches that
 * point with interrupts enabled; if interrupts are disabled there (inside
 * spin_lock_irqsave), it stays pending and runs at the spin_unlock_irqrestore
 * that re-enables them, as a real pending interrupt would.
 */
import type { GuestMemory, LazyMode, MmHandle, ParavirtOps } from '../hypervisor/paravirt-ops.js';
import { KernelBug, type GuestPhys } from '../hypervisor/types.js';
import type { KernelWork } from './kernel/work.js';
import type { Layout } from './layout.js';
import type { PageAllocator } from './mm/page-alloc.js';
import type { Protections } from './mm/pgtable-defs.js';
import type { KmemCache, SlabAllocator } from './mm/slab.js';

export type Variant = 'patched' | 'seed' | 'prepatch';
export const VARIANTS: readonly Variant[] = ['patched', 'seed', 'prepatch'];

/** A kernel BUG() or oops: the run stops. `where` names the kernel function. */
export { KernelBug };

/** An invariant of the kernel's state does not hold. */
export class InvariantViolation extends Error {
  constructor(readonly violations: string[]) {
    super(`invariant violated: ${violations.join('; ')}`);
    this.name = 'InvariantViolation';
  }
}

// ---- vm_area_struct flags (include/linux/mm.h) ----
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;

export interface Vma {
  start: number;
  end: number;
  flags: number;
  /** vm_page_prot */
  page_prot: bigint;
  /** Address of the vm_area_struct slab object. */
  obj: number;
}

export interface MmStruct extends MmHandle {
  pgd: GuestPhys;
  /** Sorted, non-overlapping. */
  vmas: Vma[];
  /** Address of the mm_struct slab object (0 for init_mm). */
  obj: number;
  /** Resident pages mapped by user ptes. */
  rss: number;
  /** For messages: the owning process, or "init_mm". */
  owner: string;
  id: number;
}

export interface Task {
  name: string;
  pid: number;
  mm: MmStruct;
}

export interface SpinLock {
  readonly name: string;
  held: boolean;
}

/** Fault and path counters (what `pvmmu boot` reports under pageFaults and guest). */
export interface KernelStats {
  /** User faults resolved by demand paging (do_anonymous_page). */
  faultsUser: number;
  /** Write faults resolved by copy-on-write (a copy or a reuse). */
  faultsCow: number;
  /** Kernel faults resolved by vmalloc_fault. */
  faultsVmalloc: number;
  /** SIGSEGVs delivered. */
  faultsSegv: number;
  /** Faults on an entry that was already fine (stale TLB). */
  faultsSpurious: number;
  /** Processes killed because a fault could not allocate. */
  oomKills: number;
  /** set_pmd calls made by vmalloc_sync_one (lazy fault or sync_all). */
  vmallocSyncSets: number;
  /** vmalloc_sync_all runs. */
  vmallocSyncAll: number;
  /** Large pages split / reverted by change_page_attr. */
  cpaSplits: number;
  cpaReverts: number;
}

export function newStats(): KernelStats {
  return {
    faultsUser: 0,
    faultsCow: 0,
    faultsVmalloc: 0,
    faultsSegv: 0,
    faultsSpurious: 0,
    oomKills: 0,
    vmallocSyncSets: 0,
    vmallocSyncAll: 0,
    cpaSplits: 0,
    cpaReverts: 0,
  };
}

/** A vmalloc'd area (struct vm_struct). */
export interface VmStruct {
  addr: number;
  /** Including the guard page. */
  size: number;
  pages: number[];
  /** kmalloc'd vm_struct and page array. */
  obj: number;
  pagesObj: number;
  pagesObjSize: number;
}

export type HookFn = () => void;

/** Named points where an interrupt hook can run (see raiseHook). */
export const HOOK_POINTS = [
  /** Inside pgd_alloc, after pgd_ctor and before the kernel pmds are populated. */
  'pgd_alloc:after-pgd_ctor',
  /** Inside pgd_alloc, a kernel pmd copied from swapper_pg_dir but not yet installed. */
  'pgd_alloc:before-set_pgd',
] as const;
export type HookPoint = (typeof HOOK_POINTS)[number];

export class KState {
  readonly mem: GuestMemory;
  readonly stats = newStats();
  /** Head of pgd_list: pfn of the first pgd page, -1 when empty. */
  pgd_list = -1;
  readonly pgd_lock: SpinLock = { name: 'pgd_lock', held: false };
  readonly cpa_lock: SpinLock = { name: 'cpa_lock', held: false };
  /** Interrupts disabled depth (local_irq_save nesting). */
  irqsOff = 0;
  private readonly hooks = new Map<string, HookFn>();
  private readonly pendingIrqs: HookFn[] = [];
  /** Hook points reached while a hook was registered, in order (for tests). */
  readonly hookLog: string[] = [];

  swapper_pg_dir = 0;
  empty_zero_page = 0;
  init_mm!: MmStruct;
  /** The mm whose pgd is in CR3 (init_mm when idle). */
  active_mm!: MmStruct;
  pgd_cache!: KmemCache;
  pmd_cache: KmemCache | null = null;
  mm_cachep!: KmemCache;
  vm_area_cachep!: KmemCache;
  SHARED_KERNEL_PMD = false;
  /** The kernel's own work: figures and charging (kernel/work.ts), set by start_kernel. */
  work!: KernelWork;
  /** Live mms (not init_mm), for the invariant checker. */
  readonly mms = new Set<MmStruct>();
  readonly vmlist: VmStruct[] = [];
  /** Pte pages freed by change_page_attr, freed at global_flush_tlb (df_list). */
  df_list: number[] = [];
  /** Lazy MMU nesting depth and the mode last given to the backend. */
  lazyDepth = 0;
  lazyMode: LazyMode = 'none';
  /**
   * pvmmu's guest debug check on the page-directory hooks (not in Linux):
   * which pfns were announced with paravirt_alloc_pd / _clone and not yet
   * released, and the releases of pfns never announced (the seed's
   * unbalanced release_pd). The backends need not notice (Xen's port makes
   * these hooks nops); the guest's invariant checker reports them.
   */
  pdAnnounced!: Uint8Array;
  readonly unbalancedReleasePd: number[] = [];
  /** seed/prepatch _vmalloc_sync_all statics: insync bitmap and start. */
  insync: Uint8Array;
  syncStart: number;
  private nextMmId = 1;

  constructor(
    readonly ops: ParavirtOps,
    readonly L: Layout,
    readonly variant: Variant,
    readonly pages: PageAllocator,
    readonly slab: SlabAllocator,
    readonly prot: Protections,
  ) {
    this.mem = ops.mem;
    this.insync = new Uint8Array(L.PTRS_PER_PGD);
    this.pdAnnounced = new Uint8Array(ops.mem.nrPages);
    this.syncStart = L.TASK_SIZE;
  }

  newMmId(): number {
    return this.nextMmId++;
  }

  /** UNSHARED_PTRS_PER_PGD (the seed's macro). */
  get UNSHARED_PTRS_PER_PGD(): number {
    return this.SHARED_KERNEL_PMD ? this.L.USER_PTRS_PER_PGD : this.L.PTRS_PER_PGD;
  }

  // ---- BUG ----

  BUG(where: string, message: string): never {
    throw new KernelBug(where, message);
  }

  BUG_ON(cond: boolean, where: string, message: string): void {
    if (cond) throw new KernelBug(where, message);
  }

  // ---- interrupts and spinlocks ----

  local_irq_save(): void {
    this.irqsOff++;
  }

  local_irq_restore(): void {
    if (this.irqsOff <= 0) throw new KernelBug('local_irq_restore', 'interrupts enabled twice');
    if (--this.irqsOff === 0) this.deliverPending();
  }

  spin_lock_irqsave(lock: SpinLock): void {
    // Uniprocessor: taking a held lock means this path interrupted its holder.
    if (lock.held) throw new KernelBug(`spin_lock(${lock.name})`, 'deadlock: lock already held on this CPU');
    this.local_irq_save();
    lock.held = true;
  }

  spin_unlock_irqrestore(lock: SpinLock): void {
    if (!lock.held) throw new KernelBug(`spin_unlock(${lock.name})`, 'unlocking a lock that is not held');
    lock.held = false;
    this.local_irq_restore();
  }

  /** Register a one-shot interrupt to run at a hook point. */
  setHook(point: HookPoint, fn: HookFn): void {
    this.hooks.set(point, fn);
  }

  clearHooks(): void {
    this.hooks.clear();
    this.pendingIrqs.length = 0;
  }

  /** Execution reached `point`: run (or leave pending) its interrupt. */
  raiseHook(point: HookPoint): void {
    const fn = this.hooks.get(point);
    if (fn === undefined) return;
    this.hooks.delete(point);
    this.hookLog.push(this.irqsOff > 0 ? `${point} (pending: interrupts off)` : point);
    if (this.irqsOff > 0) this.pendingIrqs.push(fn);
    else this.runIrq(fn);
  }

  private deliverPending(): void {
    while (this.pendingIrqs.length > 0 && this.irqsOff === 0) this.runIrq(this.pendingIrqs.shift()!);
  }

  private runIrq(fn: HookFn): void {
    // An interrupt handler runs with interrupts off (the hook's own locks nest inside).
    fn();
  }

  // ---- lazy MMU mode (arch_enter/leave_lazy_mmu_mode) ----

  enterLazyMmu(): void {
    if (this.lazyDepth++ === 0) {
      this.lazyMode = 'mmu';
      this.ops.set_lazy_mode('mmu');
    }
  }

  leaveLazyMmu(): void {
    if (this.lazyDepth <= 0) throw new KernelBug('arch_leave_lazy_mmu_mode', 'not in lazy MMU mode');
    if (--this.lazyDepth === 0) {
      this.lazyMode = 'none';
      this.ops.set_lazy_mode('none');
    }
  }
}
