/**
 * The MMU of one emulated x86 processor: `translate()` with the TLB fast
 * path, the walk on a miss, permission checks, A/D updates, #PF delivery
 * (error code and CR2), INVLPG, the side-effect-free `probe()`, counters and
 * cycles from the cost model, and the tracing hook.
 *
 * Host-side speed: in front of each first-level TLB (DTLB, ITLB) sits a
 * direct-mapped host cache indexed by the low bits of the 4 KiB page number.
 * An entry remembers which modelled TLB slot it came from and that slot's
 * fill generation; a hit is valid only while the slot still holds that fill
 * and allows the access, and it updates the slot's LRU stamp and the hit
 * counter exactly as a lookup in the model would. So the model alone decides
 * hits, misses and cycles; the host cache only makes a hit cheap.
 *
 * translate() returns the physical address (>= 0) or, for a page fault,
 * -1 - errorCode; nothing is allocated per access.
 */
import { DEFAULT_PRESET, getPreset, MmuCounters, type CpuPreset } from './cost-model.js';
import { Cpu, type CrWriteResult } from './cpu.js';
import { ACCESS_FETCH, type AccessKind } from './paging-bits.js';
import { PhysMem } from './phys-mem.js';
import { allowMask, Tlbs, type TlbLevel } from './tlb.js';
import type { TraceSink, WalkEntryRead } from './trace.js';
import { Walker } from './walker.js';

const HOST_BITS = 12;
const HOST_SIZE = 1 << HOST_BITS;
const HOST_MASK = HOST_SIZE - 1;

/** Access class: kind * 2 + (user ? 1 : 0). */
export function accessClass(kind: AccessKind, user: boolean): number {
  return kind * 2 + (user ? 1 : 0);
}

/** Decode a negative translate() result into the #PF error code. */
export function faultCode(result: number): number {
  return -1 - result;
}

export interface ProbeResult {
  /** Physical address, when the access would succeed. */
  pa?: number;
  /** #PF error code, when it would fault. */
  errorCode?: number;
  /** Size of the page mapping the address (4096, 2 MiB or 4 MiB). */
  pageSize?: number;
  entries: WalkEntryRead[];
}

export interface MmuOptions {
  /** CPU preset name or table (default core2). */
  cpu?: string | CpuPreset;
  /** Physical memory to use (default: a new empty one). */
  mem?: PhysMem;
}

class HostCache {
  readonly vpn = new Int32Array(HOST_SIZE).fill(-1);
  readonly slot = new Int32Array(HOST_SIZE);
  readonly gen = new Int32Array(HOST_SIZE);
  readonly pfn = new Int32Array(HOST_SIZE);
  clear(): void {
    this.vpn.fill(-1);
  }
}

export class Mmu {
  readonly mem: PhysMem;
  readonly preset: CpuPreset;
  readonly counters = new MmuCounters();
  readonly tlbs: Tlbs;
  readonly cpu: Cpu;
  readonly walker: Walker;
  /** Attached trace sink, or null (the default: tracing costs nothing). */
  private sink: TraceSink | null = null;

  // First-level TLBs and their host caches, as direct fields for the hot path.
  private readonly dtlb: TlbLevel;
  private readonly itlb: TlbLevel;
  private readonly dHost = new HostCache();
  private readonly iHost = new HostCache();
  private readonly hitCycles: number;

  constructor(opts: MmuOptions = {}) {
    this.preset = typeof opts.cpu === 'object' ? opts.cpu : getPreset(opts.cpu ?? DEFAULT_PRESET);
    this.mem = opts.mem ?? new PhysMem();
    this.tlbs = new Tlbs(this.preset, this.preset.l2Unified);
    this.dtlb = this.tlbs.dtlb;
    this.itlb = this.tlbs.itlb;
    const wrap = (): void => {
      this.dHost.clear();
      this.iHost.clear();
    };
    this.tlbs.dtlb.onGenWrap = this.tlbs.itlb.onGenWrap = wrap;
    this.hitCycles = this.preset.cycles.tlbHit;
    this.cpu = new Cpu(this.mem, this.tlbs, this.counters, this.preset.cycles, (kind, cycles) => {
      if (this.sink !== null) this.sink.mmuEvent({ type: 'flush', kind, cycles, at: this.cycles - cycles });
    });
    this.walker = new Walker(this.mem, this.cpu, this.counters, this.preset.cycles, this.preset.walkCacheLines);
  }

  /** Total cycles charged so far. */
  get cycles(): number {
    return this.counters.otherCycles + this.counters.tlbHits * this.hitCycles;
  }

  setTraceSink(sink: TraceSink | null): void {
    this.sink = sink;
    this.walker.record = sink !== null;
  }

  get traceSink(): TraceSink | null {
    return this.sink;
  }

