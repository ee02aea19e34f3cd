/**
 * The accounts a fault-injection run is checked by: tear the guest down
 * (switch to swapper_pg_dir, exit every process, vfree every area the
 * workload made, kmem_cache_shrink every cache) and count what is still
 * held: frames, slab objects, pgd_list entries, live mms and vmalloc areas,
 * and under Xen the pinned frames and the type references the hypervisor
 * holds. A run leaked when its torn-down accounts differ from those of a
 * clean boot torn down the same way; the difference names what leaked.
 */
import type { Kernel } from '../../guest-kernel/kernel.js';
import { PG_reserved } from '../../guest-kernel/mm/page-alloc.js';
import { _PAGE_PSE, entryPa, entryPfn, pgd_read, pmd_read, present } from '../../guest-kernel/mm/pgtable-defs.js';
import type { ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { PGT_L1, PGT_L4 } from '../../hypervisor/xen/frame-table.js';
import { checkXenInvariants, type XenBackend } from '../../hypervisor/xen/index.js';

export interface Accounts {
  /** Frames in use, not counting kernel pte pages (below). */
  frames: number;
  /**
   * Kernel pte pages hooked into swapper_pg_dir after boot (vmalloc,
   * split large pages): Linux never frees them, so they are kept, not leaked
   * (the invariant checker proves every other allocated frame has an owner).
   */
  kernelPtePages: number;
  slabObjects: number;
  slabByCache: Record<string, number>;
  pgdList: number;
  mms: number;
  vmAreas: number;
  /** Frames the hypervisor holds pinned (0 natively). */
  pins: number;
  /**
   * Frames the hypervisor holds typed as page tables (l1..l4), and their type
   * references (0 natively), kernel pte pages excepted (kept, as above). Writable type references are not counted: they
   * follow the direct map's protections, which change_page_attr may have left
   * read-only when a run stopped early (not a leak; a page table mapped
   * writable would break checkXenInvariants).
   */
  typedFrames: number;
  typeRefs: number;
}

/** What a run left behind compared with a clean boot (cli.md's `leaked`, plus the hypervisor's type references). */
export interface Leaked {
  frames: number;
  slabObjects: number;
  pgdList: number;
  pins: number;
  typeRefs: number;
  /** Slab caches whose live objects differ (cache: difference). */
  caches?: Record<string, number>;
}

/** Addresses of the vmalloc areas alive now (taken right after boot: those are not the workload's). */
export function vmallocAreas(kernel: Kernel): Set<number> {
  return new Set(kernel.k.vmlist.map((a) => a.addr));
}

/**
 * Tear down everything the workload made: run on swapper_pg_dir, exit every
 * process (exit_mmap, pgd_free), vfree every area not alive at boot, shrink
 * the caches. Throws what the kernel or the hypervisor throws.
 */
export function tearDown(kernel: Kernel, bootAreas: ReadonlySet<number>): void {
  kernel.switchToIdle();
  for (const p of kernel.processes) kernel.exit(p);
  for (const a of [...kernel.k.vmlist]) if (!bootAreas.has(a.addr)) kernel.vfree(a.addr);
  kernel.shrinkCaches();
}

/** What was allocated, typed and pinned; `xen` is the run's Xen backend handle (Interpreter.xen), null natively. */
export function accounts(kernel: Kernel, xen: XenBackend | null): Accounts {
  const s = kernel.snapshot();
  const kpte = kernelPtePages(kernel);
  let typedFrames = 0;
  let typeRefs = 0;
  if (xen) {
    const kept = new Set([...kpte].map((pfn) => xen.domain.p2m.pfnToMfn(pfn)));
    for (const [mfn, f] of xen.domain.frames.frames()) {
      if (f.count === 0 || f.type < PGT_L1 || f.type > PGT_L4 || kept.has(mfn)) continue;
      typedFrames++;
      typeRefs += f.count;
    }
  }
  return {
    frames: s.framesUsed - kpte.size,
    kernelPtePages: kpte.size,
    slabObjects: s.slabObjects,
    slabByCache: s.slabByCache,
    pgdList: s.pgdList,
    mms: s.mms,
    vmAreas: s.vmAreas,
    pins: kernel.ops.stats.pinned,
    typedFrames,
    typeRefs,
  };
}

/** Allocated (not boot-reserved) pte pages of swapper_pg_dir's kernel part (pfns). */
export function kernelPtePages(kernel: Kernel): Set<number> {
  const k = kernel.k;
  const L = k.L;
  const pgd = k.swapper_pg_dir;
  const out = new Set<number>();
  for (let i = L.USER_PTRS_PER_PGD; i < L.PTRS_PER_PGD; i++) {
    let base: number;
    let count: number;
    if (L.pae) {
      const e = pgd_read(k, pgd + i * 8);
      if (!present(e)) continue;
      base = entryPa(e);
      count = 512;
    } else {
      base = pgd + i * 4;
      count = 1;
    }
    for (let j = 0; j < count; j++) {
      const e = pmd_read(k, base + j * L.ENTRY_SIZE);
      if (!present(e) || (e & _PAGE_PSE) !== 0n) continue;
      const pfn = entryPfn(e);
      if (pfn < k.pages.nrPages && (k.pages.flags[pfn]! & PG_reserved) === 0) out.add(pfn);
    }
  }
  return out;
}

/** The difference `after - base`; all zero when nothing leaked. */
export function leakedOf(after: Accounts, base: Accounts): Leaked {
  const l: Leaked = {
    frames: after.frames - base.frames,
    slabObjects: after.slabObjects - base.slabObjects,
    pgdList: after.pgdList - base.pgdList,
    pins: after.pins - base.pins,
    typeRefs: after.typeRefs - base.typeRefs,
  };
  const caches: Record<string, number> = {};
  for (const c of new Set([...Object.keys(after.slabByCache), ...Object.keys(base.slabByCache)])) {
    const d = (after.slabByCache[c] ?? 0) - (base.slabByCache[c] ?? 0);
    if (d !== 0) caches[c] = d;
  }
  if (Object.keys(caches).length > 0) l.caches = caches;
  return l;
}

export function isLeak(l: Leaked): boolean {
  return l.frames !== 0 || l.slabObjects !== 0 || l.pgdList !== 0 || l.pins !== 0 || l.typeRefs !== 0;
}

/** "frames +3, slab +1 (pgd 1)" or "none". */
export function leakText(l: Leaked | null): string {
  if (l === null) return '-';
  const parts: string[] = [];
  const sg = (n: number): string => (n > 0 ? `+${n}` : `${n}`);
  if (l.frames !== 0) parts.push(`frames ${sg(l.frames)}`);
  if (l.slabObjects !== 0) {
    const c = l.caches ? ` (${Object.entries(l.caches).map(([k, v]) => `${k} ${sg(v)}`).join(', ')})` : '';
    parts.push(`slab ${sg(l.slabObjects)}${c}`);
  }
  if (l.pgdList !== 0) parts.push(`pgd_list ${sg(l.pgdList)}`);
  if (l.pins !== 0) parts.push(`pins ${sg(l.pins)}`);
  if (l.typeRefs !== 0) parts.push(`type refs ${sg(l.typeRefs)}`);
  return parts.length ? parts.join(', ') : 'none';
}

/** The guest's invariants and, under Xen, the hypervisor's. */
export function allInvariants(kernel: Kernel, xen: XenBackend | null): string[] {
  return [...kernel.checkInvariants(), ...(xen ? checkXenInvariants(xen).map((v) => `xen: ${v}`) : [])];
}
