/**
 * The native backend: "bare hardware", Linux's `native_*` paravirt_ops table
 * (arch/i386/kernel/paravirt.c, include/asm-i386/pgtable*.h). The guest runs
 * in ring 0, its pfns are the machine's frames (guest frames 0..nrPages-1),
 * and every op is what the kernel would do without a hypervisor: a store to
 * the page table in memory, a MOV to a control register, an INVLPG. The hooks
 * bare hardware does not need (alloc_pt, release_pd, pte_update, activate_mm,
 * lazy mode, ...) are `paravirt_nop`: they do nothing and cost nothing.
 *
 * Paging is turned on at the guest's first write_cr3 (like head.S enabling
 * paging once the boot page tables exist), see machine.ts.
 */
import { CC_KERNEL, type CostBreakdown, type KernelFigure, type MmuCounters } from '../emulator/cost-model.js';
import type { Mmu } from '../emulator/mmu.js';
import { CR4_PGE, type AccessKind } from '../emulator/paging-bits.js';
import { chargeKernelWork, createMmu, enablePaging } from './machine.js';
import type { AccessResult, GuestMemory, KernelWorkComponent, LazyMode, MachineConfig, MmHandle, ParavirtOps } from './paravirt-ops.js';
import type { BackendStats } from './stats.js';
import { pteFromWords, pteHi, pteLo, pteSplit, type GuestPhys, type Pfn, type PteVal, type VirtAddr } from './types.js';

const PAGE = 4096;
const U32 = 0xffffffffn;

/** The guest's frames of machine memory, bounds-checked (pfn == machine frame). */
export class NativeGuestMemory implements GuestMemory {
  readonly nrPages: number;
  private readonly limit: number;

  constructor(
    private readonly mmu: Mmu,
    memBytes: number,
  ) {
    this.nrPages = Math.floor(memBytes / PAGE);
    this.limit = this.nrPages * PAGE;
  }

  private check(addr: number, len: number): void {
    if (!Number.isInteger(addr) || addr < 0 || addr + len > this.limit) {
      throw new RangeError(
        `guest-physical address 0x${Number(addr).toString(16)} (+${len}) outside guest memory (0..0x${this.limit.toString(16)})`,
      );
    }
  }

