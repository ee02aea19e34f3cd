/**
 * Xen's frame table: per machine frame of the guest, a type (none, L1, L2,
 * L3, writable; plus the PAE `pae_xen_l2` flag for the L2 in L3 slot 3), a
 * type reference count and the pinned flag (Xen's page_info.u.inuse.type_info,
 * xen/arch/x86/mm.c get_page_type / put_page_type).
 *
 * The rule that makes direct paging safe: a frame's type may only change
 * when its type count is zero. A present writable L1 entry holds a
 * `writable` type reference on the frame it maps, a present L2 entry an L1
 * reference on its table, and so on; so a frame cannot be a page table and
 * be mapped writable at the same time.
 *
 * The first reference of a page-table type validates the frame
 * (alloc_l1/l2/l3_table, which take references on what the entries point
 * to); the last put releases it (free_lX_table drops those references).
 * As Xen 3.1 does (put_page_type), the type stays recorded when the count
 * reaches zero, with the validated bit clear: do_mmu_update dispatches on
 * that recorded type, so an update into a former page table revalidates it
 * (get_page_type of the old type at count zero), and only a different type
 * is a type change.
 *
 * TLB flush filter (get_page_type, put_page_type): when the count drops to
 * zero the frame is stamped with the current TLB-flush time; a later type
 * change flushes the TLB unless a full flush happened since the stamp
 * (tlbflush_filter). The domain does the flush (`onTypeChange`).
 */
import { R, typeName, type LogLine } from './reasons.js';

export const PGT_NONE = 0;
export const PGT_L1 = 1;
export const PGT_L2 = 2;
export const PGT_L3 = 3;
export const PGT_L4 = 4;
export const PGT_WRITABLE = 7;
export type PageType = 0 | 1 | 2 | 3 | 4 | 7;

export interface FrameInfo {
  type: PageType;
  /** Type reference count. */
  count: number;
  pinned: boolean;
  /** PAE: the L2 sits in slot 3 of an L3 and carries Xen's private mappings. */
  xenL2: boolean;
  validated: boolean;
  /** TLB-flush time when the count last dropped to zero (page->tlbflush_timestamp). */
  stamp: number;
}

/** The page-table validation the frame table calls on a type's first and last reference. */
export interface PageTypeOps {
  /** alloc_page_type: validate (taking references); false (logged, nothing held) on failure. */
  alloc(mfn: number, type: PageType, xenL2: boolean): boolean;
  /** free_page_type: drop the references the entries hold. */
  free(mfn: number, type: PageType, xenL2: boolean): void;
}

/*
 * The bits of a frame's type_info byte. Xen 3.1 (x86_32, include/asm-x86/mm.h)
 * packs the page type in bits 31:29 of page_info.u.inuse.type_info, the
 * pinned, validated and pae_xen_l2 flags in bits 28, 27 and 26, and the type
 * count in the bits below; here the type and the flags share one byte and
 * the count has its own Int32Array (a corrupted count, as the self-tests
 * make, cannot spill into the flags).
 */
/** Bits 2:0: the page type (a PGT_* value). */
export const PGT_type_mask = 0x07;
/** The L2 of an L3's slot 3 carrying Xen's private mappings (PAE). */
export const PGT_pae_xen_l2 = 0x08;
/** The frame was validated for its type (alloc_page_type succeeded). */
export const PGT_validated = 0x10;
/** Pinned by MMUEXT_PIN_Lx_TABLE. */
export const PGT_pinned = 0x20;
/** Not Xen's: the frame has state (it would have been a key of a Map of frames). */
export const PGT_present = 0x80;

/** Initial window size when the domain gives none. */
const MIN_WINDOW = 64;

