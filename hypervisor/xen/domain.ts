/**
 * One paravirtualised domain on the Xen model, and the machine under it:
 * what the domain builder sets up (the emulated processor with paging on
 * from the guest's first instruction, the guest's machine frames through the
 * p2m, Xen's own frames outside them, Xen's idle page table holding only the
 * hypervisor hole) and the per-domain state the hypercalls work on: the frame
 * table, the page-table rules, the VM assists, the current base pointer, the
 * MEM_LOG buffer of the operation in progress, and the cost charging.
 *
 * Machine CR3 under PAE: Xen 3.0 loads the guest's L3 itself; an L3 above
 * 4 GiB cannot be loaded into the 32-bit CR3, so with the pae_extended_cr3
 * assist Xen keeps a low copy of its four entries in a frame of its own
 * below 4 GiB and loads that (refreshing it when the L3 changes).
 */
import { CC_KERNEL, CC_PAGE_COPY, CC_VALIDATION } from '../../emulator/cost-model.js';
import { Mmu } from '../../emulator/mmu.js';
import { PTE_P } from '../../emulator/paging-bits.js';
import { createMmu, enablePaging } from '../machine.js';
import type { MachineConfig } from '../paravirt-ops.js';
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
  /** MEM_LOG lines of the operation in progress. */
  memlog: LogLine[] = [];
  readonly log = (l: LogLine): void => {
    this.memlog.push(l);
  };

  private chargedReads = 0;
  private chargedWrites = 0;
  private chargedRefs = 0;

  constructor(readonly config: MachineConfig, opts: XenOptions = {}) {
    if (!(config.memBytes > 0) || config.memBytes % 4096 !== 0) {
      throw new RangeError(`memBytes ${config.memBytes} is not a positive multiple of the page size`);
    }
    this.pae = config.pae;
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
    this.frames = new FrameTable(this.log, (mfn) => this.p2m.mfnToPfn(mfn), denseLo, denseHi - denseLo);
    this.rules = new PageTableRules(
      mem,
      this.pae,
      this.frames,
      this.p2m,
      (mfn) => this.xenFrames.has(mfn),
      this.hole,
      this.log,
      () => this.assists.has(VMASST_TYPE_PAE_EXTENDED_CR3),
    );
    this.rules.onL3Changed = (l3mfn) => {
      // pae_flush_pgd: an L3 in use is reloaded (and its low copy refreshed).
      if (l3mfn === this.baseMfn) this.loadCr3();
    };
    this.costs = xenCosts(this.mmu.preset.cycles);
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
    this.mmu.charge(cycles, component === 'page_copy' ? CC_PAGE_COPY : CC_KERNEL);
  }

  /** Charge the entries read/written and type-count changes done since the last call. */
  chargeWork(): void {
    const r = this.rules.entriesRead - this.chargedReads;
    const w = this.rules.entriesWritten - this.chargedWrites;
    const t = this.frames.typeRefChanges - this.chargedRefs;
    this.chargedReads = this.rules.entriesRead;
    this.chargedWrites = this.rules.entriesWritten;
    this.chargedRefs = this.frames.typeRefChanges;
    const c = r * this.costs.entryRead + w * this.costs.entryWrite + t * this.costs.typeRef;
    if (c > 0) this.charge(c, CC_VALIDATION);
  }

  /** Build the refusal of the operation in progress from the MEM_LOG lines, count it, clear the log. */
  refuse(op: string, mfn?: number): XenRefusal {
    const r = new XenRefusal(this.memlog, op, mfn);
    this.stats.count('refusals', r.rule);
    this.memlog = [];
    return r;
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
