/**
 * The modelled TLB: set-associative arrays with LRU replacement, separate
 * arrays for 4 KiB and large pages, global entries (CR4.PGE) that survive
 * non-global flushes. One `TlbLevel` holds both the 4 KiB and the large-page
 * array of one TLB (e.g. Core 2 DTLB0) in one set of typed arrays: slots
 * [0, small.entries) are 4 KiB entries, the rest large-page entries.
 *
 * The modelled geometry alone decides hits and misses. The MMU keeps a
 * host-side lookup cache in front of the model (see mmu.ts) and learns of
 * every change to a valid slot through its `watcher`, so that cache never
 * changes a modelled outcome. Each slot also carries a generation number,
 * new at every fill or re-derivation of its permissions and 0 when invalid,
 * which identifies one fill for anyone who keeps a reference to a slot.
 *
 * Each entry caches the combined permissions of the translation (SDM 4.10.2.2):
 * R/W and U/S ANDed over the levels, XD ORed, the leaf's dirty flag and G.
 */
import type { TlbArray } from './cost-model.js';

// Flags of a cached translation (own encoding, not entry bits).
export const TLBF_RW = 1;
export const TLBF_US = 2;
export const TLBF_NX = 4;
export const TLBF_D = 8;
export const TLBF_G = 16;
// The flags again as this module's own constants for the hot paths (allowMask
// runs on every walk): V8 folds a module's own constants into optimized code
// but reads an exported one from its module cell, with a TDZ check, at each use.
const F_RW = TLBF_RW;
const F_US = TLBF_US;
const F_NX = TLBF_NX;
const F_D = TLBF_D;
const F_G = TLBF_G;

/**
 * Where LRU stamps come from. The MMU gives all its TLBs one clock (itself):
 * a shared, strictly increasing clock orders the ways of every set exactly as
 * per-TLB clocks would, and the TLB-hit path reaches it without loading
 * another object.
 */
export interface LruClock {
  now: number;
}

/**
 * Told of every change to a valid slot of a TLB, just before it is
 * invalidated, refilled or has its permissions re-derived, with the slot's
 * old tag: the MMU drops its host-side copies of the slot then. An object
 * with a method rather than a closure: every MMU's watcher is then the same
 * method, so the fill path's call to it stays monomorphic (one closure per
 * MMU made the call site polymorphic and kept the fill from being inlined).
 */
export interface TlbWatcher {
  tlbSlotChanging(t: TlbLevel, slot: number, tag: number): void;
}

/**
 * Access classes: index = kind * 2 + (user ? 1 : 0), kind 0 read, 1 write,
 * 2 fetch. The `allow` mask of a slot has bit (class) set when that access
 * may complete on the cached entry without a walk.
 */
export function allowMask(flags: number, wp: boolean, nxe: boolean): number {
  const rw = (flags & F_RW) !== 0;
  const us = (flags & F_US) !== 0;
  const d = (flags & F_D) !== 0;
  const x = !(nxe && (flags & F_NX) !== 0);
  let m = 1; // supervisor read
  if (us) m |= 2; // user read
  if (d && (rw || !wp)) m |= 4; // supervisor write (a clean entry must walk to set D)
  if (d && rw && us) m |= 8; // user write
  if (x) m |= 16; // supervisor fetch
  if (x && us) m |= 32; // user fetch
  return m;
}

export class TlbLevel {
  // The geometry and the arrays are set once in the constructor (`declare`:
  // see Cpu; the hot paths then load them without map or Smi checks).
  declare readonly name: string;
  declare readonly nSmall: number;
  declare readonly nLarge: number;
  private declare readonly setsSmall: number;
  private declare readonly waysSmall: number;
  private declare readonly setsLarge: number;
  private declare readonly waysLarge: number;
  /** sets - 1 when the number of sets is a power of two (index by mask), else -1 (index by modulo). */
  private declare readonly maskSmall: number;
  private declare readonly maskLarge: number;
  /** Page number (4 KiB vpn, or large-page number) or -1 when invalid. */
  declare readonly tag: Int32Array;
  /** First 4 KiB frame of the page. */
  declare readonly pfn: Int32Array;
  declare readonly flags: Int32Array;
  declare readonly allow: Int32Array;
  /** LRU stamp: larger is more recent. */
  declare readonly stamp: Float64Array;
  /** Fill generation (0 when invalid). */
  declare readonly gen: Int32Array;
  /** Slots currently valid, so flushes can stop early. */
  private validCount = 0;
  /** Of those, large-page slots: with none, a large lookup is a sure miss and skipped. */
  private validLarge = 0;
  /** LRU clock (possibly shared with other TLBs). */
  declare readonly clock: LruClock;
  /** Last fill generation handed out. */
  private genCounter = 0;
  /** Called when fill generations wrap around (whoever caches generations must forget them). */
  onGenWrap: (() => void) | null = null;
  /** Told of every change to a valid slot (see TlbWatcher), or null. */
  watcher: TlbWatcher | null = null;

