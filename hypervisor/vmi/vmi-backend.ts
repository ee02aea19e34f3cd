/**
 * The VMI backend: the guest side is Linux 2.6.21's arch/i386/kernel/vmi.c
 * (activate_vmi fills paravirt_ops with ROM calls or with vmi.c's wrappers),
 * the hypervisor side is rom.ts (VMware's monitor over the shadow engine).
 *
 *  - alloc_pt / alloc_pd / alloc_pd_clone: vmi_allocate_pt / _pd / _pd_clone,
 *    AllocatePage with VMI_PAGE_L1, VMI_PAGE_L2, VMI_PAGE_L2 | VMI_PAGE_CLONE
 *    and the clone's pfn, start and count; release_pt / release_pd:
 *    vmi_release_pt / _pd, ReleasePage with VMI_PAGE_L1 / VMI_PAGE_L2;
 *  - set_pte, set_pte_at, set_pmd, (PAE) set_pte_present, set_pud, pte_clear,
 *    pmd_clear: vmi_set_pte & co., the ROM's SetPxE(Long), which stores the
 *    entry and tells the monitor; set_pte_atomic (PAE): vmi_set_pte_atomic, the
 *    guest's own set_64bit followed by UpdatePxE; pte_update(_defer):
 *    vmi_update_pte(_defer), UpdatePxE. The 2-level forms vmi.c leaves native
 *    (set_pte_atomic = set_pte, set_pte_present / pte_clear = set_pte_at,
 *    pmd_clear = set_pmd of 0) land on the same ROM calls;
 *  - write_cr3 / read_cr3 / read_cr2: SetCR3 / GetCR3 / GetCR2 (the guest's
 *    virtual registers); flush_tlb_user / _kernel: vmi_flush_tlb_user /
 *    _kernel (FlushTLB with VMI_FLUSH_TLB [| VMI_FLUSH_GLOBAL]);
 *    flush_tlb_single: InvalPage;
 *  - set_lazy_mode: vmi_set_lazy_mode (SetLazyMode; PARAVIRT_LAZY_FLUSH is
 *    SetLazyMode(0) then the mode again);
 *  - pagetable_setup_start: VMI leaves it native, and 2.6.22's
 *    native_pagetable_setup_start announces swapper_pg_dir with
 *    paravirt_alloc_pd in 2-level paging ("called only for swapper_pg_dir,
 *    which already has data on it", vmi_allocate_pd);
 *  - shared_kernel_pmd stays 1 (activate_vmi does not touch it); PSE and PGE
 *    are shown to the guest unless vmi=disable_pse/disable_pge.
 * The guest's kernel ring: activate_vmi takes kernel_rpl from the code
 * segment the ROM set up; VMware ran VMI kernels in ring 1 (an assumption, see
 * docs/vmi.md). The monitor's reserved top (vmi_rom->virtual_top) is a GUESS
 * of 4 MiB.
 */
import { rebindable } from '../../emulator/snapshot.js';
import { CC_KERNEL } from '../../emulator/cost-model.js';
import type { AccessKind } from '../../emulator/paging-bits.js';
import type { AccessResult, GuestMemory, KernelFigure, KernelWorkComponent, LazyMode, MachineConfig, MmHandle, ParavirtOps } from '../paravirt-ops.js';
import { chargeKernelWork, createMmu } from '../machine.js';
import type { Mmu } from '../../emulator/mmu.js';
import { ShadowGuestMemory } from '../shadow/guest-memory.js';
import { ShadowStats } from '../shadow/stats.js';
import { pteHi, pteLo, type GuestPhys, type Pfn, type PteVal, type VirtAddr } from '../types.js';
import {
  VMI_FLUSH_GLOBAL,
  VMI_FLUSH_TLB,
  VMI_PAGE_CLONE,
  VMI_PAGE_PAE,
  VMI_PAGE_PD,
  VMI_PAGE_PDP,
  VMI_PAGE_PT,
  VMI_PAGE_ZEROED,
  VmiMonitor,
} from './rom.js';

const PAGE = 4096;
/** GUESS: the monitor's reserved top of the address space (vmi_rom->virtual_top), 4 MiB. */
export const VMI_RESERVED_TOP = 4 << 20;
/** PARAVIRT_LAZY_* as the ROM's SetLazyMode takes them. */
const LAZY_NUM: Record<LazyMode, number> = { none: 0, mmu: 1, cpu: 2 };

export class VmiBackend implements ParavirtOps {
  readonly name = 'vmi';
  readonly paravirtEnabled = true;
  readonly kernelRpl = 1;
  readonly sharedKernelPmd = true;
  readonly reservedTop = VMI_RESERVED_TOP;
  readonly largePagesAllowed = true;
  readonly globalPagesAllowed = true;
  readonly config: MachineConfig;
  /** The processor (walks the shadow tables). */
  readonly mmu: Mmu;
  readonly monitor: VmiMonitor;
  readonly mem: GuestMemory;
  readonly stats: ShadowStats;
  private readonly pae: boolean;
  private readonly L1: number;
  private readonly L2: number;
  private lazyMode: LazyMode = 'none';
  private cr2 = 0;

