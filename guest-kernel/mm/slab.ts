/**
 * The slab allocator with 2.6.21 semantics (mm/slab.c), as far as the seed
 * patch depends on them:
 *  - a cache has an object size, an alignment, a constructor and a destructor;
 *  - the constructor runs on every object of a slab when the slab is created
 *    (cache_grow -> cache_init_objs), not on each allocation: objects go back
 *    to the cache in their constructed state and come out that way again;
 *  - the destructor runs on every object when the slab page is released
 *    (slab_destroy -> slab_destroy_objs): when a cache holds more free
 *    objects than its free_limit, on kmem_cache_shrink, on kmem_cache_destroy.
 *
 * This is why, in the seed, a freed pgd stays on pgd_list: pgd_dtor (which
 * unlists it) only runs when its slab page is released.
 *
 * Slab pages come from the page allocator, so a slab allocation fails when
 * its page allocation fails; every kmem_cache_alloc also counts as one
 * allocation for fault injection. Objects are guest-physical addresses (the
 * direct map of the slab page); small objects share a page with the slab
 * management (struct slab + kmem_bufctl_t array, on-slab below 512 bytes), so
 * a 32-byte pgd does not sit at offset 0 of its page.
 *
 * Not modelled: per-CPU array caches, colouring, off-slab management for
 * large objects (it does not change where objects lie), cache_reap timers.
 */
import type { GuestMemory } from '../../hypervisor/paravirt-ops.js';
import { GFP_KERNEL, PG_slab, type PageAllocator } from './page-alloc.js';

const PAGE_SIZE = 4096;
/** sizeof(struct slab) on i386 (list_head, colouroff, s_mem, inuse, free, nodeid). */
const SLAB_HEADER = 28;
/** sizeof(kmem_bufctl_t) */
const BUFCTL = 4;
/** Objects below this size keep their management on the slab (slab.c: size < PAGE_SIZE >> 3). */
const OFF_SLAB_LIMIT = PAGE_SIZE >> 3;

export type SlabCtor = (obj: number, cache: KmemCache) => void;

interface Slab {
  /** Head pfn of the slab's pages. */
  pfn: number;
  inuse: number;
  /** Free objects (addresses), LIFO like the bufctl free list. */
  free: number[];
}

export class KmemCache {
  /** Object size rounded up to the alignment. */
  readonly buffer_size: number;
  /** Objects per slab. */
  readonly num: number;
  /** Page order of one slab. */
  readonly gfporder: number;
  /** Offset of the first object in the slab. */
  readonly objOffset: number;
  /** Free objects kept before empty slabs are destroyed (free_limit). */
  readonly free_limit: number;

  readonly slabs = new Map<number, Slab>();
  /** Slabs with at least one free object, in the order they were grown (partial first). */
  private readonly avail: Slab[] = [];
  /** Live (allocated) objects. */
  readonly live = new Set<number>();
  freeObjects = 0;
  /** Constructor and destructor calls, for tests. */
  ctorCalls = 0;
  dtorCalls = 0;

  constructor(
    readonly name: string,
    readonly size: number,
    readonly align: number,
    readonly ctor: SlabCtor | null,
    readonly dtor: SlabCtor | null,
    private readonly slab: SlabAllocator,
  ) {
    const a = Math.max(align, 4);
    this.buffer_size = Math.ceil(size / a) * a;
    let order = 0;
    while (this.buffer_size > PAGE_SIZE << order) order++;
    this.gfporder = order;
    const bytes = PAGE_SIZE << order;
    if (this.buffer_size < OFF_SLAB_LIMIT) {
      let num = Math.floor((bytes - SLAB_HEADER) / (this.buffer_size + BUFCTL));
      while (num > 0 && Math.ceil((SLAB_HEADER + num * BUFCTL) / a) * a + num * this.buffer_size > bytes) num--;
      this.num = num;
      this.objOffset = Math.ceil((SLAB_HEADER + num * BUFCTL) / a) * a;
    } else {
      this.num = Math.floor(bytes / this.buffer_size);
      this.objOffset = 0;
    }
    // enable_cpucache: limit by object size, batchcount = (limit + 1) / 2,
    // free_limit = (1 + nr_cpus) * batchcount + num (one CPU).
    const limit = this.buffer_size > 131072 ? 1 : this.buffer_size > PAGE_SIZE ? 8 : this.buffer_size > 1024 ? 24 : this.buffer_size > 256 ? 54 : 120;
    this.free_limit = 2 * ((limit + 1) >> 1) + this.num;
  }

