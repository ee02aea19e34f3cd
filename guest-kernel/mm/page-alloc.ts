/**
 * The page allocator: a binary buddy system over the guest's pfns, with a
 * `struct page` per frame (mm/page_alloc.c, include/linux/mm_types.h).
 *
 * Why it exists: the seed patch's correctness hinges on what it allocates and
 * frees (pmds from __get_free_page, pgds from the slab, pgd_list threaded
 * through `page->index` and `page_private`), and a leak is only visible if
 * every frame is accounted for. So frames are allocated for real: two zones
 * (ZONE_NORMAL = lowmem, ZONE_HIGHMEM above max_low_pfn), free lists per
 * order, splitting (expand) and merging (__free_one_page).
 *
 * struct page is a structure of typed arrays indexed by pfn: `flags`,
 * `_count`, `private` (page_private), `index`, and the free-list links `lru`.
 *
 * Fault injection: `failAt(k)` makes the k-th allocation from now fail
 * (page and slab allocations both count, see slab.ts); `allocations` counts
 * every allocation attempt since boot.
 */
import type { GuestMemory } from '../../hypervisor/paravirt-ops.js';

// ---- GFP flags (include/linux/gfp.h) ----
export const __GFP_HIGHMEM = 0x02;
export const __GFP_WAIT = 0x10;
export const __GFP_IO = 0x40;
export const __GFP_FS = 0x80;
export const __GFP_REPEAT = 0x400;
export const __GFP_ZERO = 0x8000;
export const GFP_KERNEL = __GFP_WAIT | __GFP_IO | __GFP_FS;
export const GFP_USER = GFP_KERNEL;
export const GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM;

// ---- page flags (include/linux/page-flags.h), as bits of page->flags ----
export const PG_reserved = 1 << 10;
export const PG_private = 1 << 11;
export const PG_slab = 1 << 7;
export const PG_highmem = 1 << 8;
export const PG_buddy = 1 << 19;
export const PG_anon = 1 << 20; // PageAnon: page->mapping & PAGE_MAPPING_ANON
/** Not a Linux flag: the frame is a page table (kernel bookkeeping for the invariant checker). */
export const PG_pagetable = 1 << 21;

export const MAX_ORDER = 11;

/** Frames per chunk of the audit's per-chunk recount (audit({ incremental: true })). */
export const AUDIT_CHUNK_SHIFT = 6;

/** What the allocator reports about an injected failure. */
export interface InjectedFailure {
  /** Allocation number (1-based, counted from failAt()). */
  k: number;
  /** Kernel function that asked. */
  site: string;
}

class Zone {
  readonly freeHead = new Int32Array(MAX_ORDER).fill(-1);
  readonly nrFreeByOrder = new Int32Array(MAX_ORDER);
  free = 0;
  constructor(
    readonly name: string,
    readonly start: number,
    readonly end: number,
  ) {}
}

export class PageAllocator {
  readonly nrPages: number;
  // struct page
  readonly flags: Int32Array;
  readonly _count: Int32Array;
  readonly private: Int32Array;
  readonly index: Int32Array;
  /** page->lru, for the buddy free lists. */
  private readonly lruNext: Int32Array;
  private readonly lruPrev: Int32Array;
  /** Order of an allocated block at its head pfn, -1 elsewhere. */
  readonly allocOrder: Int8Array;
  /**
   * Who allocated each allocated block, by head pfn (for leak reports). A
   * Map of the blocks allocated, not an array over every frame: a machine
   * snapshot copies it, and it holds a few thousand entries where an array
   * would hold one slot per frame of memory.
   */
  readonly owner = new Map<number, string>();

  readonly normal: Zone;
  readonly highmem: Zone;

  /** Frames handed out (blocks × 2^order), excluding boot-reserved frames. */
  allocated = 0;
  /** Frames reserved at boot (kernel image, bootmem page tables). */
  reserved = 0;
  /** Allocation attempts since boot (page and slab). */
  allocations = 0;
  private failCountdown = 0;
  private failK = 0;
  /** The last injected failure, if any. */
  lastInjected: InjectedFailure | null = null;