  constructor(config: MachineConfig) {
    if (!(config.memBytes > 0) || config.memBytes % PAGE !== 0) {
      throw new RangeError(`memBytes ${config.memBytes} is not a positive multiple of the page size`);
    }
    this.config = { ...config };
    this.pae = config.pae;
    this.mmu = createMmu(config);
    this.stats = new ShadowStats(this.mmu);
    this.monitor = new VmiMonitor(this.mmu, this.config, this.stats);
    this.mem = new ShadowGuestMemory(this.mmu, config.memBytes, this.monitor.watched, rebindable(this.monitor, 'storeBehindBack'));
    const pae = this.pae ? VMI_PAGE_PAE : 0;
    this.L1 = VMI_PAGE_PT | pae | VMI_PAGE_ZEROED;
    this.L2 = VMI_PAGE_PD | pae | VMI_PAGE_ZEROED;
  }

  get lazy(): LazyMode {
    return this.lazyMode;
  }

  // ---- control registers and TLB ----
  read_cr2(): VirtAddr {
    return this.cr2;
  }
  read_cr3(): GuestPhys {
    return this.monitor.engine.guestCr3;
  }
  write_cr3(pgd: GuestPhys): void {
    if (!Number.isInteger(pgd) || pgd < 0 || pgd >= this.mem.nrPages * PAGE) {
      throw new RangeError(`write_cr3: 0x${Number(pgd).toString(16)} is outside guest memory`);
    }
    if (this.pae ? (pgd & 0x1f) !== 0 : (pgd & 0xfff) !== 0) {
      throw new Error(`write_cr3: pgd 0x${pgd.toString(16)} is not ${this.pae ? '32-byte' : 'page'} aligned`);
    }
    this.monitor.setCr3(pgd);
  }
  flush_tlb_user(): void {
    this.monitor.flushTlb(VMI_FLUSH_TLB);
  }
  flush_tlb_kernel(): void {
    this.monitor.flushTlb(VMI_FLUSH_TLB | VMI_FLUSH_GLOBAL);
  }
  flush_tlb_single(va: VirtAddr): void {
    this.monitor.invalPage(va);
  }

  // ---- page-table page lifecycle: AllocatePage / ReleasePage ----
  alloc_pt(pfn: Pfn): void {
    this.monitor.allocatePage(pfn, this.L1, 0, 0, 0);
  }
  alloc_pd(pfn: Pfn): void {
    this.monitor.allocatePage(pfn, this.L2, 0, 0, 0);
  }
  alloc_pd_clone(pfn: Pfn, clonePfn: Pfn, start: number, count: number): void {
    this.monitor.allocatePage(pfn, this.L2 | VMI_PAGE_CLONE, clonePfn, start, count);
  }
  release_pt(pfn: Pfn): void {
    this.monitor.releasePage(pfn, this.L1);
  }
  release_pd(pfn: Pfn): void {
    this.monitor.releasePage(pfn, this.L2);
  }

  // ---- entry updates ----

  /** The store the ROM (SetPxE) or the guest (set_64bit) makes: 64 bits high word first under PAE, else 32. */
  private store(p: GuestPhys, v: PteVal, op: string): void {
    if ((p & (this.pae ? 7 : 3)) !== 0) throw new Error(`${op}: entry address 0x${p.toString(16)} not aligned`);
    if (!Number.isInteger(p) || p < 0 || p + (this.pae ? 8 : 4) > this.mem.nrPages * PAGE) {
      throw new RangeError(`${op}: entry address 0x${Number(p).toString(16)} outside guest memory`);
    }
    if (!this.pae && (v < 0n || v > 0xffffffffn)) throw new RangeError(`${op}: value 0x${v.toString(16)} does not fit a 2-level entry`);
    this.mmu.charge(this.mmu.preset.cycles.pteStore, CC_KERNEL);
    const mem = this.mmu.mem;
    if (this.pae) mem.write32(p + 4, pteHi(v));
    mem.write32(p, pteLo(v));
  }

  /** SetPxE on a pte-level entry (set_pmd_pte may hit a page directory: the monitor knows the page's type). */
  private setPxE(p: GuestPhys, v: PteVal, op: string): void {
    this.store(p, v, op);
    this.monitor.setPxE(p, this.monitor.pageType[Math.floor(p / PAGE)] === VMI_PAGE_PD ? VMI_PAGE_PD : VMI_PAGE_PT);
  }