/**
 * Storage: per machine frame, three typed arrays over a window of machine
 * frames [base, base + size): `type_info` (type and flags), `typeCount` and
 * `tlbflushTimestamp`. The domain sizes the window to its pool and Xen's own
 * frames; a frame outside it grows the window (doubling, in either
 * direction), so any mfn >= 0 can be typed. No per-frame objects: a lookup
 * is an index computation and a load.
 *
 * A frame "has state" (PGT_present) from its first get_page_type on, for
 * good (nothing is ever removed); `frames()`/`frameAt()` list those frames
 * in the order they first got state (the order a Map of frames iterates), so
 * everything derived from it (the invariant checker's messages) keeps its
 * order. `get()` and `frames()` build FrameInfo objects on demand, for tests
 * and reports; hot paths use the accessors (typeOf, countOf, isXenL2...).
 */
export class FrameTable {
  /** First machine frame of the window. */
  private base: number;
  /** type_info byte per frame of the window (PGT_* type | PGT_pae_xen_l2 | PGT_validated | PGT_pinned | PGT_present). */
  private type_info: Uint8Array;
  /** Type reference count per frame of the window. */
  private typeCount: Int32Array;
  /** page->tlbflush_timestamp per frame of the window (-1: never stamped). */
  private tlbflushTimestamp: Float64Array;
  /** The frames with state, in the order they got it; `nFrames` used. */
  private order: Int32Array = new Int32Array(MIN_WINDOW);
  private nFrames = 0;
  private pinned = 0;
  /**
   * The frames recorded as page tables (type l1..l4, whatever their count)
   * or pinned, unordered: what the invariant checker's table pass and the
   * leak accounts read, a few hundred frames where the window holds one
   * per frame of memory. `ptPos[i]` is 1 + the position of window index
   * `i`'s frame in `ptList`, 0 when it is not listed.
   */
  private ptList: Int32Array = new Int32Array(MIN_WINDOW);
  private ptCount = 0;
  private ptPos: Int32Array;
  ops!: PageTypeOps;
  /** Number of type-count changes (each a locked cmpxchg on type_info in Xen): the cost model charges them. */
  typeRefChanges = 0;
  /** The current TLB-flush time (tlbflush_current_time); set by the domain. */
  flushTime: () => number = () => 0;
  /** get_page_type's type change of a frame stamped at `stamp` (the domain flushes if tlbflush_filter says so). */
  onTypeChange: (mfn: number, stamp: number) => void = () => {};
  /** free_page_type ran (the domain queues DOP_FLUSH_ALL_TLBS). */
  onFreePageType: () => void = () => {};

  /** `denseBase`/`denseCount`: the machine frames the arrays cover from the start (the window grows past them on demand). */
  constructor(
    private readonly log: (l: LogLine) => void,
    private readonly pfnOf: (mfn: number) => number,
    denseBase = 0,
    denseCount = 0,
  ) {
    if (!Number.isSafeInteger(denseBase) || denseBase < 0 || !Number.isSafeInteger(denseCount) || denseCount < 0) {
      throw new RangeError(`frame table window ${denseBase}+${denseCount} is not a range of machine frames`);
    }
    this.base = denseBase;
    const size = Math.max(denseCount, MIN_WINDOW);
    this.type_info = new Uint8Array(size);
    this.typeCount = new Int32Array(size);
    this.tlbflushTimestamp = new Float64Array(size);
    this.ptPos = new Int32Array(size);
  }

  /** The machine frames the arrays cover now: [first, first + size). */
  get window(): { readonly first: number; readonly size: number } {
    return { first: this.base, size: this.type_info.length };
  }

  /** The array index of `mfn`, or -1 outside the window (or not a frame number). */
  indexOf(mfn: number): number {
    const i = mfn - this.base;
    return i >>> 0 === i && i < this.type_info.length ? i : -1;
  }

  /** The index of `mfn`, the window grown to cover it and the frame given state if it had none. */
  private enter(mfn: number): number {
    let i = this.indexOf(mfn);
    if (i < 0) {
      this.grow(mfn);
      i = mfn - this.base;
    }
    if ((this.type_info[i]! & PGT_present) === 0) {
      this.type_info[i] = PGT_present;
      this.typeCount[i] = 0;
      this.tlbflushTimestamp[i] = -1;
      if (this.nFrames === this.order.length) {
        const o = new Int32Array(this.order.length * 2);
        o.set(this.order);
        this.order = o;
      }
      this.order[this.nFrames++] = mfn;
    }
    return i;
  }

