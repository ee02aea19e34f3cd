/**
 * The guest side of the Xen backend: Linux 2.6.22's arch/i386/xen/ (mmu.c,
 * enlighten.c, multicalls.c) as paravirt ops over the hypervisor model.
 *
 * Why page tables are read-only: under direct paging the guest's tables are
 * the ones the processor walks, so Xen must see every change to them. The
 * guest maps its page-table frames read-only; a change is either a hypercall
 * (mmu_update, validated) or a store that traps and that Xen emulates
 * (writable page tables, L1 only). What pinning buys: a pinned pgd stays
 * typed and validated, so switching to it (NEW_BASEPTR) costs a type
 * reference instead of a walk of the whole tree, and updates to it are
 * checked one entry at a time.
 *
 *  - set_pte / set_pte_atomic / pte_clear: plain stores (xen_set_pte: two
 *    32-bit stores under PAE, high word first), which trap into Xen when the
 *    L1 is typed; set_pte_at / set_pte_present: mmu_update; set_pmd/set_pud:
 *    mmu_update when the table is typed, a plain store otherwise. In lazy MMU
 *    mode every hypervisor-visible update and TLB op is queued and issued as
 *    one multicall on leave / lazy_flush.
 *  - write_cr3: MMUEXT_NEW_BASEPTR; flush_tlb_*: MMUEXT_TLB_FLUSH_LOCAL /
 *    INVLPG_LOCAL.
 *  - alloc_pt/alloc_pd(_clone): the page will be a page table: make it
 *    read-only in the direct map (make_lowmem_page_readonly); release_*: back
 *    to read-write. Releasing a page never announced is refused.
 *  - pagetable_setup_done: pin swapper_pg_dir; activate_mm / dup_mmap: pin
 *    the mm's pgd (xen_pgd_pin: every page-table page of the tree made
 *    read-only, then MMUEXT_PIN_L3_TABLE / PIN_L2_TABLE); exit_mmap: switch
 *    away from it if loaded, unpin, pages back to read-write.
 *  - a pgd must be a whole page: Xen types frames and a base pointer is an
 *    mfn, so a pgd not at offset 0 of its frame cannot be expressed.
 *  - access(): through the MMU; a #PF is delivered to Xen and bounced to the
 *    guest (charged as a bounce); the guest's segments end below the hole.
 */
import { hex } from '../../emulator/hex.js';
import { CC_BOUNCE, type KernelFigure } from '../../emulator/cost-model.js';
import { ACCESS_WRITE, PFEC_P, PFEC_U, PFEC_W, PTE_P, PTE_PS, PTE_RW, type AccessKind } from '../../emulator/paging-bits.js';
import type { AccessResult, LazyMode, MachineConfig, MmHandle, ParavirtOps } from '../paravirt-ops.js';
import { pteFromWords, pteHi, pteLo, pteSplit, type GuestPhys, type Pfn, type PteVal, type VirtAddr } from '../types.js';
import {
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L2_TABLE,
  MMUEXT_PIN_L3_TABLE,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_UNPIN_TABLE,
  reservedTopFor,
  VMASST_CMD_ENABLE,
  VMASST_TYPE_WRITABLE_PAGETABLES,
} from './abi.js';
import { XenDomain, type XenOptions } from './domain.js';
import { XenGuestMemory } from './guest-memory.js';
import { XenHypercalls, type MmuextOp, type MulticallEntry } from './hypercalls.js';
import { R, XenRefusal, type LogLine } from './reasons.js';
import { XenStats } from './stats.js';
import { zeroPrefix } from './zero-scan.js';

const U32 = 0xffffffffn;
const ANNOUNCED_PT = 1;
const ANNOUNCED_PD = 2;

export class XenBackend implements ParavirtOps {
  readonly name = 'xen';
  readonly paravirtEnabled = true;
  readonly kernelRpl = 1;
  readonly sharedKernelPmd = false;
  readonly largePagesAllowed = false;
  /** Xen 3.0 refuses _PAGE_GLOBAL in guest entries (and hides PGE from the guest's CPUID). */
  readonly globalPagesAllowed = false;
  readonly reservedTop: number;
  readonly config: MachineConfig;
  readonly domain: XenDomain;
  /** The hypercall interface (tests and tools may call it directly, as a hostile guest would). */
  readonly hv: XenHypercalls;
  readonly mem: XenGuestMemory;
  readonly stats: XenStats;
  /** Releases of frames never announced (the seed's pgd_dtor bug); the invariant checker reports them. */
  readonly unbalancedReleases: { pfn: number; what: 'release_pt' | 'release_pd' }[] = [];

