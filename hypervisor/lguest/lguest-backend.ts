/**
 * The lguest backend (Linux 2.6.23): the guest side is
 * drivers/lguest/lguest.c (lguest_init's paravirt_ops; the file became
 * arch/x86/lguest/boot.c in 2.6.24), the host side drivers/lguest/
 * hypercalls.c (do_hcall, do_async_hcalls), page_tables.c (the shadow
 * tables, via the shared engine) and core.c (run_guest: hypercalls first,
 * then a #PF goes to demand_page, and only a fault it cannot fix is
 * reflected, with lguest_data.cr2 set).
 *
 * Guest side, as lguest_init sets it:
 *  - set_pte_at: store, then lazy_hcall(LHCALL_SET_PTE, __pa(mm->pgd), addr,
 *    pte_low); set_pmd: store, then lazy_hcall(LHCALL_SET_PMD, page of pmdp,
 *    index); set_pte: store, then (once a CR3 was loaded) lazy_hcall(
 *    LHCALL_FLUSH_TLB, 1): "FIXME: Eliminate all callers of this";
 *  - the ops lguest leaves native are the 2-level macros over those:
 *    set_pte_atomic = set_pte, set_pte_present / pte_clear = set_pte_at,
 *    pmd_clear = set_pmd of 0; alloc_pt/alloc_pd(_clone)/release_*,
 *    pte_update, activate_mm, dup_mmap, exit_mmap, pagetable_setup_*: no-ops;
 *  - write_cr3: lazy_hcall(LHCALL_NEW_PGTABLE, cr3), remembered in
 *    current_cr3 (read_cr3 returns it); read_cr2: lguest_data.cr2;
 *  - flush_tlb_single: lazy_hcall(LHCALL_SET_PTE, current_cr3, addr, 0) ("set
 *    it to zero, and it will fault back in"); flush_tlb_user / _kernel:
 *    lazy_hcall(LHCALL_FLUSH_TLB, 0 / 1);
 *  - lazy mode: lazy_hcall queues into the lguest_data.hcalls ring
 *    (async_hcall; a full ring makes the call synchronous, which empties it);
 *    leaving lazy mode or PARAVIRT_LAZY_FLUSH issues LHCALL_FLUSH_ASYNC;
 *  - lguest_cpuid hides PSE and PAE and shows PGE ("Host wants to know when we
 *    flush kernel pages"): no large pages, 2-level paging only, global pages
 *    allowed; kernel_rpl 1; reserve_top_address(lguest_data.reserve_mem),
 *    which the host sets to 4 MiB for the Switcher.
 *
 * Host side: every hypercall and every trap is a world switch through the
 * Switcher (lguest/costs.ts); the async ring is run first (do_async_hcalls),
 * then the call. LHCALL_NEW_PGTABLE: guest_new_pagetable (find_pgdir among
 * four cached shadows, or new_pgdir: a random slot, its user part flushed);
 * LHCALL_SET_PTE: guest_set_pte (kernel addresses in every shadow, user
 * addresses in the shadow of that pgd; do_set_pte installs the entry at once
 * when A or D is set); LHCALL_SET_PMD: guest_set_pmd (release_pgd of that
 * entry in the shadow of that pgd); LHCALL_FLUSH_TLB: guest_pagetable_
 * clear_all (1) or guest_pagetable_flush_user (0).
 *
 * Not modelled: the Switcher's own mapping at the top 4 MiB (reserved, never
 * touched by the guest), pin_stack_pages (the mini kernel has no stack pages
 * to pin), the Launcher's memory offset (guest frames are machine frames).
 * Deviation: a reflected fault carries the error code of the guest's own
 * tables; lguest passed the shadow's hardware error code through, which can
 * lack P for a protection fault the shadow had not mapped yet.
 */
