/**
 * The MMU of one emulated x86 processor: `translate()` with the TLB fast
 * path, the walk on a miss, permission checks, A/D updates, #PF delivery
 * (error code and CR2), INVLPG, the side-effect-free `probe()`, counters and
 * cycles from the cost model, and the tracing hook.
 *
 * Host-side speed: in front of each first-level TLB (DTLB, ITLB) sits a
 * direct-mapped host cache indexed by the low bits of the 4 KiB page number.
 * An entry is a copy of one modelled TLB slot (which slot, its frame and
 * allow mask); the TLB reports every change to a valid slot and the copies
 * of it are dropped then (see newHostCache). A host hit updates the slot's
 * LRU stamp and the hit counter exactly as a lookup in the model would, and
 * anything else goes to the model. So the model alone decides hits, misses
 * and cycles; the host cache only makes a hit cheap. The miss path is split
 * (lookups in miss(), the walk and fills in walkAndFill(), trace events in
 * traceWalk()) so that V8 compiles each part with the TLB helpers inlined.
 *
 * translate() returns the physical address (>= 0) or, for a page fault,
 * -1 - errorCode; nothing is allocated per access.
 */
import * as cost from './cost-model.js';
import {
  DEFAULT_PRESET,
  breakdownOf,
  getPreset,
  MmuCounters,
  type CostBreakdown,
  type CpuPreset,
} from './cost-model.js';
import { Cpu, type CrWriteResult } from './cpu.js';
import * as bits from './paging-bits.js';
import type { AccessKind } from './paging-bits.js';
import { PhysMem } from './phys-mem.js';
import { allowMask, Tlbs, type LruClock, type TlbLevel, type TlbWatcher } from './tlb.js';
import type { TraceSink, WalkEntryRead } from './trace.js';
import { Walker } from './walker.js';
import { rebindable } from './snapshot.js';

// The imported constants the miss path uses, as this module's own: V8 folds a
// module's own constants into optimized code, but reads an imported one from
// its module cell, with a TDZ check, at every use.
const CC_EXCEPTION = cost.CC_EXCEPTION;
const CC_FLUSH = cost.CC_FLUSH;
const CC_TLB = cost.CC_TLB;
const ACCESS_FETCH = bits.ACCESS_FETCH;

/** Default log2 of the number of host-cache entries per first-level TLB. */
const HOST_BITS = 12;

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
  /**
   * log2 of the host-side lookup cache size per first-level TLB (0..16,
   * default 12). Host speed only: no modelled outcome depends on it (the
   * unit tests check that with every size).
   */
  hostCacheBits?: number;
}

/**
 * Host cache of one first-level TLB: entry h occupies [4h, 4h+4) =
 *   vpn | allow << 20  (0 when empty: allow 0 never lets an access through),
 *   modelled slot, the MMU's host epoch when the entry was made, 4 KiB frame.
 * An entry is a copy of a modelled slot and must go when the slot changes:
 * the TLB reports every change of a valid slot (TlbWatcher); for a
 * 4 KiB slot the one entry of its page is dropped, for a large-page slot
 * (many pages may point at it) the epoch moves on, which drops them all.
 * One typed array keeps an entry in one cache line.
 */
const HOST_VPN = 0xfffff;
const HOST_ALLOW_SHIFT = 20;

function newHostCache(bits: number): Int32Array {
  return new Int32Array(4 << bits);
}

export class Mmu implements LruClock, TlbWatcher {
  /** The LRU clock of all this MMU's TLBs (see LruClock); a field here so a TLB hit stamps without another load. */
  now = 0;
  readonly counters = new MmuCounters();
  // The fields below without an initializer are set once in the constructor
  // and `declare`d (see Cpu): the hot path loads them without a map or Smi
  // check, and a constant MMU (a benchmark loop's) has them constant-folded.
  declare readonly mem: PhysMem;
  declare readonly preset: CpuPreset;
  declare readonly tlbs: Tlbs;
  declare readonly cpu: Cpu;
  declare readonly walker: Walker;
  /** Attached trace sink, or null (the default: tracing costs nothing). */
  private sink: TraceSink | null = null;