  private readonly pae: boolean;
  private readonly esz: number;
  private lazyMode: LazyMode = 'none';
  private batch: MulticallEntry[] = [];
  // Per-pfn flags in typed arrays, not Sets/Maps: the same pfns come and go
  // on every fork and exit, and V8's hash tables slow down under that churn
  // (deleted entries stay in their bucket chains until a rehash).
  /** Linux's PG_pinned: page-table pages of pinned trees (1 by pfn). */
  private readonly pinnedPages: Uint8Array;
  /** pgds this guest pinned (1 by pfn). */
  private readonly pinnedRoots: Uint8Array;
  /** Pages announced with alloc_pt (ANNOUNCED_PT) or alloc_pd / alloc_pd_clone (ANNOUNCED_PD), by pfn. */
  private readonly announced: Uint8Array;
  private swapperPfn = -1;
  /** pgdWalk's dedup marks (the walk's stamp by pfn) and the current stamp. */
  private readonly walkSeen: Int32Array;
  private walkStamp = 0;
  /** directMapEntry's second result: the index of the entry in the L1. */
  private dmIdx = 0;

  constructor(config: MachineConfig, opts: XenOptions = {}) {
    this.config = { ...config };
    this.pae = config.pae;
    this.esz = config.pae ? 8 : 4;
    this.domain = new XenDomain(this.config, opts);
    this.hv = new XenHypercalls(this.domain);
    this.mem = new XenGuestMemory(this.domain, this.hv);
    this.pinnedPages = new Uint8Array(this.mem.nrPages);
    this.pinnedRoots = new Uint8Array(this.mem.nrPages);
    this.announced = new Uint8Array(this.mem.nrPages);
    this.walkSeen = new Int32Array(this.mem.nrPages);
    this.stats = this.domain.stats;
    this.reservedTop = reservedTopFor(this.pae);
    // xen_start_kernel: HYPERVISOR_vm_assist(VMASST_CMD_enable, VMASST_TYPE_writable_pagetables).
    this.check(this.hv.vm_assist(VMASST_CMD_ENABLE, VMASST_TYPE_WRITABLE_PAGETABLES).refusal);
  }

  /** Current lazy mode. */
  get lazy(): LazyMode {
    return this.lazyMode;
  }

  /** Pages this guest has pinned (PG_pinned), for tests and tools. */
  isPinnedPage(pfn: Pfn): boolean {
    return this.pinnedPages[pfn] === 1;
  }

  // ---- helpers ----

  private check(refusal: XenRefusal | undefined): void {
    if (refusal !== undefined) throw refusal;
  }

  /** A refusal by the guest-side port itself (the request cannot be expressed to Xen). */
  private guestRefuse(l: LogLine, op: string, mfn?: number): never {
    const r = new XenRefusal([l], op, mfn);
    this.stats.count('refusals', r.rule);
    throw r;
  }

  private mfnOf(pfn: number, op: string): number {
    const mfn = Number.isInteger(pfn) ? this.domain.p2m.pfnToMfn(pfn) : -1;
    if (mfn < 0) throw new RangeError(`${op}: pfn 0x${Number(pfn).toString(16)} outside guest memory`);
    return mfn;
  }

  /** Machine address of the entry at guest-physical `gpa` (entry-aligned). */
  private entryMa(gpa: number, op: string): number {
    // Fast path: an aligned integer address below 4 GiB in guest memory (the same result as below).
    if ((gpa >>> 0) === gpa && (gpa & (this.esz - 1)) === 0) {
      const mfn = this.domain.p2m.pfnToMfn(gpa >>> 12);
      if (mfn >= 0) return mfn * 4096 + (gpa & 0xfff);
    }
    if (!Number.isInteger(gpa) || gpa % this.esz !== 0) {
      throw new Error(`${op}: entry address 0x${Number(gpa).toString(16)} not ${this.esz}-byte aligned`);
    }
    const pfn = Math.floor(gpa / 4096);
    return this.mfnOf(pfn, op) * 4096 + (gpa - pfn * 4096);
  }

