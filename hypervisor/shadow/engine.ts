/**
 * The shadow-paging engine shared by the VMI and lguest backends: the
 * hypervisor keeps the page tables the processor really walks ("shadow"
 * tables, in machine frames above the guest's memory) and builds them from
 * the guest's own tables, which the guest writes as plain memory.
 *
 * The mechanism, as lguest's drivers/lguest/page_tables.c (2.6.23) does it
 * and as VMware's VMI hypervisor does it behind the ROM calls:
 *  - shadow creation: a shadow top level per guest top level (pgd, or the PAE
 *    pdpt), built empty (page_tables.c new_pgdir/init_guest_pagetable); under
 *    PAE the guest's PDPTEs are read when the guest loads CR3 (the hardware
 *    rule) and each present one gets an (empty) shadow pmd page;
 *  - hidden page faults: a #PF of the processor on the shadow is taken by the
 *    hypervisor, which walks the guest's tables for the address
 *    (page_tables.c demand_page): if the guest's tables allow the access, the
 *    shadow entries are filled (a shadow pte page allocated on demand) and the
 *    access retried: the guest never sees the fault;
 *  - A/D propagation: the fill sets A in the guest's entries, and D in the
 *    guest pte for a write (demand_page: pte_mkyoung, pte_mkdirty, lgwrite);
 *    a shadow pte is writable only once the guest pte is dirty, so the first
 *    write to a clean page faults again (hidden) and sets D;
 *  - the guest's own page faults are reflected: when the guest's tables do
 *    not allow the access, the guest gets the #PF its own tables would have
 *    raised (error code from the walk of the guest's tables, CR2 the address);
 *  - a CR3 write switches shadows: a cached shadow for that guest top level
 *    is reused, otherwise one is built (or a cached one recycled);
 *  - the guest's page-table pages are announced (VMI allocate_page /
 *    release_page, pte updates announced; lguest's LHCALL_SET_PTE/SET_PMD):
 *    an announced change drops the shadow entries built from the old guest
 *    entry (the next access refills them, page_tables.c "we can simply remove
 *    shadow page table entries whenever the Guest tells us they've changed").
 *    A reverse map from guest table frames to the shadow pages built from
 *    them finds those entries.
 *
 * Guest frames are machine frames of the same number (the guest-physical to
 * machine map is the identity: lguest's Launcher offset and VMware's
 * physical-to-machine map are not modelled); shadow pages live in machine
 * frames from the guest's size upward and never appear in a guest mapping:
 * a guest entry naming a frame outside guest memory is refused (lguest
 * check_gpte/check_gpgd "bad page table entry").
 *
 * Costs: the hardware #PF of a hidden fault is charged by the MMU
 * (`exception`), the engine's own work per shadow/costs.ts (`validation`,
 * `bounce`), the world switch around it by the backend.
 */
import { CC_BOUNCE, CC_VALIDATION } from '../../emulator/cost-model.js';
import { hex } from '../../emulator/hex.js';
import { Mmu } from '../../emulator/mmu.js';
import {
  ACCESS_FETCH,
  ACCESS_WRITE,
  PFEC_ID,
  PFEC_U,
  PFEC_W,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_NX_HI,
  PTE_P,
  PTE_PCD,
  PTE_PS,
  PTE_PWT,
  PTE_RW,
  PTE_US,
} from '../../emulator/paging-bits.js';
import { enablePaging, type PagingFeatures } from '../machine.js';
import type { MachineConfig } from '../paravirt-ops.js';
import { HypervisorRefusal } from '../types.js';
import type { ShadowCosts } from './costs.js';

/** ptMfn values that are not a shadow pte page. */
const EMPTY = -1;
const LARGE = -2;
/** Shadow pde flags copied from the guest pde (the rest is the hypervisor's). */
const PDE_COPY = PTE_P | PTE_RW | PTE_US | PTE_PWT | PTE_PCD | PTE_A;
const PDPTE_COPY = PTE_P | PTE_PWT | PTE_PCD;

