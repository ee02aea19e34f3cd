/**
 * One paravirtualised domain on the Xen model, and the machine under it:
 * what the domain builder sets up (the emulated processor with paging on
 * from the guest's first instruction, the guest's machine frames through the
 * p2m, Xen's own frames outside them, Xen's idle page table holding only the
 * hypervisor hole) and the per-domain state the hypercalls work on: the frame
 * table, the page-table rules, the VM assists, the current base pointer, the
 * MEM_LOG buffer of the operation in progress, and the cost charging.
 *
 * Machine CR3 under PAE: Xen 3.1 loads the guest's L3 itself; an L3 above
 * 4 GiB cannot be loaded into the 32-bit CR3, so with the pae_extended_cr3
 * assist Xen keeps a low copy of its four entries in a frame of its own
 * below 4 GiB and loads that. When an L3 entry changes (mod_l3_entry ->
 * pae_flush_pgd, xen/arch/x86/mm.c), Xen refreshes the low copy of an L3
 * above 4 GiB and flushes; for an L3 below 4 GiB it does nothing, so the
 * processor's PDPTE registers keep the old entry until the next CR3 load:
 * the stale-PDPTE hazard of Intel application note 317080 section 8.1,
 * which the guest must handle itself (the model shows it, as hardware does).
 * mod_l3_entry's same-frame fast path returns before pae_flush_pgd: there
 * even the low copy of an L3 above 4 GiB stays as it was until the next
 * base switch (make_cr3 copies the L3 again; a TLB flush does not).
 *
 * TLB flushes Xen does on its own (xen/arch/x86/mm.c): get_page_type
 * flushes on a type change unless the frame's stamp is older than the last
 * flush (tlbflush_filter); free_page_type queues DOP_FLUSH_ALL_TLBS, done
 * at the end of the hypercall (process_deferred_ops). Both go through the
 * MMU's CR3 reload (its flush path and charge).
 *
 * Faults: bouncePageFault is Xen's propagate_page_fault (the guest's
 * virtual CR2 set, the fault delivered to the guest's handler, charged as a
 * bounce); a guest access beyond its segment limit (the hypervisor hole) is
 * a #GP (bounceGeneralProtection).
 */
import { rebindable } from '../../emulator/snapshot.js';
import { CC_BOUNCE, CC_VALIDATION, type KernelFigure } from '../../emulator/cost-model.js';
import { hex } from '../../emulator/hex.js';
import { Mmu } from '../../emulator/mmu.js';
import { PTE_P } from '../../emulator/paging-bits.js';
import { chargeKernelWork, createMmu, enablePaging } from '../machine.js';
import type { AccessKind } from '../../emulator/paging-bits.js';
import type { AccessResult, MachineConfig } from '../paravirt-ops.js';
import { PAE_L3_LIMIT_MFN, VMASST_TYPE_PAE_EXTENDED_CR3, VMASST_TYPE_WRITABLE_PAGETABLES } from './abi.js';
import { xenCosts, type XenCosts } from './costs.js';
import { FrameTable } from './frame-table.js';
import { XenHole } from './hole.js';
import { P2m, type P2mLayout } from './p2m.js';
import { XenRefusal, type LogLine } from './reasons.js';
import { XenStats } from './stats.js';
import { PageTableRules } from './validate.js';

export interface XenOptions {
  /** Machine layout of the guest's frames (default identity). */
  p2m?: P2mLayout;
  /** Put half of the guest's machine frames above 4 GiB (PAE only). */
  above4g?: boolean;
  /** The pae_extended_cr3 assist (the guest's ELF note; Linux's Xen port sets it). Default true. */
  paeExtendedCr3?: boolean;
}

/**
 * What the guest port may see of the machine: its own frames' words, read
 * only (a PV guest reads its page tables through its read-only mappings of
 * them), and the vcpu_info's cr2 Xen writes when it bounces a #PF.
 */