  private checkValue(v: PteVal, op: string): void {
    if (v < 0n || v > (this.pae ? 0xffffffffffffffffn : U32)) {
      throw new RangeError(`${op}: value 0x${v.toString(16)} does not fit a ${this.pae ? 'PAE' : '2-level'} entry`);
    }
  }

  private isTyped(ma: number): boolean {
    return this.domain.frames.isPageTable(Math.floor(ma / 4096));
  }

  private ext(op: MmuextOp): void {
    if (this.lazyMode !== 'none') {
      this.batch.push({ op: 'mmuext_op', ops: [op] });
      return;
    }
    this.check(this.hv.mmuext_op([op]).refusal);
  }

  /** An entry update Xen must see: mmu_update (queued in lazy mode); a plain store if the frame is not typed. */
  private update(gpa: GuestPhys, v: PteVal, op: string): void {
    this.checkValue(v, op);
    const ma = this.entryMa(gpa, op);
    if (!this.isTyped(ma)) {
      this.plainStore(ma, v);
      return;
    }
    const req = { ptr: ma, val: v };
    if (this.lazyMode !== 'none') {
      this.batch.push({ op: 'mmu_update', reqs: [req] });
      return;
    }
    this.check(this.hv.mmu_update([req]).refusal);
  }

  /**
   * store() into a frame known not to be a page table (at machine address
   * `ma` of an aligned entry): nothing can trap, so the words go straight
   * into the frame, high word first, as store()'s two write32s would.
   */
  private plainStore(ma: number, v: PteVal): void {
    const mfn = Math.floor(ma / 4096);
    const f = this.domain.mmu.mem.frameW(mfn);
    const w = (ma - mfn * 4096) >>> 2;
    const x = pteSplit(v);
    if (this.pae) f[w + 1] = x[1]!;
    f[w] = x[0]!;
    this.domain.guestWork(this.domain.mmu.preset.cycles.pteStore, 'kernel'); // the guest's store, as native set_pte
  }

  /** Plain stores through the direct map (xen_set_pte: high word first); they trap if the L1 is typed. */
  private store(gpa: GuestPhys, v: PteVal): void {
    this.domain.guestWork(this.domain.mmu.preset.cycles.pteStore, 'kernel'); // the store itself (a trap is charged on top)
    if (this.pae) {
      this.mem.write32(gpa + 4, pteHi(v));
      this.mem.write32(gpa, pteLo(v));
    } else this.mem.write32(gpa, pteLo(v));
  }

  // ---- control registers and TLB ----

  read_cr2(): VirtAddr {
    return this.domain.mmu.cpu.cr2;
  }

  read_cr3(): GuestPhys {
    const base = this.domain.baseMfn;
    return base < 0 ? 0 : this.domain.p2m.mfnToPfn(base) * 4096;
  }

  /** xen_write_cr3: MMUEXT_NEW_BASEPTR (Xen loads the machine CR3). */
  write_cr3(pgd: GuestPhys): void {
    const pfn = this.pgdPfn(pgd, 'write_cr3');
    this.flushBatch();
    this.check(this.hv.mmuext_op([{ cmd: MMUEXT_NEW_BASEPTR, mfn: this.mfnOf(pfn, 'write_cr3') }]).refusal);
  }

  flush_tlb_user(): void {
    this.ext({ cmd: MMUEXT_TLB_FLUSH_LOCAL });
  }

  /** No global pages under Xen: the local flush covers the kernel too. */
  flush_tlb_kernel(): void {
    this.ext({ cmd: MMUEXT_TLB_FLUSH_LOCAL });
  }

  flush_tlb_single(va: VirtAddr): void {
    this.ext({ cmd: MMUEXT_INVLPG_LOCAL, linearAddr: va >>> 0 });
  }

  // ---- page-table page lifecycle ----

  alloc_pt(pfn: Pfn): void {
    this.mfnOf(pfn, 'alloc_pt');
    this.announced[pfn] = ANNOUNCED_PT;
    this.setDirectMap([pfn], false);
  }

  alloc_pd(pfn: Pfn): void {
    this.mfnOf(pfn, 'alloc_pd');
    this.announced[pfn] = ANNOUNCED_PD;
    this.setDirectMap([pfn], false);
  }