  /**
   * The incremental audit's recount, per chunk of 2^AUDIT_CHUNK_SHIFT frames:
   * the frames the allocated blocks headed in it cover, its allocated heads,
   * its reserved frames, as last recounted from `allocOrder` and `flags`. A
   * chunk is recounted when marked: every write of `allocOrder` or of
   * PG_reserved marks its chunk (all such writes are in this file), so the
   * sums always equal a full recount's.
   */
  private readonly chunkAlloc: Int32Array;
  /** Allocated block heads per chunk (checkFrames skips chunks with none). */
  readonly chunkHeads: Int32Array;
  private readonly chunkReserved: Int32Array;
  private readonly chunkDirty: Uint8Array;
  private readonly dirtyChunks: number[] = [];
  private sumAlloc = 0;
  private sumReserved = 0;

  constructor(
    private readonly mem: GuestMemory,
    nrPages: number,
    maxLowPfn: number,
  ) {
    this.nrPages = nrPages;
    this.flags = new Int32Array(nrPages);
    this._count = new Int32Array(nrPages);
    this.private = new Int32Array(nrPages);
    this.index = new Int32Array(nrPages);
    this.lruNext = new Int32Array(nrPages).fill(-1);
    this.lruPrev = new Int32Array(nrPages).fill(-1);
    this.allocOrder = new Int8Array(nrPages).fill(-1);
    this.normal = new Zone('Normal', 0, maxLowPfn);
    this.highmem = new Zone('HighMem', maxLowPfn, nrPages);
    for (let pfn = maxLowPfn; pfn < nrPages; pfn++) this.flags[pfn] = PG_highmem;
    // Every frame starts reserved (as after bootmem); free_area_init then
    // frees what is not reserved: see freeBootmem().
    this.flags.fill(PG_reserved, 0, maxLowPfn);
    for (let pfn = maxLowPfn; pfn < nrPages; pfn++) this.flags[pfn] = PG_highmem | PG_reserved;
    this.reserved = nrPages;
    const chunks = (nrPages + (1 << AUDIT_CHUNK_SHIFT) - 1) >>> AUDIT_CHUNK_SHIFT;
    this.chunkAlloc = new Int32Array(chunks);
    this.chunkHeads = new Int32Array(chunks);
    this.chunkReserved = new Int32Array(chunks);
    this.chunkDirty = new Uint8Array(chunks);
    for (let c = 0; c < chunks; c++) this.markChunk(c << AUDIT_CHUNK_SHIFT);
  }

  /** `allocOrder[pfn]` or PG_reserved of `pfn` is about to change: its chunk is recounted at the next incremental audit. */
  private markChunk(pfn: number): void {
    const c = pfn >>> AUDIT_CHUNK_SHIFT;
    if (this.chunkDirty[c] === 0) {
      this.chunkDirty[c] = 1;
      this.dirtyChunks.push(c);
    }
  }

  /** Recount the marked chunks from the arrays (the sums then equal a full recount's). */
  refreshChunks(): void {
    const ao = this.allocOrder;
    const fl = this.flags;
    for (const c of this.dirtyChunks) {
      const start = c << AUDIT_CHUNK_SHIFT;
      const end = Math.min(this.nrPages, start + (1 << AUDIT_CHUNK_SHIFT));
      let alloc = 0;
      let heads = 0;
      let reserved = 0;
      for (let pfn = start; pfn < end; pfn++) {
        const o = ao[pfn]!;
        if (o >= 0) {
          alloc += 1 << o;
          heads++;
        }
        if ((fl[pfn]! & PG_reserved) !== 0) reserved++;
      }
      this.sumAlloc += alloc - this.chunkAlloc[c]!;
      this.sumReserved += reserved - this.chunkReserved[c]!;
      this.chunkAlloc[c] = alloc;
      this.chunkHeads[c] = heads;
      this.chunkReserved[c] = reserved;
      this.chunkDirty[c] = 0;
    }
    this.dirtyChunks.length = 0;
  }

  /**
   * free_all_bootmem: release every frame in [start, end) that boot did not
   * keep, building the buddy free lists. Called once at boot.
   */
  freeBootmem(start: number, end: number, keep: (pfn: number) => boolean): void {
    for (let pfn = start; pfn < end; pfn++) {
      if (keep(pfn)) continue;
      this.markChunk(pfn);
      this.flags[pfn]! &= ~PG_reserved;
      this.reserved--;
      this._count[pfn] = 0;
      this.allocated++; // __free_page below takes it back
      this.allocOrder[pfn] = 0;
      this.__free_one(pfn, 0);
    }
  }

  /** clear_page cost hook: called with the number of pages zeroed (set by start_kernel). */
  onZero: ((pages: number) => void) | null = null;