/**
 * The processor as the guest's own code uses it (cost accounting only): the
 * guest kernel's work runs on the processor directly, as natively; the guest
 * port charges its own stores with it. Not a way into the hypervisor.
 */
export interface GuestProcessor {
  /** The processor executes `cycles` of guest work, charged to `component`. */
  work(cycles: number, component: 'kernel' | 'page_copy'): void;
  /** The CPU preset's figure (emulator/cost-model.ts). */
  figure(name: KernelFigure | 'pteStore'): number;
}

export interface MachineView {
  word(mfn: number, w: number): number;
  readonly guestCr2: number;
}

/** The guest port's read-only view of a domain's machine (a class, not closures, so machine snapshots can copy it). */
class DomainView implements MachineView {
  constructor(private readonly dom: XenDomain) {}
  word(mfn: number, w: number): number {
    return this.dom.mmu.mem.word(mfn, w);
  }
  get guestCr2(): number {
    return this.dom.guestCr2;
  }
}

/** The processor the guest port charges its work to. */
class DomainProcessor implements GuestProcessor {
  constructor(private readonly dom: XenDomain) {}
  work(cycles: number, component: 'kernel' | 'page_copy'): void {
    this.dom.guestWork(cycles, component);
  }
  figure(name: KernelFigure | 'pteStore'): number {
    return this.dom.mmu.preset.cycles[name];
  }
}

/** Number of Xen frames the hole's L1 maps (Xen's read-only m2p pages). */
const M2P_FRAMES = 4;

export class XenDomain {
  readonly mmu: Mmu;
  readonly pae: boolean;
  readonly p2m: P2m;
  readonly frames: FrameTable;
  readonly rules: PageTableRules;
  readonly hole: XenHole;
  readonly costs: XenCosts;
  readonly stats: XenStats;
  readonly assists = new Set<number>();
  /** Xen's own frames (outside the guest's). */
  readonly xenFrames = new Set<number>();
  /** Xen's idle root (hole only), loaded until the guest's first NEW_BASEPTR. */
  readonly idleRoot: number;
  /** Xen's low L3 copy (PAE, pae_extended_cr3). */
  readonly lowL3: number;
  /** The guest's current base pointer (mfn), -1 while Xen's idle table is loaded. */
  baseMfn = -1;
  /** The guest's virtual CR2 (vcpu_info arch.cr2), written when Xen bounces a #PF. */
  guestCr2 = 0;
  /** DOP_FLUSH_ALL_TLBS queued by free_page_type, done by processDeferredOps. */
  private deferredFlush = false;
  /** DOP_FLUSH_TLB queued by MMUEXT_TLB_FLUSH_LOCAL, cancelled by MMUEXT_NEW_BASEPTR, done by processDeferredOps. */
  private deferredLocalFlush = false;
  /** MEM_LOG lines of the operation in progress. */
  memlog: LogLine[] = [];
  /** Xen's MEM_LOG: a line of the operation in progress (handed to the frame table and the rules). */
  readonly log: (l: LogLine) => void = rebindable(this, 'memLog');

  /** The guest port's read-only view of the machine. */
  readonly view: MachineView;
  readonly processor: GuestProcessor;

  private chargedReads = 0;
  private chargedLines = 0;
  private chargedPresent = 0;
  private chargedWrites = 0;
  private chargedRefs = 0;