/** One shadow top level: the tables the processor walks while the guest runs on `guestRoot`. */
export class Shadow {
  /** Machine frame of the shadow pgd (2-level) or shadow pdpt (PAE). */
  rootMfn = -1;
  /** Shadow pmd page per PDPTE slot (PAE), or [rootMfn] (2-level); -1 none. */
  readonly pdMfn = new Int32Array(4).fill(-1);
  /** The guest page-directory frame each slot shadows (PAE: the guest's pmd; 2-level: the guest's pgd). */
  readonly pdGuest = new Int32Array(4).fill(-1);
  /** Per pde index (PAE: slot * 512 + index): shadow pte page, EMPTY or LARGE. */
  readonly ptMfn: Int32Array;
  /** Per pde index: the guest pte page the shadow pte page was built from. */
  readonly ptGuest: Int32Array;
  /** No longer reachable by its root (released or changed while loaded): destroyed at the next switch. */
  stale = false;

  constructor(
    readonly id: number,
    public guestRoot: number,
    nPde: number,
  ) {
    this.ptMfn = new Int32Array(nPde).fill(EMPTY);
    this.ptGuest = new Int32Array(nPde).fill(-1);
  }
}

export interface ShadowOptions {
  /** Name used in refusals and errors ("lguest", "vmi"). */
  who: string;
  /** Keep _PAGE_GLOBAL in shadow entries (VMI); lguest's gpte_to_spte drops it. */
  keepGlobal: boolean;
  /** Guest large pages are shadowed as large pages; when false a PSE entry is a fatal guest error (lguest check_gpte). */
  largePages: boolean;
  /** The paging features the guest's (virtual) processor shows it. */
  guestFeatures: PagingFeatures;
  /** Cached shadows at most (bounded memory); a new one beyond recycles a victim. */
  maxShadows: number;
  /**
   * lguest new_pgdir: a recycled shadow keeps its kernel part (kernel mappings
   * are the same in every guest pgd) and drops only the user part. Otherwise
   * the victim is destroyed and the new shadow starts empty.
   */
  recycleKeepsKernel: boolean;
  /**
   * lguest check_gpgd: a present guest pgd entry with flags beyond
   * _PAGE_TABLE (e.g. _PAGE_PSE) is fatal when its shadow pte page is made,
   * before the guest pte is looked at (2-level).
   */
  strictPde?: boolean;
  /** Victim choice when full: lguest picks a random slot (random32(), seeded here); otherwise the oldest. */
  victim: 'random' | 'oldest';
  seed: number;
  /**
   * Whether the hypervisor knows entry `idx` of guest page directory `pdPfn`
   * (VMI: was told about it). An unknown entry is not shadowed: an access
   * through it is a fault the guest sees. Absent: the guest's tables are read
   * as they are (lguest).
   */
  pdeKnown?: (pdPfn: number, idx: number) => boolean;
  /** Count an event (hidden fault, shadow built, ...) in the backend's stats. */
  count: (kind: 'traps' | 'hypercalls', name: string) => void;
}

export class ShadowEngine {
  /** The guest's virtual processor: its CR3 (the guest's pgd), PDPTE registers, CR0.WP/CR4/EFER; walks the guest's tables. */
  readonly vcpu: Mmu;
  private readonly pae: boolean;
  private readonly esz: number;
  private readonly nPde: number;
  /** First pde index of the kernel part (PAGE_OFFSET). */
  private readonly kernelPde: number;
  private readonly nrPages: number;
  private readonly byRoot = new Map<number, Shadow>();
  private readonly byId = new Map<number, Shadow>();
  /** Guest pte page -> shadow pte pages built from it (keys id * 2048 + pde index). */
  private readonly rmapPt = new Map<number, number[]>();
  /** Guest page directory -> shadow slots built from it (keys id * 4 + slot). */
  private readonly rmapPd = new Map<number, number[]>();
  private nextId = 1;
  private current: Shadow | null = null;
  private readonly freeFrames: number[] = [];
  private nextFrame: number;
  private readonly frameLimit: number;
  /** Shadow pages in use (top levels, pmd pages, pte pages). */
  shadowPages = 0;
  /** Peak of shadowPages. */
  peakShadowPages = 0;
  private rng: number;

