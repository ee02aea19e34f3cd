/**
 * The modelled TLB: set-associative arrays with LRU replacement, separate
 * arrays for 4 KiB and large pages, global entries (CR4.PGE) that survive
 * non-global flushes. One `TlbLevel` holds both the 4 KiB and the large-page
 * array of one TLB (e.g. Core 2 DTLB0) in one set of typed arrays: slots
 * [0, small.entries) are 4 KiB entries, the rest large-page entries.
 *
 * The modelled geometry alone decides hits and misses. Each slot carries a
 * generation number, assigned when it is filled and cleared when it is
 * invalidated, which lets the MMU keep a host-side lookup cache in front of
 * the model and validate it with one compare (see mmu.ts); that cache never
 * changes a modelled outcome.
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

/**
 * Access classes: index = kind * 2 + (user ? 1 : 0), kind 0 read, 1 write,
 * 2 fetch. The `allow` mask of a slot has bit (class) set when that access
 * may complete on the cached entry without a walk.
 */
export function allowMask(flags: number, wp: boolean, nxe: boolean): number {
  const rw = (flags & TLBF_RW) !== 0;
  const us = (flags & TLBF_US) !== 0;
  const d = (flags & TLBF_D) !== 0;
  const x = !(nxe && (flags & TLBF_NX) !== 0);
  let m = 1; // supervisor read
  if (us) m |= 2; // user read
  if (d && (rw || !wp)) m |= 4; // supervisor write (a clean entry must walk to set D)
  if (d && rw && us) m |= 8; // user write
  if (x) m |= 16; // supervisor fetch
  if (x && us) m |= 32; // user fetch
  return m;
}

export class TlbLevel {
  readonly nSmall: number;
  readonly nLarge: number;
  private readonly setsSmall: number;
  private readonly waysSmall: number;
  private readonly setsLarge: number;
  private readonly waysLarge: number;
  /** Page number (4 KiB vpn, or large-page number) or -1 when invalid. */
  readonly tag: Int32Array;
  /** First 4 KiB frame of the page. */
  readonly pfn: Int32Array;
  readonly flags: Int32Array;
  readonly allow: Int32Array;
  /** LRU stamp: larger is more recent. */
  readonly stamp: Float64Array;
  /** Fill generation (0 when invalid). */
  readonly gen: Int32Array;
  /** Slots currently valid, so flushes can stop early. */
  private validCount = 0;
  /** LRU clock of this TLB. */
  now = 0;
  /** Last fill generation handed out. */
  private genCounter = 0;
  /** Called when fill generations wrap around (the MMU clears its host-side caches). */
  onGenWrap: (() => void) | null = null;