  constructor(readonly config: MachineConfig, opts: XenOptions = {}) {
    if (!(config.memBytes > 0) || config.memBytes % 4096 !== 0) {
      throw new RangeError(`memBytes ${config.memBytes} is not a positive multiple of the page size`);
    }
    this.pae = config.pae;
    this.view = new DomainView(this);
    this.processor = new DomainProcessor(this);
    const nrPages = config.memBytes / 4096;
    const above4g = (opts.above4g ?? false) && this.pae;
    this.p2m = new P2m(nrPages, opts.p2m ?? 'identity', above4g, config.seed ?? 1, this.pae);
    this.mmu = createMmu(config);
    const mem = this.mmu.mem;

    // Xen's own frames: just below the guest's pool when it straddles 4 GiB,
    // else just above it (always below 4 GiB for the low L3 copy).
    const nXen = 4 + M2P_FRAMES;
    const xenBase = above4g ? this.p2m.poolBase - nXen - 16 : Math.ceil((this.p2m.poolEnd + 16) / 16) * 16;
    if (xenBase < 0 || xenBase + nXen >= (this.pae ? PAE_L3_LIMIT_MFN : 1 << 20)) {
      throw new RangeError('no room below 4 GiB for the hypervisor frames');
    }
    const xf = (i: number): number => {
      this.xenFrames.add(xenBase + i);
      return xenBase + i;
    };
    const holeL1 = xf(0);
    const idleL2 = xf(1);
    this.idleRoot = this.pae ? xf(2) : idleL2;
    this.lowL3 = xf(3);
    const m2pFrames: number[] = [];
    for (let i = 0; i < M2P_FRAMES; i++) m2pFrames.push(xf(4 + i));

    this.hole = new XenHole(mem, this.pae, holeL1, m2pFrames);
    // The frame table keeps the guest's pool and Xen's frames in a dense array.
    const denseLo = Math.min(this.p2m.poolBase, xenBase);
    const denseHi = Math.max(this.p2m.poolEnd, xenBase + nXen);
    this.frames = new FrameTable(this.log, rebindable(this.p2m, 'mfnToPfn'), denseLo, denseHi - denseLo);
    this.rules = new PageTableRules(
      mem,
      this.pae,
      this.frames,
      this.p2m,
      rebindable(this.xenFrames, 'has'),
      this.hole,
      this.log,
      rebindable(this.assists, 'has', VMASST_TYPE_PAE_EXTENDED_CR3),
    );
    // Callbacks as rebindable methods: a machine snapshot (emulator/snapshot.ts) copies them onto the copied domain.
    this.rules.onL3Changed = rebindable(this, 'paeFlushPgd');
    this.frames.flushTime = rebindable(this, 'tlbflushTime');
    this.frames.onTypeChange = rebindable(this, 'frameTypeChanged');
    this.frames.onFreePageType = rebindable(this, 'pageTypeFreed');
    this.costs = xenCosts(this.mmu.preset.cycles, this.pae);
    this.stats = new XenStats(this.mmu, this.frames);
    if (opts.paeExtendedCr3 ?? true) this.assists.add(VMASST_TYPE_PAE_EXTENDED_CR3);

    // Xen's idle table: only the hole. Paging is on from the first instruction.
    this.hole.install(idleL2);
    if (this.pae) mem.setWord(this.idleRoot, 6, idleL2 * 4096 + PTE_P);
    enablePaging(this.mmu, config, this.idleRoot * 4096);
  }

  /** VM assists the guest has enabled. */
  get writablePagetables(): boolean {
    return this.assists.has(VMASST_TYPE_WRITABLE_PAGETABLES);
  }

  /** Charge hypervisor work to a cost component (a CC_* index of emulator/cost-model.ts). */
  charge(cycles: number, component: number): void {
    this.mmu.charge(cycles, component);
    this.stats.hypervisorCycles += cycles;
  }

  /** The guest kernel's own work runs on the processor as it would natively (the interface's kernel_work). */
  guestWork(cycles: number, component: 'kernel' | 'page_copy'): void {
    chargeKernelWork(this.mmu, cycles, component);
  }