  constructor(
    /** The processor that walks the shadow tables. */
    readonly mmu: Mmu,
    private readonly config: MachineConfig,
    private readonly costs: ShadowCosts,
    private readonly opts: ShadowOptions,
  ) {
    this.pae = config.pae;
    this.esz = config.pae ? 8 : 4;
    this.nPde = config.pae ? 2048 : 1024;
    this.kernelPde = config.pae ? config.pageOffset >>> 21 : config.pageOffset >>> 22;
    this.nrPages = Math.floor(config.memBytes / 4096);
    this.nextFrame = this.nrPages;
    // Every shadow frame must be reachable from a 32-bit CR3 / 2-level entry.
    this.frameLimit = 1 << 20;
    if (this.nrPages + 64 > this.frameLimit) {
      throw new RangeError(
        `${opts.who}: ${config.memBytes} bytes of guest memory leave no machine frames below 4 GiB for the hypervisor's shadow page tables`,
      );
    }
    this.vcpu = new Mmu({ cpu: mmu.preset, mem: mmu.mem });
    this.rng = (opts.seed >>> 0) || 1;
  }

  /** The shadow the processor is on. */
  get active(): Shadow | null {
    return this.current;
  }
  /** Cached shadows (for tests and the invariant checker). */
  shadows(): Shadow[] {
    return [...this.byId.values()];
  }
  /** The guest's CR3 (guest-physical address of its top level). */
  get guestCr3(): number {
    return this.vcpu.cpu.cr3;
  }
  /** The shadow cached for a guest top level, if any (lguest find_pgdir). */
  find(guestRoot: number): Shadow | undefined {
    return this.byRoot.get(guestRoot);
  }

  // ---- frames ----

  private allocFrame(): number {
    let f = this.freeFrames.pop();
    if (f === undefined) {
      if (this.nextFrame >= this.frameLimit) throw new HypervisorRefusal('out of memory allocating a shadow page', this.opts.who);
      f = this.nextFrame++;
    }
    this.mmu.mem.zeroFrame(f);
    this.mmu.charge(this.costs.shadowPageClear, CC_VALIDATION);
    this.shadowPages++;
    if (this.shadowPages > this.peakShadowPages) this.peakShadowPages = this.shadowPages;
    return f;
  }

  private freeFrame(f: number): void {
    this.shadowPages--;
    this.freeFrames.push(f);
  }

  private writeEntry(addr: number, lo: number, hi: number): void {
    const mem = this.mmu.mem;
    if (this.pae) mem.write32(addr + 4, hi);
    mem.write32(addr, lo);
    this.mmu.charge(this.costs.shadowEntryWrite, CC_VALIDATION);
  }

  private static rmapAdd(m: Map<number, number[]>, pfn: number, key: number): void {
    const l = m.get(pfn);
    if (l === undefined) m.set(pfn, [key]);
    else l.push(key);
  }
  private static rmapDel(m: Map<number, number[]>, pfn: number, key: number): void {
    const l = m.get(pfn);
    if (l === undefined) return;
    const i = l.indexOf(key);
    if (i < 0) return;
    l[i] = l[l.length - 1]!;
    l.pop();
    if (l.length === 0) m.delete(pfn);
  }

  // ---- switching (CR3) ----