  alloc_pd_clone(pfn: Pfn, _clonePfn: Pfn, _start: number, _count: number): void {
    this.alloc_pd(pfn);
  }

  release_pt(pfn: Pfn): void {
    this.release(pfn, 'release_pt', 'pt');
  }

  release_pd(pfn: Pfn): void {
    this.release(pfn, 'release_pd', 'pd');
  }

  private release(pfn: Pfn, what: 'release_pt' | 'release_pd', kind: 'pt' | 'pd'): void {
    const mfn = this.mfnOf(pfn, what);
    if (this.announced[pfn] !== (kind === 'pt' ? ANNOUNCED_PT : ANNOUNCED_PD)) {
      this.unbalancedReleases.push({ pfn, what });
      this.guestRefuse(R.releaseNeverAllocated(what, mfn, pfn), `paravirt ${what}`, mfn);
    }
    this.flushBatch();
    this.setDirectMap([pfn], true);
    this.announced[pfn] = 0;
    // ClearPagePinned (xen_release_ptpage): the freed page may come back as
    // another tree's page table, which pin() must make read-only again (found
    // by the differential fuzzer, seed 1525: a freed pte page reused as a pgd
    // was left writable and MMUEXT_PIN_L3_TABLE refused it).
    this.pinnedPages[pfn] = 0;
  }

  // ---- entry updates ----

  set_pte(ptep: GuestPhys, pte: PteVal): void {
    this.checkValue(pte, 'set_pte');
    const ma = this.entryMa(ptep, 'set_pte');
    if (this.lazyMode !== 'none' && this.isTyped(ma)) {
      this.batch.push({ op: 'mmu_update', reqs: [{ ptr: ma, val: pte }] });
      return;
    }
    // Over a present PAE entry, one 64-bit store (no torn intermediate entry).
    if (this.pae && (this.domain.mmu.mem.word(Math.floor(ma / 4096), (ma % 4096) / 4) & PTE_P) !== 0) {
      this.mem.write64(ptep, pte);
    } else this.store(ptep, pte);
  }

  set_pte_at(_mm: MmHandle, _va: VirtAddr, ptep: GuestPhys, pte: PteVal): void {
    this.update(ptep, pte, 'set_pte_at');
  }

  /**
   * set_pte_at with the value as two words (ParavirtOps.set_pte_at_words):
   * into a frame that is not a page table, the plain store update() would
   * do; otherwise (or a 2-level value that does not fit) exactly set_pte_at.
   */
  set_pte_at_words(mm: MmHandle, va: VirtAddr, ptep: GuestPhys, lo: number, hi: number): void {
    if (this.pae || hi === 0) {
      const ma = this.entryMa(ptep, 'set_pte_at');
      if (!this.isTyped(ma)) {
        // plainStore(ma, v): high word first.
        const mfn = Math.floor(ma / 4096);
        const f = this.domain.mmu.mem.frameW(mfn);
        const w = (ma - mfn * 4096) >>> 2;
        if (this.pae) f[w + 1] = hi;
        f[w] = lo;
        this.domain.guestWork(this.domain.mmu.preset.cycles.pteStore, 'kernel'); // as plainStore
        return;
      }
    }
    this.set_pte_at(mm, va, ptep, pteFromWords(lo, hi));
  }

  /** set_64bit: one 8-byte store (one trap when the L1 is typed). */
  set_pte_atomic(ptep: GuestPhys, pte: PteVal): void {
    this.checkValue(pte, 'set_pte_atomic');
    const ma = this.entryMa(ptep, 'set_pte_atomic');
    if (this.lazyMode !== 'none' && this.isTyped(ma)) {
      this.batch.push({ op: 'mmu_update', reqs: [{ ptr: ma, val: pte }] });
      return;
    }
    this.mem.write64(ptep, pte);
  }

  set_pte_present(_mm: MmHandle, _va: VirtAddr, ptep: GuestPhys, pte: PteVal): void {
    this.update(ptep, pte, 'set_pte_present');
  }

  set_pmd(pmdp: GuestPhys, pmd: PteVal): void {
    this.update(pmdp, pmd, 'set_pmd');
  }

  set_pud(pudp: GuestPhys, pud: PteVal): void {
    this.update(pudp, pud, 'set_pud');
  }

