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

/** A frame's state, linked in insertion order (to iterate in the order a Map would). */
interface Slot extends FrameInfo {
  mfn: number;
  prev: Slot | null;
  next: Slot | null;
}

/**
 * Storage: a dense array indexed by `mfn - base` for the machine frames the
 * domain owns (and Xen's own, next to them), a Map for any other frame.
 * Why not one Map: entries come and go all the time (a page-table frame's
 * writable reference drops to zero, it is typed L1, released, ...), and V8's
 * Map keeps deleted entries in their bucket chain until it rehashes, so
 * lookups of the churned frames got slower the longer a run went (fork+exit
 * on Xen went from 2 ms to 8 ms per iteration). A frame "has state" exactly
 * when it would have been in the Map; `frames()` iterates in the order the
 * Map would have (first insertion since the last deletion), so everything
 * derived from it (the invariant checker's messages) is unchanged.
 */
export class FrameTable {
  private readonly dense: (Slot | undefined)[];
  private readonly base: number;
  private readonly extra = new Map<number, Slot>();
  /** Oldest and newest entry (insertion order). */
  private head: Slot | null = null;
  private tail: Slot | null = null;
  private pinned = 0;
  ops!: PageTypeOps;
  /** Number of type-count changes (each a locked cmpxchg on type_info in Xen): the cost model charges them. */
  typeRefChanges = 0;
  /** The current TLB-flush time (tlbflush_current_time); set by the domain. */
  flushTime: () => number = () => 0;
  /** get_page_type's type change of a frame stamped at `stamp` (the domain flushes if tlbflush_filter says so). */
  onTypeChange: (mfn: number, stamp: number) => void = () => {};
  /** free_page_type ran (the domain queues DOP_FLUSH_ALL_TLBS). */
  onFreePageType: () => void = () => {};

  /** `denseBase`/`denseCount`: the machine frames kept in the dense array (default none). */
  constructor(
    private readonly log: (l: LogLine) => void,
    private readonly pfnOf: (mfn: number) => number,
    denseBase = 0,
    denseCount = 0,
  ) {
    this.base = denseBase;
    this.dense = new Array<Slot | undefined>(denseCount).fill(undefined);
  }

  private slot(mfn: number): Slot | undefined {
    const i = mfn - this.base;
    const f = i >= 0 && i < this.dense.length ? this.dense[i] : undefined;
    if (f !== undefined || this.extra.size === 0) return f;
    return this.extra.get(mfn);
  }

  private insert(mfn: number): Slot {
    const f: Slot = { type: PGT_NONE, count: 0, pinned: false, xenL2: false, validated: false, stamp: -1, mfn, prev: this.tail, next: null };
    if (this.tail !== null) this.tail.next = f;
    else this.head = f;
    this.tail = f;
    const i = mfn - this.base;
    if (i >= 0 && i < this.dense.length && Number.isInteger(i)) this.dense[i] = f;
    else this.extra.set(mfn, f);
    return f;
  }

  get(mfn: number): FrameInfo | undefined {
    return this.slot(mfn);
  }

  typeOf(mfn: number): PageType {
    return this.slot(mfn)?.type ?? PGT_NONE;
  }

  countOf(mfn: number): number {
    return this.slot(mfn)?.count ?? 0;
  }

  /** Typed (count > 0) as a page table of any level. */
  isPageTable(mfn: number): boolean {
    const f = this.slot(mfn);
    return f !== undefined && f.count > 0 && f.type >= PGT_L1 && f.type <= PGT_L4;
  }

  isPinned(mfn: number): boolean {
    return this.slot(mfn)?.pinned ?? false;
  }

  get pinnedCount(): number {
    return this.pinned;
  }

  /** Every frame with state (typed, counted or pinned), in insertion order (as the Map it replaces iterated). */
  *frames(): IterableIterator<[number, FrameInfo]> {
    for (let f = this.head; f !== null; f = f.next) yield [f.mfn, f];
  }

  /** A deep copy for before/after comparisons (tests, invariant checks). */
  snapshot(): Map<number, FrameInfo> {
    const m = new Map<number, FrameInfo>();
    for (const [k, v] of this.frames()) {
      if (v.count > 0 || v.pinned) m.set(k, { type: v.type, count: v.count, pinned: v.pinned, xenL2: v.xenL2, validated: v.validated, stamp: v.stamp });
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
    const f = this.slot(mfn) ?? this.insert(mfn);
    if (f.count === 0) {
      if (f.type !== type || f.xenL2 !== xenL2) {
        // A type change: flush stale TLB entries unless the stamp is old enough.
        if (f.type !== PGT_NONE || f.stamp >= 0) this.onTypeChange(mfn, f.stamp);
        f.type = type;
        f.xenL2 = xenL2;
        f.validated = type === PGT_WRITABLE;
      }
      f.count = 1;
      this.typeRefChanges++;
      if (!f.validated) {
        if (!this.ops.alloc(mfn, type, xenL2)) {
          this.log(R.errorValidating(mfn, this.pfnOf(mfn), typeName(type, xenL2)));
          // "Noone else can get a reference": type_info = 0.
          f.type = PGT_NONE;
          f.xenL2 = false;
          f.count = 0;
          this.typeRefChanges++;
          return false;
        }
        f.validated = true;
      }
      return true;
    }
    if (f.type !== type || f.xenL2 !== xenL2) {
      // Xen stays silent when an L1 is expected and an L2 is seen: that is
      // the (2-level) linear page-table case, tried next by the caller.
      if (!quiet && !(f.type === PGT_L2 && type === PGT_L1)) {
        this.log(R.badType(typeName(f.type, f.xenL2), typeName(type, xenL2), mfn, this.pfnOf(mfn)));
      }
      return false;
    }
    f.count++;
    this.typeRefChanges++;
    return true;
  }

  /**
   * put_page_type: drop a type reference; at zero a page table is released
   * (free_page_type: free_lX_table), the validated bit is cleared, the type
   * is kept and the frame stamped with the TLB-flush time.
   */
  putPageType(mfn: number): void {
    const f = this.slot(mfn);
    if (f === undefined || f.count === 0) throw new Error(`put_page_type: mfn ${mfn.toString(16)} has no type reference`);
    f.count--;
    this.typeRefChanges++;
    if (f.count === 0) {
      if (f.validated && f.type >= PGT_L1 && f.type <= PGT_L4) {
        f.validated = false;
        this.onFreePageType();
        this.ops.free(mfn, f.type, f.xenL2);
      }
      f.stamp = this.flushTime();
    }
  }

  setPinned(mfn: number, pinned: boolean): void {
    const f = this.slot(mfn);
    if (f === undefined) throw new Error(`pin flag on an untyped mfn ${mfn.toString(16)}`);
    if (f.pinned !== pinned) this.pinned += pinned ? 1 : -1;
    f.pinned = pinned;
  }

  /** Tests and the invariant checker's self-test only: corrupt a count. */
  debugSetCount(mfn: number, count: number): void {
    const f = this.slot(mfn);
    if (f !== undefined) f.count = count;
  }
}