  /**
   * The guest loads `guestRoot` into CR3: its virtual CR3 (and, PAE, its
   * PDPTE registers) change, and the processor is put on the shadow for it:
   * a cached one, or a new (or recycled) one. Returns whether it was cached.
   */
  switchTo(guestRoot: number): boolean {
    const v = this.vcpu;
    if (!v.cpu.paging) enablePaging(v, this.config, guestRoot, this.opts.guestFeatures);
    else if (v.writeCr3(guestRoot) === 'GP') {
      throw new HypervisorRefusal(`the guest loaded CR3 ${hex(guestRoot)}: a present PDPTE has reserved bits set`, `${this.opts.who} write_cr3`);
    }
    const prev = this.current;
    let s = this.byRoot.get(guestRoot);
    const cached = s !== undefined;
    if (s === undefined) s = this.obtain(guestRoot);
    this.opts.count('traps', cached ? 'shadow_switch_cached' : 'shadow_switch_built');
    this.current = s;
    if (prev !== null && prev !== s && prev.stale) this.destroy(prev);
    this.loadHardware();
    return cached;
  }

  /** Reload the processor's CR3 with the current shadow (a world switch back into the guest, or a changed PDPT). */
  loadHardware(): void {
    const s = this.current;
    if (s === null) return;
    const m = this.mmu;
    const cr3 = s.rootMfn * 4096;
    if (!m.cpu.paging) {
      enablePaging(m, this.config, cr3, { pse: this.opts.largePages, pge: this.opts.keepGlobal, nx: this.opts.guestFeatures.nx ?? true });
    } else if (m.writeCr3(cr3) === 'GP') {
      throw new Error(`${this.opts.who}: #GP loading the shadow pdpt at ${hex(cr3)} (hypervisor bug)`);
    }
  }

  private obtain(guestRoot: number): Shadow {
    if (this.byRoot.size >= this.opts.maxShadows) {
      const victim = this.pickVictim();
      if (victim !== null) {
        if (this.opts.recycleKeepsKernel && !this.pae) return this.recycle(victim, guestRoot);
        if (victim === this.current) victim.stale = true;
        else this.destroy(victim);
        this.byRoot.delete(victim.guestRoot);
      }
    }
    return this.create(guestRoot);
  }

  private pickVictim(): Shadow | null {
    const all = [...this.byRoot.values()];
    if (all.length === 0) return null;
    if (this.opts.victim === 'random') {
      // xorshift32, seeded: lguest's random32() % ARRAY_SIZE(pgdirs), deterministic here.
      let x = this.rng;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.rng = x >>> 0;
      return all[this.rng % all.length]!;
    }
    for (const s of all) if (s !== this.current) return s;
    return null;
  }

  /** lguest new_pgdir reusing a slot: keep the kernel part, drop the user part, shadow a new guest pgd. */
  private recycle(s: Shadow, guestRoot: number): Shadow {
    this.byRoot.delete(s.guestRoot);
    ShadowEngine.rmapDel(this.rmapPd, s.pdGuest[0]!, s.id * 4);
    s.guestRoot = guestRoot;
    s.pdGuest[0] = Math.floor(guestRoot / 4096);
    ShadowEngine.rmapAdd(this.rmapPd, s.pdGuest[0]!, s.id * 4);
    s.stale = false;
    this.byRoot.set(guestRoot, s);
    this.flushUser(s);
    return s;
  }

  private create(guestRoot: number): Shadow {
    const s = new Shadow(this.nextId++, guestRoot, this.nPde);
    s.rootMfn = this.allocFrame();
    if (this.pae) {
      const cpu = this.vcpu.cpu;
      for (let i = 0; i < 4; i++) {
        const lo = cpu.pdpteLo[i]! >>> 0;
        if ((lo & PTE_P) === 0) continue;
        const pmd = (cpu.pdpteHi[i]! & 0xf) * 0x100000 + (lo >>> 12);
        this.checkFrame(pmd, 'bad page directory pointer entry');
        const pd = this.allocFrame();
        s.pdMfn[i] = pd;
        s.pdGuest[i] = pmd;
        this.writeEntry(s.rootMfn * 4096 + 8 * i, pd * 4096 + (lo & PDPTE_COPY), 0);
        ShadowEngine.rmapAdd(this.rmapPd, pmd, s.id * 4 + i);
      }
    } else {
      s.pdMfn[0] = s.rootMfn;
      s.pdGuest[0] = Math.floor(guestRoot / 4096);
      ShadowEngine.rmapAdd(this.rmapPd, s.pdGuest[0]!, s.id * 4);
    }
    this.byRoot.set(guestRoot, s);
    this.byId.set(s.id, s);
    return s;
  }