  /** Take one frame out of the free lists at boot (alloc_bootmem_low_pages): reserved, zeroed. */
  alloc_bootmem_low_pages(): number {
    const pfn = this.take(this.normal, 0);
    if (pfn < 0) throw new Error('alloc_bootmem_low_pages: out of memory at boot');
    this.markChunk(pfn);
    this.flags[pfn]! |= PG_reserved;
    this._count[pfn] = 1;
    this.reserved++;
    this.mem.zeroPage(pfn);
    if (this.onZero !== null) this.onZero(1);
    return pfn;
  }

  get free(): number {
    return this.normal.free + this.highmem.free;
  }

  /** Frames not free: allocated plus reserved. */
  get used(): number {
    return this.allocated + this.reserved;
  }

  // ---- fault injection ----

  /** Make the k-th allocation from now fail (k >= 1); null disarms. */
  failAt(k: number | null): void {
    if (k === null) {
      this.failCountdown = 0;
      return;
    }
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`failAt(${k}): k must be a positive integer`);
    this.failCountdown = k;
    this.failK = k;
    this.lastInjected = null;
  }

  /** Count one allocation; true if this one must fail (injected). */
  shouldFail(site: string): boolean {
    this.allocations++;
    if (this.failCountdown > 0 && --this.failCountdown === 0) {
      this.lastInjected = { k: this.failK, site };
      return true;
    }
    return false;
  }

  // ---- allocation (__alloc_pages / free_pages) ----

  /** alloc_pages(gfp, order): the head pfn, or -1 (out of memory or injected failure). */
  alloc_pages(gfp: number, order: number, site: string): number {
    if (this.shouldFail(site)) return -1;
    let pfn = -1;
    if ((gfp & __GFP_HIGHMEM) !== 0) pfn = this.take(this.highmem, order);
    if (pfn < 0) pfn = this.take(this.normal, order);
    if (pfn < 0) return -1;
    this._count[pfn] = 1;
    this.markChunk(pfn);
    this.allocOrder[pfn] = order;
    this.owner.set(pfn, site);
    this.allocated += 1 << order;
    if ((gfp & __GFP_ZERO) !== 0) {
      for (let i = 0; i < 1 << order; i++) this.mem.zeroPage(pfn + i);
      if (this.onZero !== null) this.onZero(1 << order);
    }
    return pfn;
  }

  /** __get_free_page(gfp): one lowmem frame, or -1. */
  __get_free_page(gfp: number, site: string): number {
    return this.alloc_pages(gfp & ~__GFP_HIGHMEM, 0, site);
  }

  /** get_zeroed_page(gfp) */
  get_zeroed_page(gfp: number, site: string): number {
    return this.alloc_pages((gfp & ~__GFP_HIGHMEM) | __GFP_ZERO, 0, site);
  }

  /** get_page: one more reference. */
  get_page(pfn: number): void {
    this._count[pfn]!++;
  }

  /** put_page / __free_pages: drop a reference; the block is freed at zero (reserved frames never are). */
  __free_pages(pfn: number, order: number): void {
    const c = --this._count[pfn]!;
    if (c > 0) return;
    if (c < 0) throw new Error(`__free_pages: pfn 0x${pfn.toString(16)} has a negative reference count`);
    if ((this.flags[pfn]! & PG_reserved) !== 0) return;
    if (this.allocOrder[pfn] !== order) {
      throw new Error(`__free_pages: pfn 0x${pfn.toString(16)} freed with order ${order}, allocated with ${this.allocOrder[pfn]}`);
    }
    this.flags[pfn]! &= PG_highmem;
    this.private[pfn] = 0;
    this.index[pfn] = 0;
    this.owner.delete(pfn);
    this.__free_one(pfn, order);
  }

  free_page(pfn: number): void {
    this.__free_pages(pfn, 0);
  }

  put_page(pfn: number): void {
    this.__free_pages(pfn, this.allocOrder[pfn]! < 0 ? 0 : this.allocOrder[pfn]!);
  }

  isHighmem(pfn: number): boolean {
    return (this.flags[pfn]! & PG_highmem) !== 0;
  }

  isFree(pfn: number): boolean {
    return this._count[pfn] === 0 && (this.flags[pfn]! & PG_reserved) === 0;
  }

  // ---- the buddy system ----

  private zoneOf(pfn: number): Zone {
    return pfn >= this.highmem.start ? this.highmem : this.normal;
  }

  private listAdd(z: Zone, order: number, pfn: number): void {
    const head = z.freeHead[order]!;
    this.lruNext[pfn] = head;
    this.lruPrev[pfn] = -1;
    if (head >= 0) this.lruPrev[head] = pfn;
    z.freeHead[order] = pfn;
    z.nrFreeByOrder[order]!++;
    this.flags[pfn]! |= PG_buddy;
    this.private[pfn] = order; // set_page_order
  }

  private listDel(z: Zone, order: number, pfn: number): void {
    const n = this.lruNext[pfn]!;
    const p = this.lruPrev[pfn]!;
    if (p >= 0) this.lruNext[p] = n;
    else z.freeHead[order] = n;
    if (n >= 0) this.lruPrev[n] = p;
    this.lruNext[pfn] = this.lruPrev[pfn] = -1;
    z.nrFreeByOrder[order]!--;
    this.flags[pfn]! &= ~PG_buddy;
    this.private[pfn] = 0;
  }

  /** __rmqueue + expand: the smallest free block of at least `order`, split down. */
  private take(z: Zone, order: number): number {
    for (let o = order; o < MAX_ORDER; o++) {
      const pfn = z.freeHead[o]!;
      if (pfn < 0) continue;
      this.listDel(z, o, pfn);
      // expand(): give back the upper halves.
      let size = 1 << o;
      for (let cur = o; cur > order; cur--) {
        size >>= 1;
        this.listAdd(z, cur - 1, pfn + size);
      }
      z.free -= 1 << order;
      return pfn;
    }
    return -1;
  }

  /** __free_one_page: merge with free buddies of the same order inside the zone. */
  private __free_one(pfn: number, order: number): void {
    const z = this.zoneOf(pfn);
    this.markChunk(pfn);
    this.allocOrder[pfn] = -1;
    this.allocated -= 1 << order;
    z.free += 1 << order;
    let o = order;
    let p = pfn;
    while (o < MAX_ORDER - 1) {
      const buddy = p ^ (1 << o);
      if (buddy < z.start || buddy + (1 << o) > z.end) break;
      if ((this.flags[buddy]! & PG_buddy) === 0 || this.private[buddy] !== o) break;
      this.listDel(z, o, buddy);
      p = Math.min(p, buddy);
      o++;
    }
    this.listAdd(z, o, p);
  }

  /**
   * Recount from the free lists and the allocated-block map (for the
   * invariant checker): returns a description of any mismatch, or null.
   * `incremental`: the block map's recount is kept per chunk and redone for
   * the chunks written since (refreshChunks): the same result, for the
   * fuzzer's check after every statement.
   */
  audit(opts: { incremental?: boolean } = {}): string | null {
    let free = 0;
    for (const z of [this.normal, this.highmem]) {
      let zf = 0;
      for (let o = 0; o < MAX_ORDER; o++) {
        let n = 0;
        for (let p = z.freeHead[o]!; p >= 0; p = this.lruNext[p]!) {
          if ((this.flags[p]! & PG_buddy) === 0 || this.private[p] !== o) {
            return `free list ${z.name} order ${o}: pfn 0x${p.toString(16)} is not a free buddy of that order`;
          }
          if (++n > this.nrPages) return `free list ${z.name} order ${o} has a cycle`;
          zf += 1 << o;
        }
        if (n !== z.nrFreeByOrder[o]) return `free list ${z.name} order ${o}: ${n} blocks, counter says ${z.nrFreeByOrder[o]}`;
      }
      if (zf !== z.free) return `zone ${z.name}: ${zf} free frames on the lists, counter says ${z.free}`;
      free += zf;
    }
    let alloc = 0;
    let reserved = 0;
    if (opts.incremental === true) {
      // The same recount, of the chunks written since the last one only.
      this.refreshChunks();
      alloc = this.sumAlloc;
      reserved = this.sumReserved;
    } else {
      for (let pfn = 0; pfn < this.nrPages; pfn++) {
        const o = this.allocOrder[pfn]!;
        if (o >= 0) alloc += 1 << o;
        if ((this.flags[pfn]! & PG_reserved) !== 0) reserved++;
      }
    }
    if (alloc !== this.allocated) return `allocated blocks cover ${alloc} frames, counter says ${this.allocated}`;
    if (reserved !== this.reserved) return `${reserved} frames reserved, counter says ${this.reserved}`;
    if (free + alloc + reserved !== this.nrPages) {
      return `frames not accounted: free ${free} + allocated ${alloc} + reserved ${reserved} != total ${this.nrPages}`;
    }
    return null;
  }
}