  // ---- control registers ----
  writeCr0(v: number): CrWriteResult {
    return this.cpu.writeCr0(v);
  }
  writeCr3(v: number): CrWriteResult {
    return this.cpu.writeCr3(v);
  }
  writeCr4(v: number): CrWriteResult {
    return this.cpu.writeCr4(v);
  }
  writeEfer(v: number): void {
    this.cpu.writeEfer(v);
  }

  // ---- translation ----

  /**
   * Translate `va` for access class `acc` (see accessClass). Returns the
   * physical address, or -1 - errorCode after delivering a #PF (CR2 set).
   */
  translate(va: number, acc: number): number {
    const vpn = va >>> 12;
    const h = vpn & HOST_MASK;
    if (acc < 4) {
      const hc = this.dHost;
      if (hc.vpn[h] === vpn) {
        const t = this.dtlb;
        const s = hc.slot[h]!;
        if (t.gen[s] === hc.gen[h] && ((t.allow[s]! >> acc) & 1) !== 0) {
          t.stamp[s] = ++t.now;
          this.counters.tlbHits++;
          return hc.pfn[h]! * 4096 + (va & 4095);
        }
      }
    } else {
      const hc = this.iHost;
      if (hc.vpn[h] === vpn) {
        const t = this.itlb;
        const s = hc.slot[h]!;
        if (t.gen[s] === hc.gen[h] && ((t.allow[s]! >> acc) & 1) !== 0) {
          t.stamp[s] = ++t.now;
          this.counters.tlbHits++;
          return hc.pfn[h]! * 4096 + (va & 4095);
        }
      }
    }
    return this.miss(va >>> 0, acc);
  }

  /** translate() for a kind and a user flag. */
  access(va: number, kind: AccessKind, user: boolean): number {
    return this.translate(va, kind * 2 + (user ? 1 : 0));
  }

  /** The cold path: first-level lookup by the model, second level, then a walk. */
  private miss(va: number, acc: number): number {
    const cpu = this.cpu;
    if (!cpu.paging) return va;
    const fetch = acc >= 4;
    const l1 = fetch ? this.itlb : this.dtlb;
    const host = fetch ? this.iHost : this.dHost;
    const vpn = va >>> 12;
    const lpn = cpu.pae ? va >>> 21 : va >>> 22;
    const largeMask = cpu.pae ? 0x1ff : 0x3ff;

    let s = l1.lookupSmall(vpn);
    if (s < 0) s = l1.lookupLarge(lpn);
    if (s >= 0) {
      if (((l1.allow[s]! >> acc) & 1) !== 0) {
        l1.touch(s);
        this.counters.tlbHits++;
        return this.hostFill(host, l1, s, vpn, va, largeMask);
      }
      // The cached entry cannot complete this access (rights, or a write to a
      // clean entry that must set D): drop it and walk the tables.
      l1.invalidateSlot(s);
    }

    const l2 = this.tlbs.l2;
    if (!fetch || this.tlbs.l2Unified) {
      let s2 = l2.lookupSmall(vpn);
      if (s2 < 0) s2 = l2.lookupLarge(lpn);
      if (s2 >= 0) {
        if (((l2.allow[s2]! >> acc) & 1) !== 0) {
          l2.touch(s2);
          this.counters.l2TlbHits++;
          this.counters.otherCycles += this.preset.cycles.l2TlbHit;
          const isLarge = s2 >= l2.nSmall;
          const s1 = isLarge
            ? l1.fillLarge(lpn, l2.pfn[s2]!, l2.flags[s2]!, l2.allow[s2]!)
            : l1.fillSmall(vpn, l2.pfn[s2]!, l2.flags[s2]!, l2.allow[s2]!);
          if (s1 >= 0) return this.hostFill(host, l1, s1, vpn, va, largeMask);
          return (isLarge ? l2.pfn[s2]! + (vpn & largeMask) : l2.pfn[s2]!) * 4096 + (va & 4095);
        }
        l2.invalidateSlot(s2);
      }
    }

    // Walk.
    this.counters.tlbMisses++;
    const w = this.walker;
    const at = this.sink !== null ? this.cycles : 0;
    const ok = w.walk(va, acc, true);
    this.counters.walksByDepth[w.depth]!++;
    let cost = w.cycles;
    if (!ok) {
      cost += this.preset.cycles.pageFault;
      this.counters.pageFaults++;
      cpu.cr2 = va;
      // SDM 4.10.4.1: a page fault invalidates the TLB entries for its address.
      this.tlbs.invalidateVa(va, cpu.pae);
    }
    this.counters.walkCycles += cost;
    this.counters.otherCycles += cost;
    const pa = ok ? w.pfn * 4096 + (va & 4095) : -1;
    if (this.sink !== null) {
      this.sink.mmuEvent({
        type: 'walk',
        va,
        access: (acc >> 1) as AccessKind,
        user: (acc & 1) !== 0,
        cr3: cpu.cr3,
        entries: w.entries,
        ...(ok ? { pa } : { errorCode: w.errorCode }),
        cycles: cost,
        at,
      });
    }
    if (!ok) return -1 - w.errorCode;

    const allow = allowMask(w.flags, cpu.wp, cpu.nxe);
    let s1: number;
    if (w.largeShift !== 0) {
      s1 = l1.fillLarge(lpn, w.basePfn, w.flags, allow);
      if (!fetch || this.tlbs.l2Unified) l2.fillLarge(lpn, w.basePfn, w.flags, allow);
    } else {
      s1 = l1.fillSmall(vpn, w.basePfn, w.flags, allow);
      if (!fetch || this.tlbs.l2Unified) l2.fillSmall(vpn, w.basePfn, w.flags, allow);
    }
    if (s1 >= 0 && ((allow >> acc) & 1) !== 0) this.hostFill(host, l1, s1, vpn, va, largeMask);
    return pa;
  }

