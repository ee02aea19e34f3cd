/**
 * The paravirt interface: the only way the guest kernel reaches page tables,
 * control registers, the TLB and the processor's memory accesses. Shaped
 * after the MMU part of Linux 2.6.22's `struct paravirt_ops`
 * (include/asm-i386/paravirt.h); names are the kernel's. Two additions
 * follow 2.6.23 (the first kernel with the Xen port): alloc_pt takes the mm,
 * and an access may end in #GP as well as #PF.
 *
 * Address spaces (see types.ts):
 *  - the guest works in pseudo-physical terms: `Pfn`, `GuestPhys` (pfn << 12
 *    plus offset). Native: pfn == machine frame. Xen: a p2m table maps them.
 *  - page-table entries stored in memory hold MACHINE frames. The guest builds
 *    an entry in pseudo-physical form and converts it with make_pte/make_pmd/
 *    make_pgd before storing it; it reads one back with pte_val/pmd_val/pgd_val.
 *  - entry values are `bigint` everywhere (64-bit under PAE, 32-bit otherwise).
 *
 * A page-table entry is addressed by the guest-physical address of the entry
 * (`ptep`, `pmdp`, `pgdp`); the backend converts to machine addresses.
 *
 * Failures the guest cannot handle (Xen refusing an update, as Linux's Xen
 * port would BUG on) are thrown as `HypervisorRefusal`.
 */
import type { KernelFigure } from '../emulator/cost-model.js';
import type { AccessKind } from '../emulator/paging-bits.js';
import type { GuestPhys, Pfn, PteVal, VirtAddr } from './types.js';
import type { BackendStats } from './stats.js';

export type { KernelFigure } from '../emulator/cost-model.js';

/** Cost components the guest kernel's own work is charged to (see emulator/cost-model.ts COST_COMPONENTS). */
export type KernelWorkComponent = 'kernel' | 'page_copy';

/** Lazy modes of 2.6.22 (`enum paravirt_lazy_mode`). */
export type LazyMode = 'none' | 'mmu' | 'cpu';

/** The guest's mm, as far as the backend needs to know it (pinning, accounting). */
export interface MmHandle {
  /** Guest-physical address of the mm's pgd. */
  readonly pgd: GuestPhys;
}

/** Boot-time configuration the backend sets the machine up for. */
export interface MachineConfig {
  pae: boolean;
  /** Guest (pseudo-physical) memory size in bytes. */
  memBytes: number;
  /** CPU preset name (emulator cost model). */
  cpu: string;
  /** PAGE_OFFSET of the guest (0xC0000000, 0x80000000, 0x40000000). */
  pageOffset: number;
  /** Seed for anything randomised (Xen p2m shuffle). */
  seed?: number;
}

/** Guest-physical memory as the guest kernel sees it through its direct map. */
export interface GuestMemory {
  /** Number of guest frames (pfns 0..nrPages-1). */
  readonly nrPages: number;
  read32(addr: GuestPhys): number;
  write32(addr: GuestPhys, value: number): void;
  /** An entry-sized load: 64 bits under PAE callers, low 32 otherwise. */
  read64(addr: GuestPhys): bigint;
  write64(addr: GuestPhys, value: bigint): void;
  zeroPage(pfn: Pfn): void;
  copyPage(dst: Pfn, src: Pfn): void;
  /**
   * memcpy of `bytes` (a multiple of 4): exactly what 32-bit loads and stores
   * in ascending order would do (a store into a page table traps, or is
   * refused, as write32's would), only faster. Optional, added for speed: the
   * guest kernel falls back to read32/write32 without it; the backends copy a
   * destination frame that is not a page table in bulk.
   */
  copy32?(dst: GuestPhys, src: GuestPhys, bytes: number): void;
  /** memset of `bytes` (a multiple of 4) with a 32-bit `value`: as 32-bit stores in ascending order. Optional, like copy32. */
  fill32?(addr: GuestPhys, bytes: number, value: number): void;
  /**
   * out[i] = read32(addr + 4 * i) for i < words: a bulk read (the fork/exit
   * pte loops read a pte page's range with it). Optional, like copy32; no
   * side effect and no cost, as read32 has none.
   */
  read32s?(addr: GuestPhys, out: Uint32Array, words: number): void;
}