  private checkPfn(pfn: number): void {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.nrPages) {
      throw new RangeError(`pfn 0x${Number(pfn).toString(16)} outside guest memory (${this.nrPages} pages)`);
    }
  }

  read32(addr: GuestPhys): number {
    // Fast path: an aligned integer address in guest memory (what check() and PhysMem.read32 do for it).
    if ((addr >>> 0) === addr && (addr & 3) === 0 && addr + 4 <= this.limit) {
      return this.mmu.mem.frame(addr >>> 12)[(addr & 0xfff) >>> 2]! >>> 0;
    }
    this.check(addr, 4);
    return this.mmu.mem.read32(addr);
  }
  /** GuestMemory.read32s: a range within one page in one copy, else read32 word by word. */
  read32s(addr: GuestPhys, out: Uint32Array, words: number): void {
    if ((addr >>> 0) === addr && (addr & 3) === 0 && words <= out.length && (addr & 0xfff) + words * 4 <= 4096 && addr + words * 4 <= this.limit) {
      const w = (addr & 0xfff) >>> 2;
      const f = this.mmu.mem.frame(addr >>> 12);
      // The frame's words seen as unsigned (read32's `>>> 0`, as a Uint32Array store does): a few words
      // one by one (no view to allocate: the fuzzer's census reads single entries), more as a same-type
      // copy (a memcpy, not a conversion per word).
      if (words <= 16) for (let i = 0; i < words; i++) out[i] = f[w + i]!;
      else out.set(new Uint32Array(f.buffer, f.byteOffset + 4 * w, words));
      return;
    }
    for (let i = 0; i < words; i++) out[i] = this.read32(addr + 4 * i);
  }
  write32(addr: GuestPhys, value: number): void {
    if ((addr >>> 0) === addr && (addr & 3) === 0 && addr + 4 <= this.limit) {
      this.mmu.mem.frameW(addr >>> 12)[(addr & 0xfff) >>> 2] = value | 0;
      return;
    }
    this.check(addr, 4);
    this.mmu.mem.write32(addr, value);
  }
  read64(addr: GuestPhys): bigint {
    this.check(addr, 8);
    if ((addr & 7) === 0) {
      // An aligned entry: both words from the frame, one bigint built (same value as PhysMem.read64).
      const f = this.mmu.mem.frame(Math.floor(addr / PAGE));
      const w = (addr & 0xfff) >>> 2;
      return pteFromWords(f[w]!, f[w + 1]!);
    }
    return this.mmu.mem.read64(addr);
  }
  write64(addr: GuestPhys, value: bigint): void {
    this.check(addr, 8);
    // PhysMem.write64: low word, then high word.
    this.mmu.mem.write32(addr, pteLo(value));
    this.mmu.mem.write32(addr + 4, pteHi(value));
  }
  /** memcpy as 32-bit loads and stores in ascending order: page-sized chunks in bulk when in bounds, aligned and on distinct frames. */
  copy32(dst: GuestPhys, src: GuestPhys, bytes: number): void {
    const mem = this.mmu.mem;
    for (let off = 0; off < bytes; ) {
      const da = dst + off;
      const sa = src + off;
      const n = Math.min(bytes - off, PAGE - (da % PAGE), PAGE - (sa % PAGE));
      const ok = (a: number): boolean => Number.isInteger(a) && a >= 0 && a + n <= this.limit && (a & 3) === 0;
      const dpfn = Math.floor(da / PAGE);
      const spfn = Math.floor(sa / PAGE);
      if (ok(da) && ok(sa) && dpfn !== spfn && n % 4 === 0) {
        const sw = (sa % PAGE) >>> 2;
        mem.frameW(dpfn).set(mem.frame(spfn).subarray(sw, sw + n / 4), (da % PAGE) >>> 2);
      } else {
        for (let o = 0; o < n; o += 4) this.write32(da + o, this.read32(sa + o));
      }
      off += n;
    }
  }

  /** memset as 32-bit stores in ascending order: page-sized chunks in bulk when in bounds and aligned. */
  fill32(addr: GuestPhys, bytes: number, value: number): void {
    const mem = this.mmu.mem;
    for (let off = 0; off < bytes; ) {
      const a = addr + off;
      const n = Math.min(bytes - off, PAGE - (a % PAGE));
      if (Number.isInteger(a) && a >= 0 && a + n <= this.limit && (a & 3) === 0 && n % 4 === 0) {
        const w = (a % PAGE) >>> 2;
        mem.frameW(Math.floor(a / PAGE)).fill(value | 0, w, w + n / 4);
      } else {
        for (let o = 0; o < n; o += 4) this.write32(a + o, value);
      }
      off += n;
    }
  }

  zeroPage(pfn: Pfn): void {
    this.checkPfn(pfn);
    this.mmu.mem.zeroFrame(pfn);
  }
  copyPage(dst: Pfn, src: Pfn): void {
    this.checkPfn(dst);
    this.checkPfn(src);
    this.mmu.mem.copyFrame(dst, src);
  }
}

/** Bare hardware's statistics: the machine's cycles and counters, no hypercalls. */
class NativeStats implements BackendStats {
  readonly mmu: MmuCounters;
  readonly hypercalls: Record<string, number> = {};
  readonly refusals: Record<string, number> = {};
  readonly traps: Record<string, number> = {};
  readonly pinned = 0;

  constructor(private readonly machine: Mmu) {
    this.mmu = machine.counters;
  }

  get cycles(): number {
    return this.machine.cycles;
  }
  get breakdown(): CostBreakdown {
    return this.machine.breakdown;
  }
}

export class NativeBackend implements ParavirtOps {
  readonly name = 'bare hardware';
  readonly paravirtEnabled = false;
  readonly kernelRpl = 0;
  readonly sharedKernelPmd = true;
  readonly reservedTop = 0;
  readonly largePagesAllowed = true;
  readonly config: MachineConfig;
  /** The hardware, for tools and tests (the guest kernel must not use it). */
  readonly mmu: Mmu;
  readonly mem: GuestMemory;
  readonly stats: BackendStats;
  private readonly pae: boolean;
  /** Bytes of guest memory (the store fast path's bound). */
  private readonly limit: number;
  private lazyMode: LazyMode = 'none';