import { rebindable } from '../../emulator/snapshot.js';
import { CC_FLUSH, CC_HYPERCALL, CC_KERNEL } from '../../emulator/cost-model.js';
import { hex } from '../../emulator/hex.js';
import type { Mmu } from '../../emulator/mmu.js';
import type { AccessKind } from '../../emulator/paging-bits.js';
import { chargeKernelWork, createMmu } from '../machine.js';
import { NativeGuestMemory } from '../native.js';
import type { AccessResult, GuestMemory, KernelFigure, KernelWorkComponent, LazyMode, MachineConfig, MmHandle, ParavirtOps } from '../paravirt-ops.js';
import { shadowCosts } from '../shadow/costs.js';
import { ShadowEngine } from '../shadow/engine.js';
import { ShadowStats } from '../shadow/stats.js';
import { HypervisorRefusal, pteLo, type GuestPhys, type Pfn, type PteVal, type VirtAddr } from '../types.js';
import { lguestCosts, type LguestCosts } from './costs.js';

const PAGE = 4096;
/** include/linux/lguest.h hypercall numbers (2.6.23). */
export const LHCALL_FLUSH_ASYNC = 0;
export const LHCALL_FLUSH_TLB = 5;
export const LHCALL_NEW_PGTABLE = 4;
export const LHCALL_SET_PTE = 14;
export const LHCALL_SET_PMD = 15;
const LHCALL_NAMES: Record<number, string> = {
  [LHCALL_FLUSH_ASYNC]: 'LHCALL_FLUSH_ASYNC',
  [LHCALL_FLUSH_TLB]: 'LHCALL_FLUSH_TLB',
  [LHCALL_NEW_PGTABLE]: 'LHCALL_NEW_PGTABLE',
  [LHCALL_SET_PTE]: 'LHCALL_SET_PTE',
  [LHCALL_SET_PMD]: 'LHCALL_SET_PMD',
};
/** include/linux/lguest.h: entries of the async hypercall ring. */
export const LHCALL_RING_SIZE = 64;
/** lguest_data.reserve_mem: the host keeps the top 4 MiB for the Switcher (page_table_guest_data_init). */
export const LGUEST_RESERVE_MEM = 4 << 20;
/** lg.h: struct pgdir pgdirs[4]. */
export const LGUEST_PGDIRS = 4;

/** Why lguest refuses a configuration (the tools turn this into an input error). */
export function lguestUnsupported(config: Pick<MachineConfig, 'pae'>): string | null {
  return config.pae
    ? 'lguest (Linux 2.6.23) runs 2-level paging only: lguest_cpuid hides PAE from the guest and the host builds 2-level shadow tables (page_tables.c); use --no-pae'
    : null;
}

interface HcallArgs {
  call: number;
  a1: number;
  a2: number;
  a3: number;
}

export class LguestBackend implements ParavirtOps {
  readonly name = 'lguest';
  readonly paravirtEnabled = true;
  readonly kernelRpl = 1;
  readonly sharedKernelPmd = true;
  readonly reservedTop = LGUEST_RESERVE_MEM;
  readonly largePagesAllowed = false;
  readonly globalPagesAllowed = true;
  readonly config: MachineConfig;
  readonly mmu: Mmu;
  readonly engine: ShadowEngine;
  readonly mem: GuestMemory;
  readonly stats: ShadowStats;
  readonly costs: LguestCosts;
  private lazyMode: LazyMode = 'none';
  /** The guest's current_cr3 (0 until the first write_cr3). */
  private currentCr3 = 0;
  /** lguest_data.cr2. */
  private cr2 = 0;
  /** lguest_data.hcalls: the async ring, in order. */
  private ring: HcallArgs[] = [];
  /** The host's kernel_address (lguest_data.kernel_address = PAGE_OFFSET). */
  private readonly pageOffset: number;

