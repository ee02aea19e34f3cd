/**
 * The hypervisor side of VMI: what VMware's monitor does behind the ROM calls
 * Linux 2.6.21's arch/i386/kernel/vmi.c makes (include/asm-i386/vmi.h for the
 * call numbers and flags), over the shared shadow-paging engine.
 *
 *  - AllocatePage(pfn, flags, clonepfn, start, count): the page becomes a
 *    page table of level L1 (VMI_PAGE_PT) or L2 (VMI_PAGE_PD), announced as
 *    zeroed (VMI_PAGE_L1/L2 carry VMI_PAGE_ZEROED); with VMI_PAGE_CLONE,
 *    entries [start, start + count) are copies of clonepfn's (vmi.c
 *    vmi_allocate_pd_clone: the kernel part of a 2-level pgd). The monitor
 *    knows an L2 entry only if it was told about it: zero at allocation,
 *    cloned, or written by SetPxE / announced by UpdatePxE. An entry written
 *    behind its back (a plain store into an announced L2) or an L2 never
 *    announced is not known, and the shadow does not map through it.
 *  - ReleasePage(pfn, level): the page is a page table no more; the shadows
 *    built from it go. Releasing a page never allocated at that level is
 *    recorded (the ROM call returns nothing; with CONFIG_DEBUG_PAGE_TYPE
 *    vmi_set_page_type would BUG_ON the page's type) and reported by the
 *    invariant check.
 *  - SetPxE(pte, ptep, flags): the ROM stores the entry and the monitor drops
 *    the shadow entries built from the old one; UpdatePxE(ptep, flags): the
 *    guest stored it, the monitor re-reads it. In lazy MMU mode
 *    (SetLazyMode) the shadow side of both is queued and done at the next
 *    entry into the monitor (leaving lazy mode, a flush, a CR3 load, a fault).
 *  - SetCR3: switch shadows; FlushTLB(VMI_FLUSH_TLB [| VMI_FLUSH_GLOBAL]) and
 *    InvalPage: the processor's TLB (the shadows stay coherent through the
 *    announcements).
 *  - PAE roots (VMI_PAGE_PDP) are not tracked ("PAE can have multiple roots
 *    per page", vmi_set_page_type): the monitor reads the guest's PDPTEs when
 *    it loads CR3, and a SetPxE on a PDPTE drops the shadow of that root.
 */
import { rebindable } from '../../emulator/snapshot.js';
import { CC_HYPERCALL } from '../../emulator/cost-model.js';
import { hex } from '../../emulator/hex.js';
import type { Mmu } from '../../emulator/mmu.js';
import type { MachineConfig } from '../paravirt-ops.js';
import { shadowCosts } from '../shadow/costs.js';
import { ShadowEngine } from '../shadow/engine.js';
import type { ShadowStats } from '../shadow/stats.js';
import { vmiCosts, type VmiCosts } from './costs.js';

/** include/asm-i386/vmi.h page-type flags. */
export const VMI_PAGE_PT = 0x01;
export const VMI_PAGE_PD = 0x02;
export const VMI_PAGE_PDP = 0x04;
export const VMI_PAGE_PAE = 0x10;
export const VMI_PAGE_CLONE = 0x20;
export const VMI_PAGE_ZEROED = 0x40;
export const VMI_PAGE_CURRENT_AS = 0x10;
export const VMI_PAGE_DEFER = 0x20;
export const VMI_FLUSH_TLB = 0x01;
export const VMI_FLUSH_GLOBAL = 0x02;

export interface UnbalancedRelease {
  pfn: number;
  level: 'L1' | 'L2';
  /** What the monitor knew the page as (NORMAL: never allocated). */
  was: 'NORMAL' | 'L1' | 'L2';
}

type Pending = { gpa: number; level: 'pt' | 'pd' | 'pdp' };