  /** Tear a shadow down: every shadow page it owns goes back. Never the loaded one (mark it stale instead). */
  destroy(s: Shadow): void {
    if (s === this.current) throw new Error(`${this.opts.who}: destroying the loaded shadow (hypervisor bug)`);
    for (let i = 0; i < this.nPde; i++) if (s.ptMfn[i] !== EMPTY) this.dropPde(s, i, false);
    for (let i = 0; i < 4; i++) {
      if (s.pdGuest[i]! >= 0) ShadowEngine.rmapDel(this.rmapPd, s.pdGuest[i]!, s.id * 4 + i);
      if (this.pae && s.pdMfn[i]! >= 0) this.freeFrame(s.pdMfn[i]!);
    }
    this.freeFrame(s.rootMfn);
    if (this.byRoot.get(s.guestRoot) === s) this.byRoot.delete(s.guestRoot);
    this.byId.delete(s.id);
    this.opts.count('traps', 'shadow_destroyed');
  }

  /** Forget the shadow of a guest top level (it stops being a page table, or its PDPTEs changed). */
  dropRoot(guestRoot: number): void {
    const s = this.byRoot.get(guestRoot);
    if (s === undefined) return;
    this.byRoot.delete(guestRoot);
    if (s === this.current) s.stale = true;
    else this.destroy(s);
  }

  // ---- hidden faults ----

  private checkFrame(pfn: number, what: string): void {
    if (pfn >= this.nrPages) throw new HypervisorRefusal(`${what}: frame ${hex(pfn)} is outside guest memory`, `${this.opts.who} demand_page`);
  }

  /** The #PF error code of a not-present fault for access class `acc`. */
  private notPresentCode(acc: number): number {
    const kind = acc >> 1;
    return (kind === ACCESS_WRITE ? PFEC_W : 0) | ((acc & 1) !== 0 ? PFEC_U : 0) | (kind === ACCESS_FETCH && this.pae && this.vcpu.cpu.nxe ? PFEC_ID : 0);
  }