  constructor(config: MachineConfig) {
    if (!(config.memBytes > 0) || config.memBytes % PAGE !== 0) {
      throw new RangeError(`memBytes ${config.memBytes} is not a positive multiple of the page size`);
    }
    if (config.memBytes > 2 ** 36 || (!config.pae && config.memBytes > 2 ** 32)) {
      throw new RangeError(`memBytes 0x${config.memBytes.toString(16)} exceeds the physical address space`);
    }
    this.config = { ...config };
    this.pae = config.pae;
    this.mmu = createMmu(config);
    this.mem = new NativeGuestMemory(this.mmu, config.memBytes);
    this.limit = this.mem.nrPages * PAGE;
    this.stats = new NativeStats(this.mmu);
  }

  /** Current lazy mode (natively it changes nothing; kept for tools). */
  get lazy(): LazyMode {
    return this.lazyMode;
  }

  // ---- control registers and TLB ----

  read_cr2(): VirtAddr {
    return this.mmu.cpu.cr2;
  }

  read_cr3(): GuestPhys {
    return this.mmu.cpu.cr3;
  }

  /** native_write_cr3: MOV CR3 (the first one also turns paging on). */
  write_cr3(pgd: GuestPhys): void {
    if (!Number.isInteger(pgd) || pgd < 0 || pgd >= 2 ** 32) {
      throw new RangeError(`write_cr3: 0x${Number(pgd).toString(16)} does not fit CR3 (32 bits)`);
    }
    if (this.pae ? (pgd & 0x1f) !== 0 : (pgd & 0xfff) !== 0) {
      throw new Error(`write_cr3: pgd 0x${pgd.toString(16)} is not ${this.pae ? '32-byte' : 'page'} aligned`);
    }
    if (!this.mmu.cpu.paging) {
      enablePaging(this.mmu, this.config, pgd);
      return;
    }
    this.cr3(pgd, 'write_cr3');
  }

  private cr3(v: number, op: string): void {
    if (this.mmu.writeCr3(v) === 'GP') {
      throw new Error(`${op}: #GP on MOV CR3 0x${(v >>> 0).toString(16)}: a present PDPTE has reserved bits set (guest bug)`);
    }
  }

  /** __native_flush_tlb: reload CR3 (flushes the non-global entries). */
  flush_tlb_user(): void {
    this.cr3(this.mmu.cpu.cr3, 'flush_tlb_user');
  }

  /** __native_flush_tlb_global: CR4.PGE off, CR3 reload, CR4.PGE back on (flushes globals too). */
  flush_tlb_kernel(): void {
    const cpu = this.mmu.cpu;
    const cr4 = cpu.cr4;
    if ((cr4 & CR4_PGE) === 0) {
      this.flush_tlb_user();
      return;
    }
    if (this.mmu.writeCr4(cr4 & ~CR4_PGE) === 'GP') throw new Error('flush_tlb_kernel: #GP on MOV CR4');
    this.cr3(cpu.cr3, 'flush_tlb_kernel');
    if (this.mmu.writeCr4(cr4) === 'GP') throw new Error('flush_tlb_kernel: #GP on MOV CR4');
  }

  /** __native_flush_tlb_single: INVLPG. */
  flush_tlb_single(va: VirtAddr): void {
    this.mmu.invlpg(va >>> 0);
  }

  // ---- page-table page lifecycle: paravirt_nop ----
  alloc_pt(_pfn: Pfn): void {}
  alloc_pd(_pfn: Pfn): void {}
  alloc_pd_clone(_pfn: Pfn, _clonePfn: Pfn, _start: number, _count: number): void {}
  release_pt(_pfn: Pfn): void {}
  release_pd(_pfn: Pfn): void {}

  // ---- entry updates: plain stores ----

  /**
   * Store an entry: 64 bits under PAE (high word first, as native_set_pte), 32
   * bits otherwise. Charged `pteStore` (one data-cache access), or `cost`.
   */
  private store(p: GuestPhys, v: PteVal, op: string, cost = this.mmu.preset.cycles.pteStore): void {
    this.mmu.charge(cost, CC_KERNEL);
    if (this.pae) {
      if ((p & 7) !== 0) throw new Error(`${op}: entry address 0x${p.toString(16)} not 8-byte aligned`);
      if ((p >>> 0) === p && p + 8 <= this.limit) {
        // Both words in one frame, high word first: the two write32s below, without their checks.
        const f = this.mmu.mem.frameW(p >>> 12);
        const w = (p & 0xfff) >>> 2;
        const x = pteSplit(v);
        f[w + 1] = x[1]!;
        f[w] = x[0]!;
        return;
      }
      this.mem.write32(p + 4, pteHi(v));
      this.mem.write32(p, pteLo(v));
    } else {
      if ((p & 3) !== 0) throw new Error(`${op}: entry address 0x${p.toString(16)} not 4-byte aligned`);
      if (v < 0n || v > U32) throw new RangeError(`${op}: value 0x${v.toString(16)} does not fit a 2-level entry`);
      this.mem.write32(p, pteLo(v));
    }
  }