  /** Objects allocated and not freed. */
  get liveObjects(): number {
    return this.live.size;
  }

  /** Frames this cache holds. */
  get frames(): number {
    return this.slabs.size << this.gfporder;
  }

  /** cache_grow: a new slab, every object constructed. Returns false when no page. */
  grow(gfp: number, site: string): boolean {
    const pages = this.slab.pages;
    const pfn = pages.alloc_pages(gfp, this.gfporder, `cache_grow(${this.name}) <- ${site}`);
    if (pfn < 0) return false;
    for (let i = 0; i < 1 << this.gfporder; i++) {
      pages.flags[pfn + i]! |= PG_slab;
    }
    const s: Slab = { pfn, inuse: 0, free: [] };
    const base = pfn * PAGE_SIZE + this.objOffset;
    // cache_init_objs: constructor on every object; the free list hands out
    // the lowest address first.
    for (let i = this.num - 1; i >= 0; i--) s.free.push(base + i * this.buffer_size);
    for (let i = 0; i < this.num; i++) {
      if (this.ctor !== null) {
        this.ctorCalls++;
        this.ctor(base + i * this.buffer_size, this);
      }
    }
    this.slabs.set(pfn, s);
    this.avail.push(s);
    this.freeObjects += this.num;
    return true;
  }

  /** slab_destroy: destructor on every object, pages back to the page allocator. */
  destroySlab(s: Slab): void {
    const base = s.pfn * PAGE_SIZE + this.objOffset;
    if (this.dtor !== null) {
      for (let i = 0; i < this.num; i++) {
        this.dtorCalls++;
        this.dtor(base + i * this.buffer_size, this);
      }
    }
    this.slabs.delete(s.pfn);
    const k = this.avail.indexOf(s);
    if (k >= 0) this.avail.splice(k, 1);
    this.freeObjects -= this.num;
    const pages = this.slab.pages;
    for (let i = 0; i < 1 << this.gfporder; i++) pages.flags[s.pfn + i]! &= ~PG_slab;
    pages.__free_pages(s.pfn, this.gfporder);
  }

  alloc(gfp: number, site: string): number {
    if (this.slab.pages.shouldFail(`kmem_cache_alloc(${this.name}) <- ${site}`)) return 0;
    // Prefer a partially used slab (slab.c takes from slabs_partial first).
    let s: Slab | undefined;
    for (const c of this.avail) {
      if (c.inuse > 0) {
        s = c;
        break;
      }
    }
    if (s === undefined) s = this.avail[0];
    if (s === undefined) {
      if (!this.grow(gfp, site)) return 0;
      s = this.avail[this.avail.length - 1]!;
    }
    const obj = s.free.pop()!;
    s.inuse++;
    this.freeObjects--;
    if (s.free.length === 0) this.avail.splice(this.avail.indexOf(s), 1);
    this.live.add(obj);
    return obj;
  }

  free(obj: number): void {
    if (!this.live.delete(obj)) {
      throw new Error(`kmem_cache_free(${this.name}): 0x${obj.toString(16)} is not a live object of this cache`);
    }
    const pfn = this.headPfn(obj);
    const s = this.slabs.get(pfn)!;
    if (s.free.length === 0) this.avail.push(s);
    s.free.push(obj);
    s.inuse--;
    this.freeObjects++;
    // free_block: a now-empty slab is destroyed when the cache holds more
    // free objects than free_limit.
    if (s.inuse === 0 && this.freeObjects > this.free_limit) this.destroySlab(s);
  }