  /**
   * The processor faulted at `va` on the shadow (a #PF into the hypervisor).
   * Returns -1 when the shadow was filled (retry the access: a hidden fault),
   * else the error code of the fault to reflect to the guest.
   */
  hiddenFault(va: number, acc: number): number {
    const s = this.current;
    if (s === null) throw new Error(`${this.opts.who}: a fault before the guest loaded a page table`);
    if (this.opts.strictPde === true && !this.pae && s.ptMfn[va >>> 22] === EMPTY) {
      const pde = this.mmu.mem.read32(s.pdGuest[0]! * 4096 + 4 * (va >>> 22)) >>> 0;
      const TABLE_FLAGS = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
      if ((pde & PTE_P) !== 0 && (pde & 0xfff & ~TABLE_FLAGS) !== 0) {
        throw new HypervisorRefusal(`bad page directory entry ${hex(pde)} (flags beyond _PAGE_TABLE${(pde & PTE_PS) !== 0 ? ': _PAGE_PSE' : ''})`, `${this.opts.who} demand_page`);
      }
    }
    // Walk the guest's tables as its processor would (A, and D for a write, set in its entries).
    const w = this.vcpu.walker;
    const ok = w.walk(va >>> 0, acc, true);
    this.mmu.charge(this.costs.guestEntryRead * w.depth, CC_VALIDATION);
    if (!ok) return this.reflect(w.errorCode);
    this.mmu.charge(this.costs.adWriteback, CC_VALIDATION);
    const mem = this.mmu.mem;
    const esz = this.esz;
    let pdeIdx: number;
    let gpd: number;
    let idx: number;
    let spdeAddr: number;
    if (this.pae) {
      pdeIdx = va >>> 21;
      const slot = pdeIdx >>> 9;
      idx = pdeIdx & 511;
      gpd = s.pdGuest[slot]!;
      if (gpd < 0 || s.pdMfn[slot]! < 0) return this.reflect(this.notPresentCode(acc));
      spdeAddr = s.pdMfn[slot]! * 4096 + 8 * idx;
    } else {
      pdeIdx = va >>> 22;
      idx = pdeIdx;
      gpd = s.pdGuest[0]!;
      spdeAddr = s.rootMfn * 4096 + 4 * idx;
    }
    if (this.opts.pdeKnown !== undefined && !this.opts.pdeKnown(gpd, idx)) {
      // The hypervisor was never told about this entry: it stays unshadowed.
      this.opts.count('traps', 'unshadowed_entry');
      return this.reflect(this.notPresentCode(acc));
    }
    const pdeLo = mem.read32(gpd * 4096 + esz * idx) >>> 0;
    const pdeHi = this.pae ? mem.read32(gpd * 4096 + esz * idx + 4) >>> 0 : 0;
    const g = this.opts.keepGlobal ? ~0 : ~PTE_G;
    if ((pdeLo & PTE_PS) !== 0) {
      if (!this.opts.largePages) throw new HypervisorRefusal('bad page table entry (_PAGE_PSE)', `${this.opts.who} demand_page`);
      const base = (pdeHi & 0xf) * 0x100000 + (pdeLo >>> 12);
      this.checkFrame(base, 'bad page directory entry');
      if (s.ptMfn[pdeIdx] !== EMPTY) this.dropPde(s, pdeIdx, true);
      let lo = (pdeLo & g) >>> 0;
      if ((pdeLo & PTE_D) === 0) lo &= ~PTE_RW;
      this.writeEntry(spdeAddr, lo >>> 0, pdeHi & (PTE_NX_HI | 0xf));
      s.ptMfn[pdeIdx] = LARGE;
      this.opts.count('traps', 'hidden_fault');
      return -1;
    }
    const gpt = (pdeHi & 0xf) * 0x100000 + (pdeLo >>> 12);
    this.checkFrame(gpt, 'bad page directory entry');
    let spt = s.ptMfn[pdeIdx]!;
    if (spt === LARGE || (spt >= 0 && s.ptGuest[pdeIdx] !== gpt)) {
      this.dropPde(s, pdeIdx, true);
      spt = EMPTY;
    }
    if (spt === EMPTY) {
      spt = this.allocFrame();
      s.ptMfn[pdeIdx] = spt;
      s.ptGuest[pdeIdx] = gpt;
      ShadowEngine.rmapAdd(this.rmapPt, gpt, s.id * 2048 + pdeIdx);
      this.writeEntry(spdeAddr, (spt * 4096 + ((pdeLo & PDE_COPY) | PTE_A)) >>> 0, pdeHi & PTE_NX_HI);
    }
    const pteIdx = this.pae ? (va >>> 12) & 511 : (va >>> 12) & 1023;
    const pteAddr = gpt * 4096 + esz * pteIdx;
    const pteLo = mem.read32(pteAddr) >>> 0;
    const pteHi = this.pae ? mem.read32(pteAddr + 4) >>> 0 : 0;
    const frame = (pteHi & 0xf) * 0x100000 + (pteLo >>> 12);
    this.checkFrame(frame, 'bad page table entry');
    this.writeEntry(spt * 4096 + esz * pteIdx, this.spte(pteLo), pteHi & (PTE_NX_HI | 0xf));
    this.opts.count('traps', 'hidden_fault');
    return -1;
  }

  /** A shadow pte from a guest pte: same frame and rights, minus G unless kept, read-only until the guest pte is dirty. */
  private spte(lo: number): number {
    let v = this.opts.keepGlobal ? lo : lo & ~PTE_G;
    if ((lo & PTE_D) === 0) v &= ~PTE_RW;
    return v >>> 0;
  }