/**
 * Result of a processor access made on behalf of the guest (user process or
 * kernel): the guest-physical address reached, a page fault (#PF, with its
 * error code and CR2), or a general-protection fault (#GP(0): under Xen an
 * access beyond the guest's segment limit, i.e. into the hypervisor hole;
 * the guest handles it as do_general_protection does).
 */
export type AccessResult =
  | { ok: true; /** guest-physical address reached */ gpa: GuestPhys }
  | { ok: false; fault?: 'PF'; /** #PF error code */ errorCode: number; /** CR2 */ cr2: VirtAddr }
  | { ok: false; fault: 'GP'; /** #GP error code (0: not a selector fault) */ errorCode: number; /** a #GP leaves CR2 alone */ cr2?: undefined };

export interface ParavirtOps {
  // ---- identity (paravirt_ops fields) ----
  /** "bare hardware" or "xen". */
  readonly name: string;
  readonly paravirtEnabled: boolean;
  /** Ring the guest kernel runs in: 0 native, 1 under Xen (x86_32). */
  readonly kernelRpl: number;
  /** The seed patch's property: may all pgds share the kernel pmd? */
  readonly sharedKernelPmd: boolean;
  /** Bytes at the top of the address space the hypervisor keeps (reserve_top_address). */
  readonly reservedTop: number;
  /** Whether the guest may map its direct map with large pages (PSE in a pmd/pde). */
  readonly largePagesAllowed: boolean;
  /**
   * Whether the guest may set _PAGE_GLOBAL (PTE_G) in its entries. Optional
   * (added for the Xen backend): absent means allowed. Xen 3.1 refuses G in
   * PV guest entries ("Bad L1 flags") and hides PGE from the guest's CPUID,
   * so a Linux guest on Xen maps its kernel without G.
   */
  readonly globalPagesAllowed?: boolean;
  readonly config: MachineConfig;

  /** Guest-physical memory (the kernel's direct map of its own pages). */
  readonly mem: GuestMemory;
  /** Counters and cycles of the backend and the machine under it. */
  readonly stats: BackendStats;

  // ---- control registers and TLB ----
  read_cr2(): VirtAddr;
  /** Guest-physical address of the current pgd. */
  read_cr3(): GuestPhys;
  /** Load a new pgd (guest-physical address). Xen: MMUEXT_NEW_BASEPTR. */
  write_cr3(pgd: GuestPhys): void;
  flush_tlb_user(): void;
  flush_tlb_kernel(): void;
  flush_tlb_single(va: VirtAddr): void;

  // ---- page-table page lifecycle ----
  /**
   * A page is about to become a page table (pte page) of `mm` (2.6.23's
   * alloc_pt(mm, pfn); the mm is optional here, absent meaning init_mm:
   * 2.6.22's hook had no mm, Xen's port needs it to know whether the mm is
   * pinned).
   */
  alloc_pt(pfn: Pfn, mm?: MmHandle): void;
  /** A page is about to become a pmd (PAE) / page directory (2-level). */
  alloc_pd(pfn: Pfn): void;
  /** 2-level: a new pgd whose kernel part was cloned from `clonePfn`. */
  alloc_pd_clone(pfn: Pfn, clonePfn: Pfn, start: number, count: number): void;
  release_pt(pfn: Pfn): void;
  release_pd(pfn: Pfn): void;