  private hostFill(host: HostCache, t: TlbLevel, s: number, vpn: number, va: number, largeMask: number): number {
    const pfn = s >= t.nSmall ? t.pfn[s]! + (vpn & largeMask) : t.pfn[s]!;
    const h = vpn & HOST_MASK;
    host.vpn[h] = vpn;
    host.slot[h] = s;
    host.gen[h] = t.gen[s]!;
    host.pfn[h] = pfn;
    return pfn * 4096 + (va & 4095);
  }

  /**
   * Side-effect-free translation for debuggers and traces: no A/D updates, no
   * TLB lookup or fill, no counters, no cycles, no CR2. Uses the current
   * CR3 and PDPTE registers.
   */
  probe(va: number, kind: AccessKind, user: boolean): ProbeResult {
    va >>>= 0;
    if (!this.cpu.paging) return { pa: va, pageSize: 4096, entries: [] };
    const w = this.walker;
    const rec = w.record;
    w.record = true;
    try {
      const ok = w.walk(va, kind * 2 + (user ? 1 : 0), false);
      const entries = w.entries;
      if (!ok) return { errorCode: w.errorCode, entries };
      return {
        pa: w.pfn * 4096 + (va & 4095),
        pageSize: w.largeShift ? 2 ** w.largeShift : 4096,
        entries,
      };
    } finally {
      w.record = rec;
      w.entries = [];
    }
  }

  /** probe() reduced to translate()'s encoding (pa, or -1 - errorCode). */
  probePa(va: number, acc: number): number {
    va >>>= 0;
    if (!this.cpu.paging) return va;
    const w = this.walker;
    const rec = w.record;
    w.record = false;
    const ok = w.walk(va, acc, false);
    w.record = rec;
    return ok ? w.pfn * 4096 + (va & 4095) : -1 - w.errorCode;
  }

  /** INVLPG: drop the TLB entries for `va`. */
  invlpg(va: number): void {
    va >>>= 0;
    this.tlbs.invalidateVa(va, this.cpu.pae);
    const cost = this.preset.cycles.invlpg;
    this.counters.invlpgs++;
    this.counters.otherCycles += cost;
    if (this.sink !== null) this.sink.mmuEvent({ type: 'flush', kind: 'invlpg', va, cycles: cost, at: this.cycles - cost });
  }

  /**
   * Back to a fresh machine: memory zero, registers zero, TLBs and caches
   * empty, counters zero (the vector runner starts every case so).
   */
  reset(): void {
    this.mem.clear();
    this.cpu.reset();
    this.tlbs.reset();
    this.dHost.clear();
    this.iHost.clear();
    this.walker.resetCache();
    Object.assign(this.counters, new MmuCounters());
  }

  /** Charge cycles for work outside the MMU proper (hypervisor, guest kernel paths). */
  charge(cycles: number): void {
    this.counters.otherCycles += cycles;
  }

  // ---- convenience: a 32-bit access through the MMU ----

  /** Load 32 bits at `va` (must not cross a page). Returns the value, or undefined after a #PF. */
  read32(va: number, user: boolean): number | undefined {
    const pa = this.translate(va, user ? 1 : 0);
    return pa < 0 ? undefined : this.mem.read32(pa);
  }

  /** Store 32 bits at `va`. Returns false after a #PF. */
  write32(va: number, value: number, user: boolean): boolean {
    const pa = this.translate(va, user ? 3 : 2);
    if (pa < 0) return false;
    this.mem.write32(pa, value);
    return true;
  }

  /** Instruction fetch of 32 bits at `va`. */
  fetch32(va: number, user: boolean): number | undefined {
    const pa = this.translate(va, ACCESS_FETCH * 2 + (user ? 1 : 0));
    return pa < 0 ? undefined : this.mem.read32(pa);
  }
}