  /** xen_pte_clear: low word first (the entry goes not-present), then the high word. */
  pte_clear(_mm: MmHandle, _va: VirtAddr, ptep: GuestPhys): void {
    const ma = this.entryMa(ptep, 'pte_clear');
    const typed = this.isTyped(ma);
    if (this.lazyMode !== 'none' && typed) {
      this.batch.push({ op: 'mmu_update', reqs: [{ ptr: ma, val: 0n }] });
      return;
    }
    if (!typed) {
      // Not a page table: the two stores below cannot trap; low word first, as they do.
      const mfn = Math.floor(ma / 4096);
      const f = this.domain.mmu.mem.frameW(mfn);
      const w = (ma - mfn * 4096) >>> 2;
      f[w] = 0;
      if (this.pae) f[w + 1] = 0;
      return;
    }
    this.mem.write32(ptep, 0);
    if (this.pae) this.mem.write32(ptep + 4, 0);
  }

  pmd_clear(pmdp: GuestPhys): void {
    this.update(pmdp, 0n, 'pmd_clear');
  }

  /** The processor's A/D updates land in the machine entries; nothing to tell Xen. */
  pte_update(_mm: MmHandle, _va: VirtAddr, _ptep: GuestPhys): void {}
  pte_update_defer(_mm: MmHandle, _va: VirtAddr, _ptep: GuestPhys): void {}

  // ---- entry values: pfn <-> mfn ----

  make_pte(v: PteVal): PteVal {
    return this.domain.p2m.toMachine(v);
  }
  pte_val(v: PteVal): PteVal {
    return this.domain.p2m.toPseudo(v);
  }
  /** entryPfn(pte_val(v)) from v's two words (no BigInt): see ParavirtOps.pte_val_pfn. */
  pte_val_pfn(lo: number, hi: number): number {
    return this.domain.p2m.pseudoFrameOf(lo, hi);
  }
  make_pmd(v: PteVal): PteVal {
    return this.domain.p2m.toMachine(v);
  }
  pmd_val(v: PteVal): PteVal {
    return this.domain.p2m.toPseudo(v);
  }
  make_pgd(v: PteVal): PteVal {
    return this.domain.p2m.toMachine(v);
  }
  pgd_val(v: PteVal): PteVal {
    return this.domain.p2m.toPseudo(v);
  }

  // ---- mm lifecycle: pinning ----

  pagetable_setup_start(base: GuestPhys): void {
    this.swapperPfn = this.pgdPfn(base, 'pagetable_setup_start');
  }

  /** xen_pagetable_setup_done: pin swapper_pg_dir (its whole tree, kernel ptes included). */
  pagetable_setup_done(base: GuestPhys): void {
    this.swapperPfn = this.pgdPfn(base, 'pagetable_setup_done');
    this.pin(this.swapperPfn, 'pagetable_setup_done', true);
  }

  activate_mm(_prev: MmHandle | null, next: MmHandle): void {
    this.pin(this.pgdPfn(next.pgd, 'activate_mm'), 'activate_mm', false);
  }

  dup_mmap(_oldmm: MmHandle, mm: MmHandle): void {
    this.pin(this.pgdPfn(mm.pgd, 'dup_mmap'), 'dup_mmap', false);
  }