  constructor(config: MachineConfig) {
    const why = lguestUnsupported(config);
    if (why !== null) throw new RangeError(why);
    if (!(config.memBytes > 0) || config.memBytes % PAGE !== 0) {
      throw new RangeError(`memBytes ${config.memBytes} is not a positive multiple of the page size`);
    }
    this.config = { ...config };
    this.pageOffset = config.pageOffset >>> 0;
    this.mmu = createMmu(config);
    this.stats = new ShadowStats(this.mmu);
    this.costs = lguestCosts(this.mmu.preset.cycles);
    this.mem = new NativeGuestMemory(this.mmu, config.memBytes);
    this.engine = new ShadowEngine(this.mmu, this.config, shadowCosts(this.mmu.preset.cycles), {
      who: 'lguest',
      keepGlobal: false,
      largePages: false,
      strictPde: true,
      guestFeatures: { pse: false, pge: true, nx: false },
      maxShadows: LGUEST_PGDIRS,
      recycleKeepsKernel: true,
      victim: 'random',
      seed: config.seed ?? 1,
      count: rebindable(this.stats, 'count'),
    });
  }

  get lazy(): LazyMode {
    return this.lazyMode;
  }

  // ---- the host: world switches and hypercalls ----

  /** Out of the Guest through the Switcher (Host CR3 loaded): charged; then the async ring runs (do_async_hcalls). */
  private exitToHost(): void {
    this.mmu.charge(this.costs.hostCr3, CC_FLUSH);
    this.runRing();
  }

  /** Back into the Guest: the Switcher loads the shadow CR3 (a real CR3 write: the TLB is flushed). */
  private enterGuest(): void {
    this.engine.loadHardware();
  }

  private runRing(): void {
    if (this.ring.length === 0) return;
    const r = this.ring;
    this.ring = [];
    for (const h of r) this.doHcall(h);
  }

  /** hcall(): int $0x1f, a world switch, the ring, the call, back. */
  private hcall(call: number, a1: number, a2: number, a3: number): void {
    this.mmu.charge(this.costs.trap, CC_HYPERCALL);
    this.stats.count('hypercalls', LHCALL_NAMES[call] ?? `LHCALL_${call}`);
    this.exitToHost();
    this.doHcall({ call, a1, a2, a3 });
    if (this.mmu.cpu.paging || this.engine.active !== null) this.enterGuest();
  }

  /** lazy_hcall: now, or into the ring in lazy mode (async_hcall; a full ring makes it a real hcall). */
  private lazyHcall(call: number, a1: number, a2: number, a3: number): void {
    if (this.lazyMode === 'none') return this.hcall(call, a1, a2, a3);
    if (this.ring.length >= LHCALL_RING_SIZE) return this.hcall(call, a1, a2, a3);
    this.mmu.charge(this.costs.ringEntry, CC_HYPERCALL);
    this.stats.count('hypercalls', `${LHCALL_NAMES[call] ?? `LHCALL_${call}`} (async)`);
    this.ring.push({ call, a1, a2, a3 });
  }

  /** hypercalls.c do_hcall. */
  private doHcall(h: HcallArgs): void {
    const e = this.engine;
    switch (h.call) {
      case LHCALL_FLUSH_ASYNC:
        return;
      case LHCALL_FLUSH_TLB:
        // guest_pagetable_clear_all / guest_pagetable_flush_user
        if (h.a1 !== 0) e.dropAll();
        else if (e.active !== null) e.flushUser(e.active);
        return;
      case LHCALL_NEW_PGTABLE:
        e.switchTo(h.a1);
        return;
      case LHCALL_SET_PTE: {
        // guest_set_pte: kernel mappings in every shadow, user ones in that pgd's.
        const va = h.a2 >>> 0;
        if (va >= this.pageOffset) {
          for (const s of e.shadows()) e.setPteIn(s, va, h.a3 >>> 0, 0);
        } else {
          const s = e.find(h.a1);
          if (s !== undefined) e.setPteIn(s, va, h.a3 >>> 0, 0);
        }
        return;
      }
      case LHCALL_SET_PMD: {
        // guest_set_pmd: release_pgd of entry idx in the shadow of that pgd (not the Switcher's).
        if (h.a2 >= 1023) return;
        const s = e.find(h.a1);
        if (s !== undefined) e.dropPde(s, h.a2);
        return;
      }
      default:
        throw new HypervisorRefusal(`Bad hypercall ${h.call}`, 'lguest do_hcall');
    }
  }