  constructor(name: string, small: TlbArray, large: TlbArray, clock: LruClock = { now: 0 }) {
    this.name = name;
    this.clock = clock;
    this.nSmall = small.entries;
    this.nLarge = large.entries;
    this.waysSmall = Math.max(1, Math.min(small.ways, small.entries || 1));
    this.setsSmall = small.entries ? small.entries / this.waysSmall : 0;
    this.waysLarge = Math.max(1, Math.min(large.ways, large.entries || 1));
    this.setsLarge = large.entries ? large.entries / this.waysLarge : 0;
    this.maskSmall = setMask(this.setsSmall);
    this.maskLarge = setMask(this.setsLarge);
    for (const [n, sets] of [[small.entries, this.setsSmall], [large.entries, this.setsLarge]] as const) {
      if (n && !Number.isInteger(sets)) throw new RangeError(`${name}: ${n} entries not divisible into sets`);
    }
    const n = this.nSmall + this.nLarge;
    this.tag = new Int32Array(n).fill(-1);
    this.pfn = new Int32Array(n);
    this.flags = new Int32Array(n);
    this.allow = new Int32Array(n);
    this.stamp = new Float64Array(n);
    this.gen = new Int32Array(n);
  }

  /** The LRU clock's current value (the last stamp handed out). */
  get now(): number {
    return this.clock.now;
  }

  get size(): number {
    return this.nSmall + this.nLarge;
  }

  /** Slot holding 4 KiB page `vpn`, or -1. */
  lookupSmall(vpn: number): number {
    const sets = this.setsSmall;
    if (sets === 0) return -1;
    const m = this.maskSmall;
    const base = (m >= 0 ? vpn & m : vpn % sets) * this.waysSmall;
    return this.find(base, this.waysSmall, vpn);
  }

  /** Slot holding large page `lpn` (va >>> 21 under PAE, va >>> 22 otherwise), or -1. */
  lookupLarge(lpn: number): number {
    if (this.validLarge === 0) return -1;
    const sets = this.setsLarge;
    const m = this.maskLarge;
    const base = this.nSmall + (m >= 0 ? lpn & m : lpn % sets) * this.waysLarge;
    return this.find(base, this.waysLarge, lpn);
  }

  /** The way of the set at `base` holding `tagv`, or -1 (4-way sets unrolled: the common geometry). */
  private find(base: number, ways: number, tagv: number): number {
    const tag = this.tag;
    if (ways === 4) {
      if (tag[base] === tagv) return base;
      if (tag[base + 1] === tagv) return base + 1;
      if (tag[base + 2] === tagv) return base + 2;
      if (tag[base + 3] === tagv) return base + 3;
      return -1;
    }
    for (let s = base, end = base + ways; s < end; s++) if (tag[s] === tagv) return s;
    return -1;
  }

  /** Fill a 4 KiB entry (replacing an invalid or the least recently used way). Returns the slot, or -1 if no such array. */
  fillSmall(vpn: number, pfn: number, flags: number, allow: number): number {
    const sets = this.setsSmall;
    if (sets === 0) return -1;
    const m = this.maskSmall;
    const ways = this.waysSmall;
    const base = (m >= 0 ? vpn & m : vpn % sets) * ways;
    const slot = ways === 4 ? this.victim4(base, vpn) : this.victim(base, ways, vpn);
    this.put(slot, vpn, pfn, flags, allow);
    return slot;
  }

  fillLarge(lpn: number, pfn: number, flags: number, allow: number): number {
    const sets = this.setsLarge;
    if (sets === 0) return -1;
    const m = this.maskLarge;
    const ways = this.waysLarge;
    const base = this.nSmall + (m >= 0 ? lpn & m : lpn % sets) * ways;
    const slot = ways === 4 ? this.victim4(base, lpn) : this.victim(base, ways, lpn);
    this.put(slot, lpn, pfn, flags, allow);
    return slot;
  }