export class VmiMonitor {
  readonly engine: ShadowEngine;
  readonly costs: VmiCosts;
  /** VMI_PAGE_PT / VMI_PAGE_PD by pfn (0: a normal page). */
  readonly pageType: Uint8Array;
  /** Frames whose stores the monitor watches (announced page tables). */
  readonly watched: Uint8Array;
  /** Per announced L2: 1 for an entry the monitor knows. */
  private readonly known = new Map<number, Uint8Array>();
  readonly unbalancedReleases: UnbalancedRelease[] = [];
  /** L2 entries stored behind the monitor's back (plain stores into an announced page directory). */
  unannouncedStores = 0;
  private lazy = false;
  private queue: Pending[] = [];
  private readonly pae: boolean;
  private readonly esz: number;
  private readonly perPage: number;

  constructor(
    readonly mmu: Mmu,
    readonly config: MachineConfig,
    private readonly stats: ShadowStats,
  ) {
    this.pae = config.pae;
    this.esz = config.pae ? 8 : 4;
    this.perPage = config.pae ? 512 : 1024;
    const nrPages = Math.floor(config.memBytes / 4096);
    this.pageType = new Uint8Array(nrPages);
    this.watched = new Uint8Array(nrPages);
    this.costs = vmiCosts(mmu.preset.cycles);
    this.engine = new ShadowEngine(mmu, config, shadowCosts(mmu.preset.cycles), {
      who: 'vmi',
      keepGlobal: true,
      largePages: true,
      guestFeatures: { pse: true, pge: true, nx: true },
      maxShadows: 64,
      recycleKeepsKernel: false,
      victim: 'oldest',
      seed: config.seed ?? 1,
      pdeKnown: rebindable(this, 'pdeKnown'),
      count: rebindable(stats, 'count'),
    });
  }

  /** Whether the guest told the monitor about entry `idx` of page-directory `pfn` (the shadow engine's pdeKnown). */
  private pdeKnown(pfn: number, idx: number): boolean {
    return this.known.get(pfn)?.[idx] === 1;
  }

  /** One ROM call into the monitor (queued updates are done first). */
  private enter(call: string): void {
    this.mmu.charge(this.costs.romCall, CC_HYPERCALL);
    this.stats.count('hypercalls', call);
    this.drain();
  }

  /** The monitor is entered for a fault: it does what the ROM queued first. */
  enterForFault(): void {
    this.drain();
  }

  private drain(): void {
    if (this.queue.length === 0) return;
    const q = this.queue;
    this.queue = [];
    for (const p of q) this.apply(p);
  }

  private apply(p: Pending): void {
    if (p.level === 'pdp') {
      this.engine.dropRoot(p.gpa - (p.gpa % 32));
      return;
    }
    const pfn = Math.floor(p.gpa / 4096);
    if (p.level === 'pd') {
      // The monitor now knows this entry (SetPxE told it, or UpdatePxE made it re-read it).
      let k = this.known.get(pfn);
      if (k === undefined) this.known.set(pfn, (k = new Uint8Array(this.perPage)));
      k[(p.gpa & 4095) / this.esz] = 1;
    }
    this.engine.entryChanged(p.gpa, p.level);
  }

  /** The shadow side of a pte update: now, or queued in lazy MMU mode. */
  private update(call: string, gpa: number, level: 'pt' | 'pd' | 'pdp'): void {
    if (this.lazy) {
      this.mmu.charge(this.costs.romQueued, CC_HYPERCALL);
      this.stats.count('hypercalls', `${call} (queued)`);
      this.queue.push({ gpa, level });
      return;
    }
    this.enter(call);
    this.apply({ gpa, level });
  }

  // ---- the ROM calls ----

  /** VMI_AllocatePage. */
  allocatePage(pfn: number, flags: number, clonePfn: number, start: number, count: number): void {
    this.enter('AllocatePage');
    const level = flags & (VMI_PAGE_PT | VMI_PAGE_PD);
    this.pageType[pfn] = level;
    this.watched[pfn] = level === VMI_PAGE_PD ? 1 : 0;
    if (level !== VMI_PAGE_PD) return;
    const k = new Uint8Array(this.perPage);
    const mem = this.mmu.mem;
    for (let i = 0; i < this.perPage; i++) {
      const a = pfn * 4096 + i * this.esz;
      // VMI_PAGE_ZEROED: the monitor takes the page as empty; an entry that is not is not known.
      if (mem.read32(a) === 0 && (!this.pae || mem.read32(a + 4) === 0)) k[i] = 1;
    }
    if ((flags & VMI_PAGE_CLONE) !== 0) {
      const src = this.known.get(clonePfn);
      for (let i = start; i < start + count && i < this.perPage; i++) k[i] = src?.[i] ?? 0;
      if (this.pageType[clonePfn] !== VMI_PAGE_PD) this.stats.count('traps', 'clone_of_unannounced_page');
    }
    this.known.set(pfn, k);
  }