  // ---- control registers and TLB ----
  read_cr2(): VirtAddr {
    return this.cr2;
  }
  read_cr3(): GuestPhys {
    return this.currentCr3;
  }
  write_cr3(pgd: GuestPhys): void {
    if (!Number.isInteger(pgd) || pgd < 0 || pgd >= this.mem.nrPages * PAGE || (pgd & 0xfff) !== 0) {
      throw new RangeError(`write_cr3: ${hex(Number(pgd))} is not a page of guest memory`);
    }
    this.lazyHcall(LHCALL_NEW_PGTABLE, pgd, 0, 0);
    this.currentCr3 = pgd;
  }
  flush_tlb_user(): void {
    this.lazyHcall(LHCALL_FLUSH_TLB, 0, 0, 0);
  }
  flush_tlb_kernel(): void {
    this.lazyHcall(LHCALL_FLUSH_TLB, 1, 0, 0);
  }
  flush_tlb_single(va: VirtAddr): void {
    this.lazyHcall(LHCALL_SET_PTE, this.currentCr3, va >>> 0, 0);
  }

  // ---- page-table page lifecycle: lguest does not hook these ----
  alloc_pt(_pfn: Pfn): void {}
  alloc_pd(_pfn: Pfn): void {}
  alloc_pd_clone(_pfn: Pfn, _clonePfn: Pfn, _start: number, _count: number): void {}
  release_pt(_pfn: Pfn): void {}
  release_pd(_pfn: Pfn): void {}

  // ---- entry updates ----
  private store(p: GuestPhys, v: PteVal, op: string): void {
    if ((p & 3) !== 0 || !Number.isInteger(p) || p < 0 || p + 4 > this.mem.nrPages * PAGE) {
      throw new RangeError(`${op}: entry address ${hex(Number(p))} is not an aligned entry in guest memory`);
    }
    if (v < 0n || v > 0xffffffffn) throw new RangeError(`${op}: value 0x${v.toString(16)} does not fit a 2-level entry`);
    this.mmu.charge(this.mmu.preset.cycles.pteStore, CC_KERNEL);
    this.mem.write32(p, pteLo(v));
  }

  /** lguest_set_pte. */
  set_pte(ptep: GuestPhys, pte: PteVal): void {
    this.store(ptep, pte, 'set_pte');
    if (this.currentCr3 !== 0) this.lazyHcall(LHCALL_FLUSH_TLB, 1, 0, 0);
  }
  /** lguest_set_pte_at. */
  set_pte_at(mm: MmHandle, va: VirtAddr, ptep: GuestPhys, pte: PteVal): void {
    this.store(ptep, pte, 'set_pte_at');
    this.lazyHcall(LHCALL_SET_PTE, mm.pgd, va >>> 0, pteLo(pte));
  }
  set_pte_atomic(ptep: GuestPhys, pte: PteVal): void {
    this.set_pte(ptep, pte);
  }
  set_pte_present(mm: MmHandle, va: VirtAddr, ptep: GuestPhys, pte: PteVal): void {
    this.set_pte_at(mm, va, ptep, pte);
  }
  /** lguest_set_pmd (2-level: a pgd entry). */
  set_pmd(pmdp: GuestPhys, pmd: PteVal): void {
    this.store(pmdp, pmd, 'set_pmd');
    this.lazyHcall(LHCALL_SET_PMD, pmdp - (pmdp % PAGE), (pmdp % PAGE) / 4, 0);
  }
  set_pud(_pudp: GuestPhys, _pud: PteVal): void {
    throw new Error('set_pud: lguest runs 2-level paging only');
  }
  pte_clear(mm: MmHandle, va: VirtAddr, ptep: GuestPhys): void {
    this.set_pte_at(mm, va, ptep, 0n);
  }
  pmd_clear(pmdp: GuestPhys): void {
    this.set_pmd(pmdp, 0n);
  }
  pte_update(_mm: MmHandle, _va: VirtAddr, _ptep: GuestPhys): void {}
  pte_update_defer(_mm: MmHandle, _va: VirtAddr, _ptep: GuestPhys): void {}