  /**
   * victim() for a 4-way set (the common geometry), unrolled, with the LRU
   * choice as selects rather than branches: which way is oldest is
   * data-dependent, so branches on it mispredict. Kept apart from the
   * general case so the fill stays small enough to inline.
   */
  private victim4(base: number, tagv: number): number {
    const tag = this.tag;
    const t0 = tag[base]!;
    const t1 = tag[base + 1]!;
    const t2 = tag[base + 2]!;
    const t3 = tag[base + 3]!;
    if (t0 === tagv) return base;
    if (t1 === tagv) return base + 1;
    if (t2 === tagv) return base + 2;
    if (t3 === tagv) return base + 3;
    if (t0 === -1) return base;
    if (t1 === -1) return base + 1;
    if (t2 === -1) return base + 2;
    if (t3 === -1) return base + 3;
    const stamp = this.stamp;
    if (this.clock.now <= 0x7fffffff) {
      // Every stamp is at most the clock, so here all four are exact int32s
      // and the choice can be made with integer arithmetic and no branch
      // (V8 compiles the selects below to branches, and which way is oldest
      // is data-dependent: they mispredict). d >>> 31 is 1 when d < 0 (no
      // overflow: the stamps are in [0, 2^31)); a tie keeps the lower way.
      const i0 = stamp[base]! | 0;
      const i1 = stamp[base + 1]! | 0;
      const i2 = stamp[base + 2]! | 0;
      const i3 = stamp[base + 3]! | 0;
      const ia = (i1 - i0) >>> 31; // 1 when way 1 is older than way 0
      const ea = i0 + ((i1 - i0) & (0 - ia)); // the older one's stamp
      const ib = (i3 - i2) >>> 31;
      const eb = i2 + ((i3 - i2) & (0 - ib));
      const pick = (eb - ea) >>> 31; // 1 when the older of 2, 3 is older still
      return base + ia + ((2 + ib - ia) & (0 - pick));
    }
    const s0 = stamp[base]!;
    const s1 = stamp[base + 1]!;
    const s2 = stamp[base + 2]!;
    const s3 = stamp[base + 3]!;
    const a = s1 < s0 ? 1 : 0; // ties keep the lower way, as victim() does
    const sa = s1 < s0 ? s1 : s0;
    const b = s3 < s2 ? 3 : 2;
    const sb = s3 < s2 ? s3 : s2;
    return base + (sb < sa ? b : a);
  }

  /**
   * The way of the set at `base` to fill with `tagv`: the way already holding
   * it, else the first invalid way, else the least recently used one.
   */
  private victim(base: number, ways: number, tagv: number): number {
    const tag = this.tag;
    const stamp = this.stamp;
    const end = base + ways;
    let invalid = -1;
    let best = -1;
    let bestStamp = 0;
    for (let s = base; s < end; s++) {
      const t = tag[s]!;
      if (t === tagv) return s;
      if (t === -1) {
        if (invalid < 0) invalid = s;
      } else if (best < 0 || stamp[s]! < bestStamp) {
        best = s;
        bestStamp = stamp[s]!;
      }
    }
    return invalid >= 0 ? invalid : best;
  }

  private put(slot: number, tag: number, pfn: number, flags: number, allow: number): void {
    const old = this.tag[slot]!;
    if (old === -1) this.becameValid(slot);
    else if (this.watcher !== null) this.watcher.tlbSlotChanging(this, slot, old);
    this.tag[slot] = tag;
    // `| 0` (a no-op: all are int32): a store of an untyped number into an
    // Int32Array otherwise goes through a double conversion in V8.
    this.pfn[slot] = pfn | 0;
    this.flags[slot] = flags | 0;
    this.allow[slot] = allow | 0;
    this.stamp[slot] = ++this.clock.now;
    this.gen[slot] = this.nextGen();
  }

  /** Count a slot that an invalid one becomes (out of put(): a full set, the steady state, never comes here). */
  private becameValid(slot: number): void {
    this.validCount++;
    if (slot >= this.nSmall) this.validLarge++;
  }

  private nextGen(): number {
    let g = (this.genCounter + 1) | 0;
    if (g === 0) {
      // After 2^32 fills generations repeat: whoever caches them must forget them.
      g = 1;
      this.onGenWrap?.();
    }
    this.genCounter = g;
    return g;
  }