  /** VMI_ReleasePage. */
  releasePage(pfn: number, flags: number): void {
    this.enter('ReleasePage');
    const level = flags & (VMI_PAGE_PT | VMI_PAGE_PD);
    const was = this.pageType[pfn]!;
    if (was !== level) {
      this.unbalancedReleases.push({
        pfn,
        level: level === VMI_PAGE_PD ? 'L2' : 'L1',
        was: was === VMI_PAGE_PD ? 'L2' : was === VMI_PAGE_PT ? 'L1' : 'NORMAL',
      });
      this.stats.count('traps', 'unbalanced_release_page');
      return;
    }
    if (level === VMI_PAGE_PT) this.engine.releasePt(pfn);
    else {
      this.engine.releasePd(pfn);
      this.known.delete(pfn);
    }
    this.pageType[pfn] = 0;
    this.watched[pfn] = 0;
  }

  /** VMI_SetPxE / SetPxELong, shadow side (the ROM stored the entry). */
  setPxE(gpa: number, flags: number): void {
    this.update('SetPxE', gpa, (flags & VMI_PAGE_PDP) !== 0 ? 'pdp' : (flags & VMI_PAGE_PD) !== 0 ? 'pd' : 'pt');
  }

  /** VMI_UpdatePxE / UpdatePxELong: the guest stored the entry itself. */
  updatePxE(gpa: number, flags: number): void {
    this.update('UpdatePxE', gpa, (flags & VMI_PAGE_PD) !== 0 ? 'pd' : 'pt');
  }

  /** VMI_SetCR3. */
  setCr3(pgd: number): void {
    this.enter('SetCR3');
    this.engine.switchTo(pgd);
  }

  /** VMI_FlushTLB. */
  flushTlb(flags: number): void {
    this.enter('FlushTLB');
    const m = this.mmu;
    if (!m.cpu.paging) return;
    if ((flags & VMI_FLUSH_GLOBAL) !== 0) {
      const cr4 = m.cpu.cr4;
      m.writeCr4(cr4 & ~0x80);
      this.engine.loadHardware();
      m.writeCr4(cr4);
    } else this.engine.loadHardware();
  }

  /** VMI_InvalPage. */
  invalPage(va: number): void {
    this.enter('InvalPage');
    this.mmu.invlpg(va >>> 0);
  }

  /** VMI_SetLazyMode. */
  setLazyMode(mode: number): void {
    this.enter('SetLazyMode');
    this.lazy = mode !== 0;
  }

  /** A plain store into a watched frame (an announced L2): the monitor was not told. */
  storeBehindBack(addr: number): void {
    const pfn = Math.floor(addr / 4096);
    const k = this.known.get(pfn);
    if (k === undefined) return;
    const i = Math.floor((addr & 4095) / this.esz);
    if (k[i] === 1) {
      k[i] = 0;
      this.unannouncedStores++;
      this.stats.count('traps', 'unannounced_pd_store');
    }
  }

  /** The monitor's own consistency: shadows no wider than the guest's tables; releases balanced. */
  check(): string[] {
    const out = this.engine.check();
    for (const u of this.unbalancedReleases) {
      out.push(
        `release_page(${u.level}) of pfn ${hex(u.pfn)} that was ${u.was === 'NORMAL' ? 'never allocated as a page table' : `allocated as ${u.was}`} (with CONFIG_DEBUG_PAGE_TYPE, vmi_set_page_type BUGs here)`,
      );
    }
    return out;
  }
}