  /** Widen the window to cover `mfn` (at least doubling it, towards `mfn`). */
  private grow(mfn: number): void {
    if (!Number.isSafeInteger(mfn) || mfn < 0) throw new RangeError(`frame table: ${mfn} is not a machine frame number`);
    const size = this.type_info.length;
    let first = this.base;
    let end = first + size;
    if (mfn < first) first = Math.max(0, Math.min(mfn, first - size));
    else end = Math.max(mfn + 1, end + size);
    const shift = this.base - first;
    const ti = new Uint8Array(end - first);
    ti.set(this.type_info, shift);
    const tc = new Int32Array(end - first);
    tc.set(this.typeCount, shift);
    const ts = new Float64Array(end - first);
    ts.set(this.tlbflushTimestamp, shift);
    const pp = new Int32Array(end - first);
    pp.set(this.ptPos, shift);
    this.ptPos = pp;
    this.type_info = ti;
    this.typeCount = tc;
    this.tlbflushTimestamp = ts;
    this.base = first;
  }

  /**
   * The window's arrays as they are now, for the invariant checker's fast
   * pass (invariants.ts), which reads every frame and must not pay a call
   * per frame: `typeInfo[i]`/`typeCount[i]` are machine frame `base + i`'s.
   * Read-only: the caller must not write them (they are the table itself)
   * and must not keep them (the window may grow).
   */
  arrays(): { readonly base: number; readonly typeInfo: Uint8Array; readonly typeCount: Int32Array } {
    return { base: this.base, typeInfo: this.type_info, typeCount: this.typeCount };
  }

  /** Window index `i`'s type_info changed: list or unlist its frame (ptList). */
  private track(i: number): void {
    const t = this.type_info[i]!;
    const type = t & PGT_type_mask;
    const listed = (type >= PGT_L1 && type <= PGT_L4) || (t & PGT_pinned) !== 0;
    const pos = this.ptPos[i]!;
    if (listed && pos === 0) {
      if (this.ptCount === this.ptList.length) {
        const l = new Int32Array(this.ptList.length * 2);
        l.set(this.ptList);
        this.ptList = l;
      }
      this.ptList[this.ptCount++] = this.base + i;
      this.ptPos[i] = this.ptCount;
    } else if (!listed && pos !== 0) {
      const last = this.ptList[--this.ptCount]!;
      this.ptList[pos - 1] = last;
      this.ptPos[last - this.base] = pos;
      this.ptPos[i] = 0;
    }
  }

  /**
   * The machine frames recorded as page tables (type l1..l4, at any count)
   * or pinned: `list[0..count)`, in no particular order. Read-only and not
   * to be kept (as arrays()).
   */
  pageTableFrames(): { readonly list: Int32Array; readonly count: number } {
    return { list: this.ptList, count: this.ptCount };
  }

  /** The frame's type_info byte (0 for a frame without state). */
  private info(mfn: number): number {
    const i = this.indexOf(mfn);
    return i < 0 ? 0 : this.type_info[i]!;
  }

  /** The frame's type_info byte: PGT_* type | PGT_pae_xen_l2 | PGT_validated | PGT_pinned | PGT_present (0: no state). */
  typeInfo(mfn: number): number {
    return this.info(mfn);
  }

  /** The frame has state: it was typed once (or pinned). */
  has(mfn: number): boolean {
    return (this.info(mfn) & PGT_present) !== 0;
  }

  /** A copy of the frame's state, undefined if it has none (tests, reports: hot paths use the accessors). */
  get(mfn: number): FrameInfo | undefined {
    const i = this.indexOf(mfn);
    if (i < 0 || (this.type_info[i]! & PGT_present) === 0) return undefined;
    const t = this.type_info[i]!;
    return {
      type: (t & PGT_type_mask) as PageType,
      count: this.typeCount[i]!,
      pinned: (t & PGT_pinned) !== 0,
      xenL2: (t & PGT_pae_xen_l2) !== 0,
      validated: (t & PGT_validated) !== 0,
      stamp: this.tlbflushTimestamp[i]!,
    };
  }