  touch(slot: number): void {
    this.stamp[slot] = ++this.clock.now;
  }

  invalidateSlot(slot: number): void {
    const old = this.tag[slot]!;
    if (old !== -1) {
      if (this.watcher !== null) this.watcher.tlbSlotChanging(this, slot, old);
      this.tag[slot] = -1;
      this.gen[slot] = 0;
      this.validCount--;
      if (slot >= this.nSmall) this.validLarge--;
    }
  }

  /** INVLPG: drop the entries translating `va` (4 KiB and large). */
  invalidateVa(va: number, pae: boolean): void {
    const s = this.lookupSmall(va >>> 12);
    if (s >= 0) this.invalidateSlot(s);
    // A large entry may have been filled under either paging mode's page size.
    const l1 = this.lookupLarge(pae ? va >>> 21 : va >>> 22);
    if (l1 >= 0) this.invalidateSlot(l1);
  }

  /** Flush every entry; when `keepGlobal`, entries with G survive (CR3 write). */
  flush(keepGlobal: boolean): void {
    if (this.validCount === 0) return;
    const n = this.size;
    for (let s = 0; s < n; s++) {
      if (this.tag[s] !== -1 && !(keepGlobal && (this.flags[s]! & F_G) !== 0)) this.invalidateSlot(s);
    }
  }

  /**
   * Recompute allow masks after CR0.WP or EFER.NXE changed. Each valid slot
   * also gets a new generation: a host-side cache holding a copy of the old
   * mask must not use it any more.
   */
  recomputeAllow(wp: boolean, nxe: boolean): void {
    for (let s = 0; s < this.size; s++) {
      if (this.tag[s] !== -1) {
        if (this.watcher !== null) this.watcher.tlbSlotChanging(this, s, this.tag[s]!);
        this.allow[s] = allowMask(this.flags[s]!, wp, nxe);
        this.gen[s] = this.nextGen();
      }
    }
  }

  get valid(): number {
    return this.validCount;
  }

  /** Power-on state: empty (the clock is shared: Tlbs.reset zeroes it). */
  reset(): void {
    this.tag.fill(-1);
    this.gen.fill(0);
    this.stamp.fill(0);
    this.validCount = 0;
    this.validLarge = 0;
  }
}

function setMask(sets: number): number {
  return sets > 0 && (sets & (sets - 1)) === 0 ? sets - 1 : -1;
}

/**
 * The TLBs of one processor: first-level instruction and data TLBs and an
 * optional second level (data-only or unified).
 */
export class Tlbs {
  declare readonly itlb: TlbLevel;
  declare readonly dtlb: TlbLevel;
  declare readonly l2: TlbLevel;
  declare readonly l2Unified: boolean;
  declare readonly clock: LruClock;

  constructor(
    geometry: {
      itlb4k: TlbArray;
      itlbLarge: TlbArray;
      dtlb4k: TlbArray;
      dtlbLarge: TlbArray;
      l2tlb4k: TlbArray;
      l2tlbLarge: TlbArray;
    },
    l2Unified: boolean,
    clock: LruClock = { now: 0 },
  ) {
    this.l2Unified = l2Unified;
    this.clock = clock;
    this.itlb = new TlbLevel('ITLB', geometry.itlb4k, geometry.itlbLarge, clock);
    this.dtlb = new TlbLevel('DTLB', geometry.dtlb4k, geometry.dtlbLarge, clock);
    this.l2 = new TlbLevel('L2TLB', geometry.l2tlb4k, geometry.l2tlbLarge, clock);
  }

  flush(keepGlobal: boolean): void {
    this.itlb.flush(keepGlobal);
    this.dtlb.flush(keepGlobal);
    this.l2.flush(keepGlobal);
  }

  invalidateVa(va: number, pae: boolean): void {
    this.itlb.invalidateVa(va, pae);
    this.dtlb.invalidateVa(va, pae);
    this.l2.invalidateVa(va, pae);
  }

  recomputeAllow(wp: boolean, nxe: boolean): void {
    this.itlb.recomputeAllow(wp, nxe);
    this.dtlb.recomputeAllow(wp, nxe);
    this.l2.recomputeAllow(wp, nxe);
  }

  get valid(): number {
    return this.itlb.valid + this.dtlb.valid + this.l2.valid;
  }

  reset(): void {
    this.itlb.reset();
    this.dtlb.reset();
    this.l2.reset();
    this.clock.now = 0;
  }
}