  constructor(
    readonly name: string,
    small: TlbArray,
    large: TlbArray,
  ) {
    this.nSmall = small.entries;
    this.nLarge = large.entries;
    this.waysSmall = Math.max(1, Math.min(small.ways, small.entries || 1));
    this.setsSmall = small.entries ? small.entries / this.waysSmall : 0;
    this.waysLarge = Math.max(1, Math.min(large.ways, large.entries || 1));
    this.setsLarge = large.entries ? large.entries / this.waysLarge : 0;
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

  get size(): number {
    return this.nSmall + this.nLarge;
  }

  /** Slot holding 4 KiB page `vpn`, or -1. */
  lookupSmall(vpn: number): number {
    if (this.setsSmall === 0) return -1;
    const base = (vpn % this.setsSmall) * this.waysSmall;
    for (let w = 0; w < this.waysSmall; w++) if (this.tag[base + w] === vpn) return base + w;
    return -1;
  }

  /** Slot holding large page `lpn` (va >>> 21 under PAE, va >>> 22 otherwise), or -1. */
  lookupLarge(lpn: number): number {
    if (this.setsLarge === 0) return -1;
    const base = this.nSmall + (lpn % this.setsLarge) * this.waysLarge;
    for (let w = 0; w < this.waysLarge; w++) if (this.tag[base + w] === lpn) return base + w;
    return -1;
  }

  /** Fill a 4 KiB entry (replacing an invalid or the least recently used way). Returns the slot, or -1 if no such array. */
  fillSmall(vpn: number, pfn: number, flags: number, allow: number): number {
    if (this.setsSmall === 0) return -1;
    const existing = this.lookupSmall(vpn);
    const slot = existing >= 0 ? existing : this.victim((vpn % this.setsSmall) * this.waysSmall, this.waysSmall);
    this.put(slot, vpn, pfn, flags, allow);
    return slot;
  }

  fillLarge(lpn: number, pfn: number, flags: number, allow: number): number {
    if (this.setsLarge === 0) return -1;
    const existing = this.lookupLarge(lpn);
    const slot =
      existing >= 0 ? existing : this.victim(this.nSmall + (lpn % this.setsLarge) * this.waysLarge, this.waysLarge);
    this.put(slot, lpn, pfn, flags, allow);
    return slot;
  }

  private victim(base: number, ways: number): number {
    let best = base;
    for (let w = 0; w < ways; w++) {
      const s = base + w;
      if (this.tag[s] === -1) return s;
      if (this.stamp[s]! < this.stamp[best]!) best = s;
    }
    return best;
  }

  private put(slot: number, tag: number, pfn: number, flags: number, allow: number): void {
    if (this.tag[slot] === -1) this.validCount++;
    this.tag[slot] = tag;
    this.pfn[slot] = pfn;
    this.flags[slot] = flags;
    this.allow[slot] = allow;
    this.stamp[slot] = ++this.now;
    let g = (this.genCounter + 1) | 0;
    if (g === 0) {
      // After 2^32 fills generations repeat: whoever caches them must forget them.
      g = 1;
      this.onGenWrap?.();
    }
    this.genCounter = g;
    this.gen[slot] = g;
  }

  touch(slot: number): void {
    this.stamp[slot] = ++this.now;
  }

  invalidateSlot(slot: number): void {
    if (this.tag[slot] !== -1) {
      this.tag[slot] = -1;
      this.gen[slot] = 0;
      this.validCount--;
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
      if (this.tag[s] !== -1 && !(keepGlobal && (this.flags[s]! & TLBF_G) !== 0)) this.invalidateSlot(s);
    }
  }

  /** Recompute allow masks after CR0.WP or EFER.NXE changed. */
  recomputeAllow(wp: boolean, nxe: boolean): void {
    for (let s = 0; s < this.size; s++) if (this.tag[s] !== -1) this.allow[s] = allowMask(this.flags[s]!, wp, nxe);
  }

  get valid(): number {
    return this.validCount;
  }

  /** Power-on state: empty, LRU clock at zero. */
  reset(): void {
    this.tag.fill(-1);
    this.gen.fill(0);
    this.stamp.fill(0);
    this.validCount = 0;
    this.now = 0;
  }
}

/**
 * The TLBs of one processor: first-level instruction and data TLBs and an
 * optional second level (data-only or unified).
 */
export class Tlbs {
  readonly itlb: TlbLevel;
  readonly dtlb: TlbLevel;
  readonly l2: TlbLevel;

  constructor(
    geometry: {
      itlb4k: TlbArray;
      itlbLarge: TlbArray;
      dtlb4k: TlbArray;
      dtlbLarge: TlbArray;
      l2tlb4k: TlbArray;
      l2tlbLarge: TlbArray;
    },
    readonly l2Unified: boolean,
  ) {
    this.itlb = new TlbLevel('ITLB', geometry.itlb4k, geometry.itlbLarge);
    this.dtlb = new TlbLevel('DTLB', geometry.dtlb4k, geometry.dtlbLarge);
    this.l2 = new TlbLevel('L2TLB', geometry.l2tlb4k, geometry.l2tlbLarge);
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
  }
}