  /** The recorded type (kept at count zero); PGT_NONE for a frame without state. */
  typeOf(mfn: number): PageType {
    return (this.info(mfn) & PGT_type_mask) as PageType;
  }

  countOf(mfn: number): number {
    const i = this.indexOf(mfn);
    return i < 0 ? 0 : this.typeCount[i]!;
  }

  /** The pae_xen_l2 flag. */
  isXenL2(mfn: number): boolean {
    return (this.info(mfn) & PGT_pae_xen_l2) !== 0;
  }

  isValidated(mfn: number): boolean {
    return (this.info(mfn) & PGT_validated) !== 0;
  }

  /** Typed (count > 0) as a page table of any level. */
  isPageTable(mfn: number): boolean {
    const i = this.indexOf(mfn);
    if (i < 0 || this.typeCount[i]! <= 0) return false;
    const t = this.type_info[i]! & PGT_type_mask;
    return t >= PGT_L1 && t <= PGT_L4;
  }

  isPinned(mfn: number): boolean {
    return (this.info(mfn) & PGT_pinned) !== 0;
  }

  get pinnedCount(): number {
    return this.pinned;
  }

  /** Number of frames with state. */
  get frameCount(): number {
    return this.nFrames;
  }

  /** The `k`th frame with state (0 <= k < frameCount), in the order they got it. */
  frameAt(k: number): number {
    if (k >>> 0 !== k || k >= this.nFrames) throw new RangeError(`frame table: no frame number ${k}`);
    return this.order[k]!;
  }

  /**
   * Frames typed as page tables (l1..l4 with a count) and the type
   * references they hold, frames of `skip` left out (leak accounting: one
   * pass over the arrays, no call per frame).
   */
  pageTableRefs(skip: ReadonlySet<number>): { frames: number; refs: number } {
    let frames = 0;
    let refs = 0;
    // Only listed frames can be typed l1..l4 (ptList).
    for (let k = 0; k < this.ptCount; k++) {
      const mfn = this.ptList[k]!;
      const i = mfn - this.base;
      const count = this.typeCount[i]!;
      const type = this.type_info[i]! & PGT_type_mask;
      if (count === 0 || type < PGT_L1 || type > PGT_L4 || skip.has(mfn)) continue;
      frames++;
      refs += count;
    }
    return { frames, refs };
  }

  /** Every frame with state (typed, counted or pinned), in the order they got it (as a Map of frames iterates). */
  frames(): [number, FrameInfo][] {
    const out: [number, FrameInfo][] = [];
    for (let k = 0; k < this.nFrames; k++) out.push([this.order[k]!, this.get(this.order[k]!)!]);
    return out;
  }

  /** A deep copy for before/after comparisons (tests, invariant checks). */
  snapshot(): Map<number, FrameInfo> {
    const m = new Map<number, FrameInfo>();
    for (let k = 0; k < this.nFrames; k++) {
      const mfn = this.order[k]!;
      const f = this.get(mfn)!;
      if (f.count > 0 || f.pinned) m.set(mfn, f);
    }
    return m;
  }