  /** The slab head pfn of an object address. */
  headPfn(obj: number): number {
    const pfn = Math.floor(obj / PAGE_SIZE);
    return pfn - (pfn % (1 << this.gfporder));
  }

  /** Is `obj` a constructed but free object of this cache? */
  isCachedFree(obj: number): boolean {
    const s = this.slabs.get(this.headPfn(obj));
    return s !== undefined && s.free.includes(obj);
  }

  /** Every object address of every slab (live or cached free). */
  *allObjects(): Generator<number> {
    for (const s of this.slabs.values()) {
      const base = s.pfn * PAGE_SIZE + this.objOffset;
      for (let i = 0; i < this.num; i++) yield base + i * this.buffer_size;
    }
  }

  /** kmem_cache_shrink: release every completely free slab. Returns pages freed. */
  shrink(): number {
    let n = 0;
    for (const s of [...this.slabs.values()]) {
      if (s.inuse === 0) {
        this.destroySlab(s);
        n += 1 << this.gfporder;
      }
    }
    return n;
  }
}

/** The kmalloc caches: size-32 .. size-131072 (kmalloc_sizes.h). */
const KMALLOC_SIZES = [32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072];

export class SlabAllocator {
  readonly caches: KmemCache[] = [];
  private readonly kmallocCaches: KmemCache[] = [];

  constructor(
    readonly pages: PageAllocator,
    readonly mem: GuestMemory,
  ) {
    for (const sz of KMALLOC_SIZES) this.kmallocCaches.push(this.kmem_cache_create(`size-${sz}`, sz, 32, null, null));
  }

  kmem_cache_create(name: string, size: number, align: number, ctor: SlabCtor | null, dtor: SlabCtor | null): KmemCache {
    if (!(size > 0)) throw new RangeError(`kmem_cache_create(${name}): bad size ${size}`);
    const c = new KmemCache(name, size, align, ctor, dtor, this);
    this.caches.push(c);
    return c;
  }

  /** kmem_cache_destroy: every slab released (fails if objects are live). */
  kmem_cache_destroy(c: KmemCache): void {
    if (c.liveObjects > 0) throw new Error(`kmem_cache_destroy(${c.name}): ${c.liveObjects} objects still live`);
    c.shrink();
    this.caches.splice(this.caches.indexOf(c), 1);
  }

  /** kmem_cache_alloc: an object address, or 0 on failure. */
  kmem_cache_alloc(c: KmemCache, gfp: number, site: string): number {
    return c.alloc(gfp, site);
  }

  kmem_cache_free(c: KmemCache, obj: number): void {
    c.free(obj);
  }

  /** kmalloc(size): from the smallest size-N cache that fits; 0 on failure. */
  kmalloc(size: number, site: string): number {
    const c = this.kmallocCache(size);
    return c.alloc(GFP_KERNEL, site);
  }

  kfree(obj: number, size: number): void {
    this.kmallocCache(size).free(obj);
  }

  private kmallocCache(size: number): KmemCache {
    for (const c of this.kmallocCaches) if (c.size >= size) return c;
    throw new RangeError(`kmalloc(${size}): larger than the largest kmalloc cache`);
  }

  /** Shrink every cache; returns frames released. */
  shrinkAll(): number {
    let n = 0;
    for (const c of this.caches) n += c.shrink();
    return n;
  }

  /** Live objects per cache (non-zero ones). */
  liveByCache(): Record<string, number> {
    const r: Record<string, number> = {};
    for (const c of this.caches) if (c.liveObjects > 0) r[c.name] = c.liveObjects;
    return r;
  }

  get liveObjects(): number {
    let n = 0;
    for (const c of this.caches) n += c.liveObjects;
    return n;
  }

  get frames(): number {
    let n = 0;
    for (const c of this.caches) n += c.frames;
    return n;
  }
}