  private reflect(errorCode: number): number {
    this.mmu.charge(this.costs.reflect, CC_BOUNCE);
    this.opts.count('traps', 'reflected_fault');
    return errorCode;
  }

  // ---- announced changes ----

  /**
   * The guest changed the entry at `gpa` of one of its tables (announced:
   * VMI's SetPxE/UpdatePxE, or a trapped store). `level` 'pt' for a pte
   * page, 'pd' for a page directory (2-level pgd, PAE pmd). The shadow
   * entries built from the old value go; the next access refills them.
   * Returns how many shadow entries were dropped.
   */
  entryChanged(gpa: number, level: 'pt' | 'pd'): number {
    const pfn = Math.floor(gpa / 4096);
    const idx = (gpa & 4095) / this.esz;
    let n = 0;
    if (level === 'pt') {
      const l = this.rmapPt.get(pfn);
      if (l === undefined) return 0;
      for (const key of l) {
        const s = this.byId.get(Math.floor(key / 2048))!;
        const spt = s.ptMfn[key % 2048]!;
        const a = spt * 4096 + this.esz * idx;
        if (this.mmu.mem.read32(a) !== 0 || (this.pae && this.mmu.mem.read32(a + 4) !== 0)) {
          this.writeEntry(a, 0, 0);
          n++;
        }
      }
      return n;
    }
    const l = this.rmapPd.get(pfn);
    if (l === undefined) return 0;
    for (const key of [...l]) {
      const s = this.byId.get(Math.floor(key / 4))!;
      const pdeIdx = this.pae ? (key % 4) * 512 + idx : idx;
      if (s.ptMfn[pdeIdx] !== EMPTY) {
        this.dropPde(s, pdeIdx, true);
        n++;
      }
    }
    return n;
  }

  /**
   * lguest do_set_pte on shadow `s`: the shadow pte for `va` (if its pte page
   * exists) is replaced: by the new entry at once when the guest set A or D
   * in it (the "shaves 10% off a copy-on-write micro-benchmark" prefill), by
   * nothing otherwise.
   */
  setPteIn(s: Shadow, va: number, lo: number, hi: number): void {
    const pdeIdx = this.pae ? va >>> 21 : va >>> 22;
    const spt = s.ptMfn[pdeIdx]!;
    if (spt < 0) return;
    const a = spt * 4096 + this.esz * (this.pae ? (va >>> 12) & 511 : (va >>> 12) & 1023);
    if ((lo & PTE_P) !== 0 && (lo & (PTE_A | PTE_D)) !== 0) {
      this.checkFrame((hi & 0xf) * 0x100000 + (lo >>> 12), 'bad page table entry');
      this.writeEntry(a, this.spte(lo), hi & (PTE_NX_HI | 0xf));
    } else {
      this.writeEntry(a, 0, 0);
    }
  }

  /** Drop the shadow pde at `pdeIdx` of `s` (its pte page goes back). lguest release_pgd. */
  dropPde(s: Shadow, pdeIdx: number, clear = true): void {
    const m = s.ptMfn[pdeIdx]!;
    if (m === EMPTY) return;
    if (clear) {
      const addr = this.pae ? s.pdMfn[pdeIdx >>> 9]! * 4096 + 8 * (pdeIdx & 511) : s.rootMfn * 4096 + 4 * pdeIdx;
      this.writeEntry(addr, 0, 0);
    }
    if (m >= 0) {
      ShadowEngine.rmapDel(this.rmapPt, s.ptGuest[pdeIdx]!, s.id * 2048 + pdeIdx);
      this.freeFrame(m);
    }
    s.ptMfn[pdeIdx] = EMPTY;
    s.ptGuest[pdeIdx] = -1;
  }