  // ---- entry values: guest frames ----
  make_pte(v: PteVal): PteVal {
    return v;
  }
  pte_val(v: PteVal): PteVal {
    return v;
  }
  make_pmd(v: PteVal): PteVal {
    return v;
  }
  pmd_val(v: PteVal): PteVal {
    return v;
  }
  make_pgd(v: PteVal): PteVal {
    return v;
  }
  pgd_val(v: PteVal): PteVal {
    return v;
  }

  // ---- mm lifecycle: not hooked ----
  pagetable_setup_start(_base: GuestPhys): void {}
  pagetable_setup_done(_base: GuestPhys): void {}
  activate_mm(_prev: MmHandle | null, _next: MmHandle): void {}
  dup_mmap(_oldmm: MmHandle, _mm: MmHandle): void {}
  exit_mmap(_mm: MmHandle): void {}

  // ---- lazy mode: lguest_lazy_mode ----
  set_lazy_mode(mode: LazyMode): void {
    this.lazyMode = mode;
    if (mode === 'none') this.hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0);
  }
  lazy_flush(): void {
    if (this.lazyMode !== 'none') this.hcall(LHCALL_FLUSH_ASYNC, 0, 0, 0);
  }

  // ---- the kernel's own work: the processor runs it as on bare hardware ----
  cpu_figure(name: KernelFigure): number {
    return this.mmu.preset.cycles[name];
  }
  kernel_work(cycles: number, component: KernelWorkComponent): void {
    chargeKernelWork(this.mmu, cycles, component);
  }
  /**
   * int $0x80 ... iret: native cost (preset syscall). lguest makes the system
   * call vector a direct trap into the Guest (interrupts_and_traps.c
   * direct_trap / copy_traps) and the Guest returns with its own iret
   * (lguest_iret in lguest_asm.S): no Host on either path.
   */
  syscall(): void {
    this.mmu.charge(this.mmu.preset.cycles.syscall, CC_KERNEL);
  }

  // ---- the processor ----

  /** One access; a #PF exits to the Host (run_guest: ring first, then demand_page), which fixes it or reflects it. */
  access(va: VirtAddr, kind: AccessKind, user: boolean): AccessResult {
    const acc = kind * 2 + (user ? 1 : 0);
    va >>>= 0;
    for (let tries = 0; tries < 4; tries++) {
      const r = this.mmu.translate(va, acc);
      if (r >= 0) return { ok: true, gpa: r };
      this.exitToHost();
      const code = this.engine.hiddenFault(va, acc);
      this.enterGuest();
      if (code >= 0) {
        this.cr2 = va;
        return { ok: false, errorCode: code, cr2: va };
      }
    }
    throw new Error(`lguest: the shadow for ${hex(va)} did not converge (host bug)`);
  }

  probe(va: VirtAddr, kind: AccessKind, user: boolean): AccessResult {
    const r = this.engine.vcpu.probePa(va >>> 0, kind * 2 + (user ? 1 : 0));
    if (r >= 0) return { ok: true, gpa: r };
    return { ok: false, errorCode: -1 - r, cr2: va >>> 0 };
  }

  /** The host's invariants: the shadows grant nothing the guest's tables do not. */
  checkInvariants(): string[] {
    return this.engine.check();
  }
}

export function createLguestBackend(config: MachineConfig): LguestBackend {
  return new LguestBackend(config);
}