  // First-level TLBs, their arrays and their host caches, as direct fields
  // for the hot path (one object to reach everything a hit touches).
  private declare readonly dtlb: TlbLevel;
  private declare readonly itlb: TlbLevel;
  private declare readonly dHost: Int32Array;
  private declare readonly iHost: Int32Array;
  private declare readonly dStamp: Float64Array;
  private declare readonly iStamp: Float64Array;
  /** Host cache epoch (never 0): entries made in an older one are dead. */
  private epoch = 1;
  private declare readonly hostMask: number;
  private declare readonly hitCycles: number;
  // The miss path's constants, one load each.
  private declare readonly l2: TlbLevel;
  private declare readonly l2Unified: boolean;
  private declare readonly l2HitCycles: number;
  private declare readonly pageFaultCycles: number;

  constructor(opts: MmuOptions = {}) {
    this.preset = typeof opts.cpu === 'object' ? opts.cpu : getPreset(opts.cpu ?? DEFAULT_PRESET);
    this.mem = opts.mem ?? new PhysMem();
    this.tlbs = new Tlbs(this.preset, this.preset.l2Unified, this);
    this.dtlb = this.tlbs.dtlb;
    this.itlb = this.tlbs.itlb;
    const bits = opts.hostCacheBits ?? HOST_BITS;
    if (!(Number.isInteger(bits) && bits >= 0 && bits <= 16)) throw new RangeError(`hostCacheBits ${bits} not in 0..16`);
    this.hostMask = (1 << bits) - 1;
    this.dHost = newHostCache(bits);
    this.iHost = newHostCache(bits);
    this.dStamp = this.dtlb.stamp;
    this.iStamp = this.itlb.stamp;
    this.watchTlbs();
    this.hitCycles = this.preset.cycles.tlbHit;
    this.l2 = this.tlbs.l2;
    this.l2Unified = this.tlbs.l2Unified;
    this.l2HitCycles = this.preset.cycles.l2TlbHit;
    this.pageFaultCycles = this.preset.cycles.pageFault;
    this.cpu = new Cpu(this.mem, this.tlbs, this.counters, this.preset.cycles, rebindable(this, 'traceFlush'));
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
    if (acc >= 4) return this.translateFetch(va, acc);
    const vpn = va >>> 12;
    const h = (vpn & this.hostMask) << 2;
    const hc = this.dHost;
    const e = hc[h]!;
    if ((e & HOST_VPN) === vpn && ((e >> (acc + HOST_ALLOW_SHIFT)) & 1) !== 0 && hc[h + 2] === this.epoch) {
      this.dStamp[hc[h + 1]!] = ++this.now;
      this.counters.tlbHits++;
      return hc[h + 3]! * 4096 + (va & 4095);
    }
    // miss() returns the 4 KiB frame (a small integer, never boxed) or the
    // negative fault code; the address is formed here, where it stays unboxed.
    // `| 0` (a no-op on those values) tells V8 the result is an int32: without
    // it the two arms' join is a tagged value and every miss boxes the address.
    const p = this.miss(va >>> 0, acc) | 0;
    return p < 0 ? p : p * 4096 + (va & 4095);
  }

  /** translate() for instruction fetches: the ITLB and its host cache. */
  private translateFetch(va: number, acc: number): number {
    const vpn = va >>> 12;
    const h = (vpn & this.hostMask) << 2;
    const hc = this.iHost;
    const e = hc[h]!;
    if ((e & HOST_VPN) === vpn && ((e >> (acc + HOST_ALLOW_SHIFT)) & 1) !== 0 && hc[h + 2] === this.epoch) {
      this.iStamp[hc[h + 1]!] = ++this.now;
      this.counters.tlbHits++;
      return hc[h + 3]! * 4096 + (va & 4095);
    }
    const p = this.miss(va >>> 0, acc) | 0;
    return p < 0 ? p : p * 4096 + (va & 4095);
  }