  // ---- entry updates (ptep etc. are guest-physical addresses of the entry) ----
  set_pte(ptep: GuestPhys, pte: PteVal): void;
  set_pte_at(mm: MmHandle, va: VirtAddr, ptep: GuestPhys, pte: PteVal): void;
  set_pte_atomic(ptep: GuestPhys, pte: PteVal): void;
  set_pte_present(mm: MmHandle, va: VirtAddr, ptep: GuestPhys, pte: PteVal): void;
  /**
   * Optional host-side shortcut, no guest-visible or modelled difference:
   * set_pte_at(mm, va, ptep, lo | hi << 32) with the entry given as its two
   * 32-bit words (hi 0 on 2-level), without building a BigInt. The fork pte
   * copy uses it when present.
   */
  set_pte_at_words?(mm: MmHandle, va: VirtAddr, ptep: GuestPhys, lo: number, hi: number): void;
  set_pmd(pmdp: GuestPhys, pmd: PteVal): void;
  /** PAE: set a pgd entry (there is no set_pgd op). */
  set_pud(pudp: GuestPhys, pud: PteVal): void;
  pte_clear(mm: MmHandle, va: VirtAddr, ptep: GuestPhys): void;
  pmd_clear(pmdp: GuestPhys): void;
  /** Hardware may have changed A/D in the entry; Xen/VMI hook. */
  pte_update(mm: MmHandle, va: VirtAddr, ptep: GuestPhys): void;
  pte_update_defer(mm: MmHandle, va: VirtAddr, ptep: GuestPhys): void;

  // ---- entry value conversion (pfn form <-> machine form) ----
  make_pte(v: PteVal): PteVal;
  pte_val(v: PteVal): PteVal;
  /**
   * Optional host-side shortcut, no guest-visible or modelled difference:
   * the page frame (bits 35:12) of pte_val of the entry whose raw words are
   * `lo`/`hi` (hi 0 on 2-level), i.e. entryPfn(pte_val(lo | hi << 32))
   * without building BigInt values. The fork/exit pte loops use it when
   * present; it must charge nothing (pte_val charges nothing).
   */
  pte_val_pfn?(lo: number, hi: number): number;
  make_pmd(v: PteVal): PteVal;
  pmd_val(v: PteVal): PteVal;
  make_pgd(v: PteVal): PteVal;
  pgd_val(v: PteVal): PteVal;

  // ---- mm lifecycle hooks ----
  pagetable_setup_start(base: GuestPhys): void;
  pagetable_setup_done(base: GuestPhys): void;
  activate_mm(prev: MmHandle | null, next: MmHandle): void;
  dup_mmap(oldmm: MmHandle, mm: MmHandle): void;
  exit_mmap(mm: MmHandle): void;

  // ---- lazy MMU mode ----
  set_lazy_mode(mode: LazyMode): void;
  /** Issue what lazy mode has batched so far (PARAVIRT_LAZY_FLUSH). */
  lazy_flush(): void;

  // ---- the kernel's own work (cost accounting; guest-kernel/kernel/work.ts) ----
  /**
   * The processor's cycle figure for a piece of the kernel's own work (the
   * CPU preset's table in emulator/cost-model.ts, with its source). The
   * guest kernel's per-path table says which figure each path costs.
   */
  cpu_figure(name: KernelFigure): number;
  /** The processor executes `cycles` of the guest kernel's own work, charged to `component`. */
  kernel_work(cycles: number, component: KernelWorkComponent): void;
  /**
   * Enter the kernel by int $0x80 and leave it again (a system call's entry
   * and exit; the handler's work is charged by the kernel). Native: the
   * gate and iret (preset `syscall`). Xen (Linux 2.6.23, 32-bit): the trap
   * table sends int $0x80 straight to the guest kernel, and the return is
   * the iret hypercall (enlighten.c: .iret = hypercall_page[__HYPERVISOR_iret]).
   */
  syscall(): void;

  // ---- the processor running guest code ----
  /** One access at `va`; user = CPL 3. A fault is delivered to the guest (Xen: bounced). */
  access(va: VirtAddr, kind: AccessKind, user: boolean): AccessResult;
  /** Side-effect-free translation for the guest's invariant checker and traces. */
  probe(va: VirtAddr, kind: AccessKind, user: boolean): AccessResult;
}