  set_pte(ptep: GuestPhys, pte: PteVal): void {
    this.store(ptep, pte, 'set_pte');
  }
  set_pte_at(_mm: MmHandle, _va: VirtAddr, ptep: GuestPhys, pte: PteVal): void {
    this.store(ptep, pte, 'set_pte_at');
  }
  /**
   * native_set_pte_atomic: one 64-bit store (set_64bit, a LOCK CMPXCHG8B under
   * PAE, charged as a locked read-modify-write `adUpdate`); 2-level: set_pte.
   */
  set_pte_atomic(ptep: GuestPhys, pte: PteVal): void {
    const c = this.mmu.preset.cycles;
    this.store(ptep, pte, 'set_pte_atomic', this.pae ? c.adUpdate : c.pteStore);
  }
  set_pte_present(_mm: MmHandle, _va: VirtAddr, ptep: GuestPhys, pte: PteVal): void {
    this.store(ptep, pte, 'set_pte_present');
  }
  set_pmd(pmdp: GuestPhys, pmd: PteVal): void {
    this.store(pmdp, pmd, 'set_pmd');
  }
  set_pud(pudp: GuestPhys, pud: PteVal): void {
    this.store(pudp, pud, 'set_pud');
  }
  pte_clear(_mm: MmHandle, _va: VirtAddr, ptep: GuestPhys): void {
    this.store(ptep, 0n, 'pte_clear');
  }
  pmd_clear(pmdp: GuestPhys): void {
    this.store(pmdp, 0n, 'pmd_clear');
  }
  pte_update(_mm: MmHandle, _va: VirtAddr, _ptep: GuestPhys): void {}
  pte_update_defer(_mm: MmHandle, _va: VirtAddr, _ptep: GuestPhys): void {}

  // ---- entry values: pfn == mfn, identity ----
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

  // ---- mm lifecycle: paravirt_nop ----
  pagetable_setup_start(_base: GuestPhys): void {}
  pagetable_setup_done(_base: GuestPhys): void {}
  activate_mm(_prev: MmHandle | null, _next: MmHandle): void {}
  dup_mmap(_oldmm: MmHandle, _mm: MmHandle): void {}
  exit_mmap(_mm: MmHandle): void {}

  // ---- lazy mode: nothing is deferred on bare hardware ----
  set_lazy_mode(mode: LazyMode): void {
    this.lazyMode = mode;
  }
  lazy_flush(): void {}

  // ---- the kernel's own work ----

  cpu_figure(name: KernelFigure): number {
    return this.mmu.preset.cycles[name];
  }

  kernel_work(cycles: number, component: KernelWorkComponent): void {
    chargeKernelWork(this.mmu, cycles, component);
  }

  /** int $0x80 ... iret: the preset's native null system call. */
  syscall(): void {
    this.mmu.charge(this.mmu.preset.cycles.syscall, CC_KERNEL);
  }

  // ---- the processor ----

  access(va: VirtAddr, kind: AccessKind, user: boolean): AccessResult {
    const r = this.mmu.access(va >>> 0, kind, user);
    if (r >= 0) return { ok: true, gpa: r };
    return { ok: false, errorCode: -1 - r, cr2: this.mmu.cpu.cr2 };
  }

  probe(va: VirtAddr, kind: AccessKind, user: boolean): AccessResult {
    const r = this.mmu.probePa(va >>> 0, kind * 2 + (user ? 1 : 0));
    if (r >= 0) return { ok: true, gpa: r };
    return { ok: false, errorCode: -1 - r, cr2: va >>> 0 };
  }
}

/** The native backend for a config. */
export function createNativeBackend(config: MachineConfig): NativeBackend {
  return new NativeBackend(config);
}