  /** translate() for a kind and a user flag. */
  access(va: number, kind: AccessKind, user: boolean): number {
    return this.translate(va, kind * 2 + (user ? 1 : 0));
  }

  /**
   * The cold path: first-level lookup by the model, second level, then a
   * walk. Returns the 4 KiB frame of the translation, or -1 - errorCode.
   */
  private miss(va: number, acc: number): number {
    const cpu = this.cpu;
    if (!cpu.paging) return va >>> 12;
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
        return this.hostFill(host, l1, s, vpn, largeMask);
      }
      // The cached entry cannot complete this access (rights, or a write to a
      // clean entry that must set D): drop it and walk the tables.
      l1.invalidateSlot(s);
    }

    const l2 = this.l2;
    const useL2 = !fetch || this.l2Unified === true;
    if (useL2) {
      let s2 = l2.lookupSmall(vpn);
      if (s2 < 0) s2 = l2.lookupLarge(lpn);
      if (s2 >= 0) {
        if (((l2.allow[s2]! >> acc) & 1) !== 0) {
          l2.touch(s2);
          this.counters.l2TlbHits++;
          this.counters.otherCycles += this.l2HitCycles;
          this.counters.ledger[CC_TLB] += this.l2HitCycles;
          const isLarge = s2 >= l2.nSmall;
          const s1 = isLarge
            ? l1.fillLarge(lpn, l2.pfn[s2]!, l2.flags[s2]!, l2.allow[s2]!)
            : l1.fillSmall(vpn, l2.pfn[s2]!, l2.flags[s2]!, l2.allow[s2]!);
          if (s1 >= 0) return this.hostFill(host, l1, s1, vpn, largeMask);
          return isLarge ? l2.pfn[s2]! + (vpn & largeMask) : l2.pfn[s2]!;
        }
        l2.invalidateSlot(s2);
      }
    }

    return this.walkAndFill(va, acc, l1, host, lpn, largeMask);
  }

  /**
   * A miss in every TLB level: walk the tables, deliver a #PF or fill the
   * TLBs. Returns the 4 KiB frame, or -1 - errorCode.
   */
  private walkAndFill(
    va: number,
    acc: number,
    l1: TlbLevel,
    host: Int32Array,
    lpn: number,
    largeMask: number,
  ): number {
    // As in miss() (recomputed rather than passed: a boolean argument of a call
    // V8 does not inline costs a full ToBoolean at each test).
    const useL2 = acc < 4 || this.l2Unified === true;
    const cpu = this.cpu;
    const l2 = this.l2;
    const vpn = va >>> 12;
    this.counters.tlbMisses++;
    const w = this.walker;
    const at = this.sink !== null ? this.cycles : 0;
    // `=== true`: the walk's result comes from a call V8 does not inline; so it is
    // one pointer compare here rather than a full ToBoolean at each test below.
    const ok = w.walk(va, acc, true) === true;
    this.counters.walksByDepth[w.depth]!++;
    let cost = w.cycles;
    this.counters.ledger[CC_TLB] += cost;
    if (!ok) {
      cost += this.pageFaultCycles;
      this.counters.ledger[CC_EXCEPTION] += this.pageFaultCycles;
      this.counters.pageFaults++;
      cpu.cr2 = va;
      // SDM 4.10.4.1: a page fault invalidates the TLB entries for its address.
      this.tlbs.invalidateVa(va, cpu.pae);
    }
    this.counters.walkCycles += cost;
    this.counters.otherCycles += cost;
    if (this.sink !== null) this.traceWalk(this.sink, va, acc, ok, cost, at);
    if (!ok) return -1 - w.errorCode;

    const allow = allowMask(w.flags, cpu.wp, cpu.nxe);
    let s1: number;
    if (w.largeShift !== 0) {
      s1 = l1.fillLarge(lpn, w.basePfn, w.flags, allow);
      if (useL2) l2.fillLarge(lpn, w.basePfn, w.flags, allow);
    } else {
      s1 = l1.fillSmall(vpn, w.basePfn, w.flags, allow);
      if (useL2) l2.fillSmall(vpn, w.basePfn, w.flags, allow);
    }
    if (s1 >= 0 && ((allow >> acc) & 1) !== 0) this.hostFill(host, l1, s1, vpn, largeMask);
    return w.pfn;
  }

  /** The walk event for an attached sink (kept out of the miss path's code). */
  private traceWalk(sink: TraceSink, va: number, acc: number, ok: boolean, cost: number, at: number): void {
    const w = this.walker;
    const pa = w.pfn * 4096 + (va & 4095);
    sink.mmuEvent({
      type: 'walk',
      va,
      access: (acc >> 1) as AccessKind,
      user: (acc & 1) !== 0,
      cr3: this.cpu.cr3,
      entries: w.entries,
      ...(ok ? { pa } : { errorCode: w.errorCode }),
      cycles: cost,
      at,
    });
  }

  /** The processor's flushes, to the trace sink (the Cpu's onFlush). */
  traceFlush(kind: 'full' | 'non-global', cycles: number): void {
    if (this.sink !== null) this.sink.mmuEvent({ type: 'flush', kind, cycles, at: this.cycles - cycles });
  }

  /**
   * The first-level TLBs report their changes to this MMU's host caches. The
   * watcher is the MMU itself (no closure), so a snapshot's generic copy
   * points the copied TLBs at the copied MMU.
   */
  private watchTlbs(): void {
    this.dtlb.watcher = this;
    this.itlb.watcher = this;
  }

  /** A valid slot of a first-level TLB is about to change: drop the host copies of it (TlbWatcher). */
  tlbSlotChanging(t: TlbLevel, slot: number, tag: number): void {
    this.dropHost(t === this.dtlb ? this.dHost : this.iHost, t, slot, tag);
  }

  private dropHost(host: Int32Array, t: TlbLevel, slot: number, tag: number): void {
    if (slot < t.nSmall) {
      const h = (tag & this.hostMask) << 2;
      if (host[h + 1] === slot && (host[h]! & HOST_VPN) === tag) host[h] = 0;
      return;
    }
    this.newEpoch();
  }

  /** Drop every host cache entry at once (a large-page slot changed: many pages may point at it). */
  private newEpoch(): void {
    let e = (this.epoch + 1) | 0;
    if (e === 0) {
      // After 2^32 epochs values repeat: forget everything once.
      this.dHost.fill(0);
      this.iHost.fill(0);
      e = 1;
    }
    this.epoch = e;
  }

  /** Point the host cache entry of `vpn` at slot `s` of `t`; returns the 4 KiB frame. */
  private hostFill(host: Int32Array, t: TlbLevel, s: number, vpn: number, largeMask: number): number {
    const pfn = s >= t.nSmall ? t.pfn[s]! + (vpn & largeMask) : t.pfn[s]!;
    const h = (vpn & this.hostMask) << 2;
    host[h] = vpn | (t.allow[s]! << HOST_ALLOW_SHIFT);
    host[h + 1] = s;
    host[h + 2] = this.epoch;
    host[h + 3] = pfn;
    return pfn;
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
    this.counters.ledger[CC_FLUSH] += cost;
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
    this.dHost.fill(0);
    this.iHost.fill(0);
    this.walker.resetCache();
    Object.assign(this.counters, new MmuCounters());
  }

  /**
   * Charge cycles for work outside the MMU proper (hypervisor, guest kernel
   * paths) to one cost component (a CC_* ledger index of cost-model.ts).
   */
  charge(cycles: number, component: number): void {
    this.counters.otherCycles += cycles;
    this.counters.ledger[component] += cycles;
  }

  /** Total cycles by component since reset; sums exactly to `cycles` (TLB hits go to `tlb`). */
  get breakdown(): CostBreakdown {
    const b = breakdownOf(this.counters.ledger);
    b.tlb += this.counters.tlbHits * this.hitCycles;
    return b;
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