  /**
   * get_page_type: take a type reference of `type` (with the pae_xen_l2 flag
   * for an L2 in L3 slot 3). At count zero the type changes and a page-table
   * type is validated; otherwise the type must match exactly. `quiet` skips
   * the "Bad type" line (the caller logs its own, as get_page_from_l1e does).
   */
  getPageType(mfn: number, type: PageType, xenL2 = false, quiet = false): boolean {
    let i = this.enter(mfn);
    const want = type | (xenL2 ? PGT_pae_xen_l2 : 0);
    let t = this.type_info[i]!;
    if (this.typeCount[i] === 0) {
      if ((t & (PGT_type_mask | PGT_pae_xen_l2)) !== want) {
        // A type change: flush stale TLB entries unless the stamp is old enough.
        const stamp = this.tlbflushTimestamp[i]!;
        if ((t & PGT_type_mask) !== PGT_NONE || stamp >= 0) this.onTypeChange(mfn, stamp);
        i = mfn - this.base;
        t = (this.type_info[i]! & (PGT_pinned | PGT_present)) | want | (type === PGT_WRITABLE ? PGT_validated : 0);
        this.type_info[i] = t;
        this.track(i);
      }
      this.typeCount[i] = 1;
      this.typeRefChanges++;
      if ((t & PGT_validated) === 0) {
        const ok = this.ops.alloc(mfn, type, xenL2);
        // alloc_page_type may have typed other frames (and grown the window).
        i = mfn - this.base;
        if (!ok) {
          this.log(R.errorValidating(mfn, this.pfnOf(mfn), typeName(type, xenL2)));
          // "Noone else can get a reference": type_info = 0.
          this.type_info[i] = (this.type_info[i]! & (PGT_pinned | PGT_present)) | PGT_NONE;
          this.track(i);
          this.typeCount[i] = 0;
          this.typeRefChanges++;
          return false;
        }
        this.type_info[i]! |= PGT_validated;
      }
      return true;
    }
    if ((t & (PGT_type_mask | PGT_pae_xen_l2)) !== want) {
      const have = (t & PGT_type_mask) as PageType;
      // Xen stays silent when an L1 is expected and an L2 is seen: that is
      // the (2-level) linear page-table case, tried next by the caller.
      if (!quiet && !(have === PGT_L2 && type === PGT_L1)) {
        this.log(R.badType(typeName(have, (t & PGT_pae_xen_l2) !== 0), typeName(type, xenL2), mfn, this.pfnOf(mfn)));
      }
      return false;
    }
    this.typeCount[i]!++;
    this.typeRefChanges++;
    return true;
  }

  /**
   * put_page_type: drop a type reference; at zero a page table is released
   * (free_page_type: free_lX_table), the validated bit is cleared, the type
   * is kept and the frame stamped with the TLB-flush time.
   */
  putPageType(mfn: number): void {
    let i = this.indexOf(mfn);
    if (i < 0 || (this.type_info[i]! & PGT_present) === 0 || this.typeCount[i] === 0) {
      throw new Error(`put_page_type: mfn ${mfn.toString(16)} has no type reference`);
    }
    const count = --this.typeCount[i]!;
    this.typeRefChanges++;
    if (count === 0) {
      const t = this.type_info[i]!;
      const type = (t & PGT_type_mask) as PageType;
      if ((t & PGT_validated) !== 0 && type >= PGT_L1 && type <= PGT_L4) {
        this.type_info[i] = t & ~PGT_validated;
        this.onFreePageType();
        this.ops.free(mfn, type, (t & PGT_pae_xen_l2) !== 0);
        // free_page_type may have touched other frames (and grown the window).
        i = mfn - this.base;
      }
      this.tlbflushTimestamp[i] = this.flushTime();
    }
  }

  setPinned(mfn: number, pinned: boolean): void {
    const i = this.indexOf(mfn);
    if (i < 0 || (this.type_info[i]! & PGT_present) === 0) throw new Error(`pin flag on an untyped mfn ${mfn.toString(16)}`);
    const was = (this.type_info[i]! & PGT_pinned) !== 0;
    if (was !== pinned) this.pinned += pinned ? 1 : -1;
    if (pinned) this.type_info[i]! |= PGT_pinned;
    else this.type_info[i]! &= ~PGT_pinned;
    this.track(i);
  }

  /** Tests and the invariant checker's self-test only: corrupt a count. */
  debugSetCount(mfn: number, count: number): void {
    const i = this.indexOf(mfn);
    if (i >= 0 && (this.type_info[i]! & PGT_present) !== 0) this.typeCount[i] = count;
  }
}