  /** Charge the entries read/written and type-count changes done since the last call. */
  chargeWork(): void {
    const rules = this.rules;
    const r = rules.entriesRead - this.chargedReads;
    const l = rules.scanLines - this.chargedLines;
    const p = rules.scanPresent - this.chargedPresent;
    const w = rules.entriesWritten - this.chargedWrites;
    const t = this.frames.typeRefChanges - this.chargedRefs;
    this.chargedReads = rules.entriesRead;
    this.chargedLines = rules.scanLines;
    this.chargedPresent = rules.scanPresent;
    this.chargedWrites = rules.entriesWritten;
    this.chargedRefs = this.frames.typeRefChanges;
    const co = this.costs;
    const c = r * co.entryRead + l * co.scanLine + p * co.entryCheck + w * co.entryWrite + t * co.typeRef;
    if (c > 0) this.charge(c, CC_VALIDATION);
  }

  /** Build the refusal of the operation in progress from the MEM_LOG lines, count it, clear the log. */
  refuse(op: string, mfn?: number): XenRefusal {
    const r = new XenRefusal(this.memlog, op, mfn);
    this.stats.count('refusals', r.rule);
    this.memlog = [];
    return r;
  }

  /**
   * tlbflush_current_time: the machine's full-flush count (every CR3 write
   * flushes all of a PV guest's TLB entries: Xen gives it no global pages).
   */
  private memLog(l: LogLine): void {
    this.memlog.push(l);
  }

  /** A frame's type changed (the frame table's onTypeChange): tlbflush_filter, no flush if the TLB was flushed since the stamp. */
  private frameTypeChanged(_mfn: number, stamp: number): void {
    if (stamp >= 0 && this.tlbflushTime() <= stamp && this.baseMfn >= 0) this.flushTlbLocal();
  }

  /** free_page_type queued DOP_FLUSH_ALL_TLBS (the frame table's onFreePageType). */
  private pageTypeFreed(): void {
    this.deferredFlush = true;
  }

  tlbflushTime(): number {
    const c = this.mmu.counters;
    return c.cr3Writes + c.flushesFull;
  }

  /** local_flush_tlb: reload CR3 (the MMU's flush path charges it). */
  flushTlbLocal(): void {
    if (this.mmu.writeCr3(this.mmu.cpu.cr3) === 'GP') throw new Error('Xen: #GP on CR3 reload');
  }

  /** MMUEXT_TLB_FLUSH_LOCAL: do_mmuext_op only queues DOP_FLUSH_TLB (xen/arch/x86/mm.c, Xen 3.1.0). */
  queueLocalFlush(): void {
    this.deferredLocalFlush = true;
  }

  /** MMUEXT_NEW_BASEPTR: write_ptbase has flushed, so do_mmuext_op drops a queued DOP_FLUSH_TLB. */
  cancelLocalFlush(): void {
    this.deferredLocalFlush = false;
  }

  /**
   * process_deferred_ops at the end of a hypercall: one flush for what was
   * queued (free_page_type's DOP_FLUSH_ALL_TLBS, TLB_FLUSH_LOCAL's
   * DOP_FLUSH_TLB; with one vcpu both are a local flush).
   */
  processDeferredOps(): void {
    if (!this.deferredFlush && !this.deferredLocalFlush) return;
    this.deferredFlush = false;
    this.deferredLocalFlush = false;
    if (this.baseMfn >= 0) this.flushTlbLocal();
  }

  /**
   * pae_flush_pgd (xen/arch/x86/mm.c): after L3 `l3mfn` entry `idx` changed.
   * Below 4 GiB nothing is reloaded. Above, the low copy of the loaded L3 is
   * refreshed and the TLB flushed (which reloads the PDPTEs from the copy).
   */
  private paeFlushPgd(l3mfn: number, idx: number): void {
    if (!this.pae || l3mfn < PAE_L3_LIMIT_MFN) return;
    const mem = this.mmu.mem;
    if (l3mfn === this.baseMfn) {
      mem.setWord(this.lowL3, 2 * idx, mem.word(l3mfn, 2 * idx));
      mem.setWord(this.lowL3, 2 * idx + 1, mem.word(l3mfn, 2 * idx + 1));
    }
    if (this.baseMfn >= 0) this.flushTlbLocal();
  }