  /** lguest flush_user_mappings: drop every shadow pde below PAGE_OFFSET. */
  flushUser(s: Shadow): void {
    for (let i = 0; i < this.kernelPde; i++) if (s.ptMfn[i] !== EMPTY) this.dropPde(s, i);
  }

  /** lguest release_all_pagetables (guest_pagetable_clear_all): drop every shadow pde of every shadow. */
  dropAll(): void {
    for (const s of this.byId.values()) for (let i = 0; i < this.nPde; i++) if (s.ptMfn[i] !== EMPTY) this.dropPde(s, i);
  }

  /** A guest pte page stops being one (VMI release_page L1): every shadow pte page built from it goes. */
  releasePt(pfn: number): number {
    const l = this.rmapPt.get(pfn);
    if (l === undefined) return 0;
    let n = 0;
    for (const key of [...l]) {
      this.dropPde(this.byId.get(Math.floor(key / 2048))!, key % 2048);
      n++;
    }
    return n;
  }

  /** A guest page directory stops being one (VMI release_page L2): the shadows built on it go. */
  releasePd(pfn: number): number {
    const l = this.rmapPd.get(pfn);
    if (l === undefined) return 0;
    let n = 0;
    for (const key of [...l]) {
      const s = this.byId.get(Math.floor(key / 4));
      if (s === undefined) continue;
      this.byRoot.delete(s.guestRoot);
      if (s === this.current) s.stale = true;
      else this.destroy(s);
      n++;
    }
    return n;
  }

  /** Whether a guest frame is a table some shadow was built from (for the write-protection check). */
  isShadowedTable(pfn: number): boolean {
    return this.rmapPt.has(pfn) || this.rmapPd.has(pfn);
  }

  // ---- invariants ----

  /**
   * The shadow never grants more than the guest's tables: every present
   * shadow pte maps the frame the guest pte maps, with no right the guest
   * pte lacks (RW only when the guest pte is writable and dirty, US only when
   * the guest allows it), and every shadow page is accounted for. Returns
   * violations (empty when it holds).
   */
  check(): string[] {
    const out: string[] = [];
    const mem = this.mmu.mem;
    const esz = this.esz;
    const per = this.pae ? 512 : 1024;
    let pages = 0;
    for (const s of this.byId.values()) {
      pages += 1 + (this.pae ? s.pdMfn.filter((m) => m >= 0).length : 0);
      for (let i = 0; i < this.nPde; i++) {
        const spt = s.ptMfn[i]!;
        if (spt < 0) continue;
        pages++;
        const gpt = s.ptGuest[i]!;
        for (let j = 0; j < per; j++) {
          const slo = mem.read32(spt * 4096 + esz * j) >>> 0;
          if ((slo & PTE_P) === 0) continue;
          const glo = mem.read32(gpt * 4096 + esz * j) >>> 0;
          const va = this.pae ? i * 0x200000 + j * 4096 : i * 0x400000 + j * 4096;
          if ((glo & PTE_P) === 0) {
            if (!s.stale) out.push(`shadow ${s.id} (guest pgd ${hex(s.guestRoot)}): ${hex(va)} is mapped in the shadow but not present in the guest pte page ${hex(gpt)}`);
            continue;
          }
          if (slo >>> 12 !== glo >>> 12) out.push(`shadow ${s.id}: ${hex(va)} maps frame ${hex(slo >>> 12)} but the guest pte maps ${hex(glo >>> 12)}`);
          if ((slo & PTE_RW) !== 0 && ((glo & PTE_RW) === 0 || (glo & PTE_D) === 0)) out.push(`shadow ${s.id}: ${hex(va)} writable in the shadow, not writable-and-dirty in the guest`);
          if ((slo & PTE_US) !== 0 && (glo & PTE_US) === 0) out.push(`shadow ${s.id}: ${hex(va)} user-accessible in the shadow only`);
        }
      }
    }
    if (pages !== this.shadowPages) out.push(`shadow pages: ${this.shadowPages} counted, ${pages} reachable from the cached shadows`);
    return out;
  }
}