  /** xen_exit_mmap: drop the mm from the CPU if loaded (load swapper), unpin, pages read-write again. */
  exit_mmap(mm: MmHandle): void {
    const pfn = this.pgdPfn(mm.pgd, 'exit_mmap');
    if (this.pinnedRoots[pfn] !== 1) return;
    this.flushBatch();
    const mfn = this.mfnOf(pfn, 'exit_mmap');
    if (this.domain.baseMfn === mfn && this.swapperPfn >= 0 && this.swapperPfn !== pfn) {
      this.check(this.hv.mmuext_op([{ cmd: MMUEXT_NEW_BASEPTR, mfn: this.mfnOf(this.swapperPfn, 'exit_mmap') }]).refusal);
    }
    this.check(this.hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn }]).refusal);
    this.pinnedRoots[pfn] = 0;
    const pages = this.pgdWalk(pfn, pfn === this.swapperPfn);
    for (const p of pages) this.pinnedPages[p] = 0;
    // unpin_page: back to read-write (the frames Xen no longer holds as page tables).
    this.setDirectMap(
      pages.filter((p) => !this.domain.frames.isPageTable(this.domain.p2m.pfnToMfn(p))),
      true,
    );
  }

  /** The pfn of a pgd, which must be a whole page (offset 0 of its frame). */
  private pgdPfn(gpa: GuestPhys, op: string): number {
    if (!Number.isInteger(gpa) || gpa < 0) throw new RangeError(`${op}: bad pgd address ${gpa}`);
    const pfn = Math.floor(gpa / 4096);
    const mfn = this.mfnOf(pfn, op);
    if (gpa % 4096 !== 0) this.guestRefuse(R.pgdNotAtOffset0(gpa), `paravirt ${op}`, mfn);
    return pfn;
  }

  /**
   * xen_pgd_pin: make every page-table page of the tree read-only in the
   * direct map (one multicall), then MMUEXT_PIN_L3_TABLE (PAE) /
   * PIN_L2_TABLE (2-level). On a refusal the pages go back to read-write
   * and the refusal is thrown.
   */
  private pin(pfn: number, op: string, full: boolean): void {
    if (this.pinnedRoots[pfn] === 1) return;
    this.flushBatch();
    const pages = this.pgdWalk(pfn, full).filter((p) => this.pinnedPages[p] !== 1);
    const changed = this.setDirectMap(pages, false);
    const mfn = this.mfnOf(pfn, op);
    const r = this.hv.mmuext_op([{ cmd: this.pae ? MMUEXT_PIN_L3_TABLE : MMUEXT_PIN_L2_TABLE, mfn }]);
    if (r.refusal !== undefined) {
      this.setDirectMap(changed, true);
      throw r.refusal;
    }
    for (const p of pages) this.pinnedPages[p] = 1;
    this.pinnedRoots[pfn] = 1;
  }

  /**
   * The page-table pages of the pgd at `pfn` (pgd_walk): the pgd, its pmds
   * (PAE) and the pte pages of the user part; with `full` (swapper) also the
   * kernel's pte pages up to the hole.
   */
  private pgdWalk(pfn: number, full: boolean): number[] {
    const d = this.domain;
    const mem = d.mmu.mem;
    const pae = this.pae;
    // The pfns in first-seen order without duplicates (what a Set's insertion
    // order gives), deduplicated with a per-pfn stamp instead of a Set: this
    // runs on every pin and exit_mmap.
    const out: number[] = [];
    const seen = this.walkSeen;
    const stamp = this.walkStamp === 0x7fffffff ? this.resetWalkStamp() : ++this.walkStamp;
    const add = (p: number): void => {
      if (seen[p] !== stamp) {
        seen[p] = stamp;
        out.push(p);
      }
    };
    add(pfn);
    const root = d.p2m.pfnToMfn(pfn);
    if (pae) {
      const userSlots = this.config.pageOffset >>> 30;
      for (let s = 0; s < 4; s++) {
        const lo = mem.word(root, 2 * s);
        if ((lo & PTE_P) === 0) continue;
        const epfn = d.p2m.mfnToPfn(d.rules.frameOf(lo, mem.word(root, 2 * s + 1)));
        if (epfn < 0) continue;
        add(epfn);
        if (!full && s >= userSlots) continue;
        this.walkTable(d.p2m.pfnToMfn(epfn), s === 3 ? d.hole.firstSlot : 512, add);
      }
    } else {
      this.walkTable(root, full ? d.hole.firstSlot : this.config.pageOffset >>> 22, add);
    }
    return out;
  }

  /** pgdWalk's table scan: each present, non-PS entry of the first `limit` whose frame is the guest's adds its pfn. */
  private walkTable(mfn: number, limit: number, add: (p: number) => void): void {
    // Entries are read straight from the frame (no object per entry).
    const d = this.domain;
    const f = d.mmu.mem.frame(mfn);
    if (zeroPrefix(f, this.pae ? limit * 2 : limit)) return; // nothing present (most user pmds)
    if (this.pae) {
      const end = limit * 2;
      for (let w = 0; w < end; w += 2) {
        const lo = f[w]!;
        if ((lo & (PTE_P | PTE_PS)) !== PTE_P) continue; // present, not a large page
        const p = d.p2m.mfnToPfn((f[w + 1]! & 0xfffff) * 0x100000 + (lo >>> 12)); // rules.frameOf (PAE)
        if (p >= 0) add(p);
      }
    } else {
      for (let w = 0; w < limit; w++) {
        const lo = f[w]!;
        if ((lo & (PTE_P | PTE_PS)) !== PTE_P) continue;
        const p = d.p2m.mfnToPfn(lo >>> 12); // rules.frameOf (2-level)
        if (p >= 0) add(p);
      }
    }
  }

  private resetWalkStamp(): number {
    this.walkSeen.fill(0);
    this.walkStamp = 1;
    return 1;
  }

  /**
   * Where the direct map (PAGE_OFFSET + pfn << 12) maps `pfn`: the L1 frame
   * (returned) and the index (left in `dmIdx`), walking swapper_pg_dir (or
   * the loaded pgd before swapper is known); -1 if there is no such L1.
   * (Two numbers rather than an object: this runs for every pfn of every
   * make_lowmem_page_readonly / _readwrite.)
   */
  private directMapEntry(pfn: number): number {
    const d = this.domain;
    const va = this.config.pageOffset + pfn * 4096;
    if (va >= d.hole.start) return -1;
    const root = this.swapperPfn >= 0 ? d.p2m.pfnToMfn(this.swapperPfn) : d.baseMfn;
    if (root < 0) return -1;
    const mem = d.mmu.mem;
    const rules = d.rules;
    let l2 = root;
    if (this.pae) {
      const i3 = va >>> 30;
      const lo3 = mem.word(root, 2 * i3);
      const m3 = rules.frameOf(lo3, mem.word(root, 2 * i3 + 1));
      if ((lo3 & PTE_P) === 0 || !d.p2m.isGuestMfn(m3)) return -1;
      l2 = m3;
      const i2 = (va >>> 21) & 511;
      const lo2 = mem.word(l2, 2 * i2);
      const m2 = rules.frameOf(lo2, mem.word(l2, 2 * i2 + 1));
      if ((lo2 & PTE_P) === 0 || (lo2 & PTE_PS) !== 0 || !d.p2m.isGuestMfn(m2)) return -1;
      this.dmIdx = (va >>> 12) & 511;
      return m2;
    }
    const lo2 = mem.word(l2, va >>> 22);
    const m2 = rules.frameOf(lo2, 0);
    if ((lo2 & PTE_P) === 0 || (lo2 & PTE_PS) !== 0 || !d.p2m.isGuestMfn(m2)) return -1;
    this.dmIdx = (va >>> 12) & 1023;
    return m2;
  }

  /**
   * make_lowmem_page_readonly / _readwrite for each pfn: change RW in its
   * direct-map pte. Entries in typed L1s go to Xen as one multicall (with a
   * local TLB flush); others are plain stores. Returns the pfns changed.
   * Throws the first refusal (e.g. read-write for a frame still typed).
   */
  private setDirectMap(pfns: readonly number[], rw: boolean): number[] {
    const d = this.domain;
    const mem = d.mmu.mem;
    const changed: number[] = [];
    const calls: MulticallEntry[] = [];
    for (let k = 0; k < pfns.length; k++) {
      const pfn = pfns[k]!;
      const l1 = this.directMapEntry(pfn);
      if (l1 < 0) continue;
      const idx = this.dmIdx;
      const w = this.pae ? 2 * idx : idx;
      const lo = mem.word(l1, w);
      const hi = this.pae ? mem.word(l1, w + 1) : 0;
      if ((lo & PTE_P) === 0 || d.rules.frameOf(lo, hi) !== d.p2m.pfnToMfn(pfn)) continue;
      if (((lo & PTE_RW) !== 0) === rw) continue;
      const nlo = rw ? lo | PTE_RW : lo & ~PTE_RW;
      changed.push(pfn);
      if (d.frames.isPageTable(l1)) {
        const val = pteFromWords(nlo, hi); // (BigInt(hi >>> 0) << 32n) | BigInt(nlo >>> 0)
        calls.push({ op: 'mmu_update', reqs: [{ ptr: l1 * 4096 + idx * this.esz, val }] });
      } else mem.setWord(l1, w, nlo);
    }
    if (changed.length > 0 && d.baseMfn >= 0) calls.push({ op: 'mmuext_op', ops: [{ cmd: MMUEXT_TLB_FLUSH_LOCAL }] });
    if (calls.length === 1) {
      const c = calls[0]!;
      const r = c.op === 'mmu_update' ? this.hv.mmu_update(c.reqs) : this.hv.mmuext_op((c as { ops: MmuextOp[] }).ops);
      this.check(r.refusal);
    } else if (calls.length > 1) {
      this.hv.multicall(calls);
      for (const c of calls) this.check(c.refusal);
    }
    return changed;
  }

  // ---- lazy MMU mode ----

  set_lazy_mode(mode: LazyMode): void {
    if (mode === 'none') this.flushBatch();
    this.lazyMode = mode;
  }

  lazy_flush(): void {
    this.flushBatch();
  }

  /** xen_mc_flush: issue the queued updates as one multicall; a failed entry is the guest's BUG. */
  private flushBatch(): void {
    if (this.batch.length === 0) return;
    const entries = this.batch;
    this.batch = [];
    this.hv.multicall(entries);
    for (const e of entries) this.check(e.refusal);
  }

  // ---- the kernel's own work (costs: domain.ts, hypercalls.ts) ----

  cpu_figure(name: KernelFigure): number {
    return this.domain.mmu.preset.cycles[name];
  }
  kernel_work(cycles: number, component: 'kernel' | 'page_copy'): void {
    this.domain.guestWork(cycles, component);
  }
  /** int $0x80 goes through the trap table straight to the guest kernel; the return is HYPERVISOR_iret. */
  syscall(): void {
    this.domain.guestWork(this.domain.mmu.preset.cycles.syscall, 'kernel');
    this.hv.iret();
  }

  // ---- the processor ----

  access(va: VirtAddr, kind: AccessKind, user: boolean): AccessResult {
    va >>>= 0;
    const d = this.domain;
    if (va >= d.hole.start) {
      // The guest's segments end below HYPERVISOR_VIRT_START: the fault goes to Xen and is bounced.
      const at = d.mmu.cycles;
      d.stats.count('traps', 'segment_limit_fault');
      d.charge(d.costs.bouncedFault, CC_BOUNCE);
      if (d.stats.listener !== null) d.stats.slice('trap', 'segment_limit_fault', at, { va: hex(va) });
      this.hv.iret(); // the guest handler's return (2.6.23: the iret hypercall)
      // Xen bounces it as a page fault at `va` (propagate_page_fault writes the
      // guest's virtual CR2), so do_page_fault's read_cr2 must see this address,
      // not the previous fault's (found by the differential fuzzer, seed 1065).
      d.mmu.cpu.cr2 = va;
      return { ok: false, errorCode: this.holeErrorCode(kind, user), cr2: va };
    }
    const at = d.mmu.cycles;
    const r = d.mmu.access(va, kind, user);
    if (r < 0) {
      d.stats.count('traps', 'page_fault_bounce');
      d.charge(d.costs.bounceExtra, CC_BOUNCE);
      if (d.stats.listener !== null) d.stats.slice('trap', 'page_fault_bounce', at, { va: hex(va), errorCode: hex(-1 - r) });
      this.hv.iret(); // the guest handler's return (2.6.23: the iret hypercall)
      return { ok: false, errorCode: -1 - r, cr2: d.mmu.cpu.cr2 };
    }
    return { ok: true, gpa: this.gpaOf(r) };
  }

  probe(va: VirtAddr, kind: AccessKind, user: boolean): AccessResult {
    va >>>= 0;
    if (va >= this.domain.hole.start) return { ok: false, errorCode: this.holeErrorCode(kind, user), cr2: va };
    const r = this.domain.mmu.probePa(va, kind * 2 + (user ? 1 : 0));
    if (r < 0) return { ok: false, errorCode: -1 - r, cr2: va };
    return { ok: true, gpa: this.gpaOf(r) };
  }

  private holeErrorCode(kind: AccessKind, user: boolean): number {
    return PFEC_P | (kind === ACCESS_WRITE ? PFEC_W : 0) | (user ? PFEC_U : 0);
  }

  private gpaOf(pa: number): GuestPhys {
    const mfn = Math.floor(pa / 4096);
    const pfn = this.domain.p2m.mfnToPfn(mfn);
    if (pfn < 0) throw new Error(`Xen model: the guest reached machine frame 0x${mfn.toString(16)}, which it does not own`);
    return pfn * 4096 + (pa - mfn * 4096);
  }
}