  set_pte(ptep: GuestPhys, pte: PteVal): void {
    this.setPxE(ptep, pte, 'set_pte');
  }
  set_pte_at(_mm: MmHandle, _va: VirtAddr, ptep: GuestPhys, pte: PteVal): void {
    this.setPxE(ptep, pte, 'set_pte_at');
  }
  /** PAE vmi_set_pte_atomic: set_64bit, then UpdatePxE; 2-level: set_pte. */
  set_pte_atomic(ptep: GuestPhys, pte: PteVal): void {
    if (!this.pae) return this.set_pte(ptep, pte);
    this.store(ptep, pte, 'set_pte_atomic');
    this.monitor.updatePxE(ptep, VMI_PAGE_PT);
  }
  set_pte_present(_mm: MmHandle, _va: VirtAddr, ptep: GuestPhys, pte: PteVal): void {
    this.setPxE(ptep, pte, 'set_pte_present');
  }
  set_pmd(pmdp: GuestPhys, pmd: PteVal): void {
    this.store(pmdp, pmd, 'set_pmd');
    this.monitor.setPxE(pmdp, VMI_PAGE_PD);
  }
  set_pud(pudp: GuestPhys, pud: PteVal): void {
    this.store(pudp, pud, 'set_pud');
    this.monitor.setPxE(pudp, VMI_PAGE_PDP);
  }
  pte_clear(_mm: MmHandle, _va: VirtAddr, ptep: GuestPhys): void {
    this.setPxE(ptep, 0n, 'pte_clear');
  }
  pmd_clear(pmdp: GuestPhys): void {
    this.set_pmd(pmdp, 0n);
  }
  pte_update(_mm: MmHandle, _va: VirtAddr, ptep: GuestPhys): void {
    this.monitor.updatePxE(ptep, VMI_PAGE_PT);
  }
  pte_update_defer(_mm: MmHandle, _va: VirtAddr, ptep: GuestPhys): void {
    this.monitor.updatePxE(ptep, VMI_PAGE_PT);
  }

  // ---- entry values: guest entries hold guest frames ----
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

  // ---- mm lifecycle ----
  /** native_pagetable_setup_start (2.6.22): in 2-level paging, paravirt_alloc_pd(swapper_pg_dir). */
  pagetable_setup_start(base: GuestPhys): void {
    if (!this.pae) this.alloc_pd(Math.floor(base / PAGE));
  }
  pagetable_setup_done(_base: GuestPhys): void {}
  activate_mm(_prev: MmHandle | null, _next: MmHandle): void {}
  dup_mmap(_oldmm: MmHandle, _mm: MmHandle): void {}
  exit_mmap(_mm: MmHandle): void {}

  // ---- lazy mode ----
  set_lazy_mode(mode: LazyMode): void {
    this.lazyMode = mode;
    this.monitor.setLazyMode(LAZY_NUM[mode]);
  }
  /** PARAVIRT_LAZY_FLUSH: SetLazyMode(0), then the current mode again. */
  lazy_flush(): void {
    this.monitor.setLazyMode(0);
    this.monitor.setLazyMode(LAZY_NUM[this.lazyMode]);
  }

  // ---- the kernel's own work: the processor runs it as on bare hardware ----
  cpu_figure(name: KernelFigure): number {
    return this.mmu.preset.cycles[name];
  }
  kernel_work(cycles: number, component: KernelWorkComponent): void {
    chargeKernelWork(this.mmu, cycles, component);
  }
  /**
   * int $0x80 ... iret. GUESS: charged as the native gate and iret (preset
   * syscall): vmi.c patches iret to the ROM's VMI_CALL_IRET, whose cost VMware
   * did not publish; the system call gate itself is the guest's own IDT entry.
   */
  syscall(): void {
    this.mmu.charge(this.mmu.preset.cycles.syscall, CC_KERNEL);
  }

  // ---- the processor ----

  /** One access: a #PF on the shadow enters the monitor, which fills the shadow (hidden) or reflects the guest's fault. */
  access(va: VirtAddr, kind: AccessKind, user: boolean): AccessResult {
    const acc = kind * 2 + (user ? 1 : 0);
    va >>>= 0;
    for (let tries = 0; tries < 4; tries++) {
      const r = this.mmu.translate(va, acc);
      if (r >= 0) return { ok: true, gpa: r };
      this.monitor.enterForFault();
      const code = this.monitor.engine.hiddenFault(va, acc);
      if (code >= 0) {
        this.cr2 = va;
        return { ok: false, errorCode: code, cr2: va };
      }
    }
    throw new Error(`vmi: the shadow for ${va.toString(16)} did not converge (hypervisor bug)`);
  }

  /** The guest's view: a walk of its own tables, no side effects. */
  probe(va: VirtAddr, kind: AccessKind, user: boolean): AccessResult {
    const r = this.monitor.engine.vcpu.probePa(va >>> 0, kind * 2 + (user ? 1 : 0));
    if (r >= 0) return { ok: true, gpa: r };
    return { ok: false, errorCode: -1 - r, cr2: va >>> 0 };
  }

  /** The monitor's invariants (shadows no wider than the guest's tables, balanced releases). */
  checkInvariants(): string[] {
    return this.monitor.check();
  }
}

export function createVmiBackend(config: MachineConfig): VmiBackend {
  return new VmiBackend(config);
}