  /**
   * propagate_page_fault (xen/arch/x86/traps.c): a #PF Xen does not fix is
   * delivered to the guest: the guest's virtual CR2 is written and the
   * bounce charged. Returns the error code.
   */
  bouncePageFault(va: number, errorCode: number): number {
    const at = this.mmu.cycles;
    this.stats.count('traps', 'page_fault_bounce');
    this.charge(this.costs.bounceExtra, CC_BOUNCE);
    if (this.stats.listener !== null) this.stats.slice('trap', 'page_fault_bounce', at, { va: hex(va), errorCode: hex(errorCode) });
    this.guestCr2 = va >>> 0;
    return errorCode;
  }

  /**
   * A guest access beyond its segment limit (the guest's segments end below
   * HYPERVISOR_VIRT_START): the processor raises #GP(0), which Xen's
   * do_general_protection bounces to the guest (no CR2).
   */
  bounceGeneralProtection(): void {
    const at = this.mmu.cycles;
    this.stats.count('traps', 'general_protection_bounce');
    this.charge(this.costs.bouncedFault, CC_BOUNCE);
    if (this.stats.listener !== null) this.stats.slice('trap', 'general_protection_bounce', at, {});
  }

  /**
   * The processor runs one guest access at `va` (user = CPL 3): the
   * guest-physical address reached; a #PF, which Xen bounces to the guest
   * (bouncePageFault); or, beyond the guest's segment limit (the hole), a
   * #GP(0), bounced too.
   */
  guestAccess(va: number, kind: AccessKind, user: boolean): AccessResult {
    va >>>= 0;
    if (va >= this.hole.start) {
      this.bounceGeneralProtection();
      return { ok: false, fault: 'GP', errorCode: 0 };
    }
    const r = this.mmu.access(va, kind, user);
    if (r < 0) {
      const errorCode = this.bouncePageFault(this.mmu.cpu.cr2, -1 - r);
      return { ok: false, errorCode, cr2: this.guestCr2 };
    }
    return { ok: true, gpa: this.gpaOf(r) };
  }

  /** guestAccess without side effects (no TLB fill, no A/D, no bounce): for checkers and traces. */
  guestProbe(va: number, kind: AccessKind, user: boolean): AccessResult {
    va >>>= 0;
    if (va >= this.hole.start) return { ok: false, fault: 'GP', errorCode: 0 };
    const r = this.mmu.probePa(va, kind * 2 + (user ? 1 : 0));
    if (r < 0) return { ok: false, errorCode: -1 - r, cr2: va };
    return { ok: true, gpa: this.gpaOf(r) };
  }

  private gpaOf(pa: number): number {
    const mfn = Math.floor(pa / 4096);
    const pfn = this.p2m.mfnToPfn(mfn);
    if (pfn < 0) throw new Error(`Xen model: the guest reached machine frame 0x${mfn.toString(16)}, which it does not own`);
    return pfn * 4096 + (pa - mfn * 4096);
  }

  /** Load the machine CR3 for the current base (write_ptbase), via the low copy above 4 GiB. */
  loadCr3(): void {
    const base = this.baseMfn < 0 ? this.idleRoot : this.baseMfn;
    let cr3 = base * 4096;
    if (this.pae && base >= PAE_L3_LIMIT_MFN) {
      const mem = this.mmu.mem;
      for (let w = 0; w < 8; w++) mem.setWord(this.lowL3, w, mem.word(base, w));
      cr3 = this.lowL3 * 4096;
    }
    if (this.mmu.writeCr3(cr3) === 'GP') throw new Error(`Xen: #GP loading CR3 0x${cr3.toString(16)} (validated L3?)`);
  }

  /** Machine frame of the current root as the processor sees it (for checks). */
  get machineRoot(): number {
    return Math.floor(this.mmu.cpu.cr3 / 4096);
  }
}
