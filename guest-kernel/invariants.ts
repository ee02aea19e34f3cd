/**
 * The guest kernel's invariant checker. What must hold between operations:
 *  - frames: the buddy lists and counters agree, free + allocated + reserved
 *    = total, and every allocated frame has an owner the kernel knows (slab,
 *    page table, user page, vmalloc page, pending df_list) — a frame nobody
 *    owns has leaked; a user page's reference count equals the ptes mapping it;
 *  - pgd_list: no cycle, back links consistent, each pgd once, and exactly the
 *    pgds the variant lists (patched: the live unshared pgds; seed/prepatch:
 *    every constructed object of the pgd cache);
 *  - kernel mappings: every live pgd agrees with init_mm where it must
 *    (shared: the same kernel pmd; unshared: its own copy, equal outside the
 *    vmalloc area, where an entry may be missing but never different);
 *  - user mappings: only anonymous pages or the zero page, never a kernel
 *    frame; a writable pte maps a page nobody else maps (copy-on-write);
 *  - low page 0 (reserved at boot) is untouched: a page-table update through
 *    an empty pgd entry lands there;
 *  - CR3 holds the active mm's pgd, and (probe vs. a walk of memory) the
 *    processor's view — under PAE the PDPTE registers — matches the pgd.
 */
import { ACCESS_READ } from '../emulator/paging-bits.js';
import type { KState, MmStruct } from './kstate.js';
import { hex } from '../emulator/hex.js';
import { AUDIT_CHUNK_SHIFT, PG_anon, PG_reserved } from './mm/page-alloc.js';
import { PGD_LIST_HEAD, pgdListEntries } from './mm/pgtable-common.js';
import { _PAGE_PSE, entryPa, entryPfn, pgd_read, pmd_read, present, pte_read, readRaw } from './mm/pgtable-defs.js';
import { PTE_RW } from '../emulator/paging-bits.js';
import { pteFromWords } from '../hypervisor/types.js';

const MAX_REPORTS = 20;

export function checkInvariants(
  k: KState,
  tasks: { name: string; mm: MmStruct }[],
  census: (mm: MmStruct, sink: MmCensusSink) => void = (mm, sink) => mmCensus(k, mm, sink),
  /** The page allocator's recounts per chunk written since the last check (IncrementalInvariantChecker): the same findings. */
  incremental = false,
  /** Reuse each mm's kernel-mapping comparison when nothing it read changed (IncrementalInvariantChecker): the same findings. */
  kernelMappings: KernelMappingsCache | null = null,
): string[] {
  const out: string[] = [];
  const report = (s: string): void => {
    if (out.length < MAX_REPORTS) out.push(s);
  };
  const audit = k.pages.audit({ incremental });
  if (audit !== null) report(`page allocator: ${audit}`);
  checkPgdList(k, report);
  checkKernelMappings(k, report, kernelMappings);
  checkFrames(k, tasks, report, census, incremental, kernelMappings);
  if (kernelMappings === null) checkLowPage(k, report);
  else {
    // Page 0's finding of the last check, while the frame is not written.
    const c = kernelMappings;
    c.lowPageNext = c.lowPagePrev !== undefined && !c.frameChanged(0) ? c.lowPagePrev : null;
    if (c.lowPageNext !== null) {
      for (const x of c.lowPageNext) report(x);
    } else {
      const found: string[] = [];
      checkLowPage(k, (x) => {
        found.push(x);
        report(x);
      });
      c.lowPageNext = found;
    }
  }
  checkCr3(k, report);
  for (const pfn of k.unbalancedReleasePd) {
    report(`unbalanced paravirt_release_pd of pfn ${hex(pfn)}: never announced with alloc_pd/alloc_pd_clone (pvmmu's guest debug check)`);
  }
  return out;
}

type Report = (s: string) => void;

function checkPgdList(k: KState, report: Report): void {
  const p = k.pages;
  const seen = new Set<number>();
  let prev = PGD_LIST_HEAD;
  for (let page = k.pgd_list; page >= 0; page = p.index[page]!) {
    if (seen.has(page)) {
      report(`pgd_list: pgd ${hex(page * 4096)} appears twice (cycle)`);
      return;
    }
    seen.add(page);
    if (p.private[page] !== prev) report(`pgd_list: pgd ${hex(page * 4096)} has a wrong back link`);
    prev = page;
  }
  const expected = new Set<number>();
  if (k.variant === 'patched') {
    if (!k.SHARED_KERNEL_PMD) for (const mm of k.mms) expected.add(mm.pgd / 4096);
  } else if (!k.SHARED_KERNEL_PMD) {
    // The slab constructor lists every object of a pgd slab, live or cached.
    for (const obj of k.pgd_cache.allObjects()) expected.add(Math.floor(obj / 4096));
  }
  for (const page of seen) if (!expected.has(page)) report(`pgd_list: ${hex(page * 4096)} is listed but is not a pgd that may be listed`);
  for (const page of expected) if (!seen.has(page)) report(`pgd_list: pgd ${hex(page * 4096)} is missing from the list`);
}

/**
 * What checkKernelMappings read and found for one mm (2-level, or PAE with
 * unshared kernel pmds): the guest frames it read, the pgd entries it
 * translated (address, value as pgd_read gave it), and its findings in
 * order: a string is a report, a number a kernel pmd it uses (whether
 * another mm uses it too is decided afresh each time).
 */
interface KernelMappingsRecord {
  pgd: number;
  owner: string;
  frames: number[];
  entries: (number | bigint)[];
  events: (string | number)[];
}

/**
 * What checkFrames' scan of swapper_pg_dir for kernel pte pages read (the
 * guest frames whose words it tested, the entries it translated: address
 * and value as pgd_read gave it, or -1 - address and value as pmd_read gave
 * it) and the frames of the present non-large entries it found, in order.
 */
interface SwapperPtePages {
  pgd: number;
  frames: number[];
  entries: (number | bigint)[];
  pfns: number[];
}

/** The last scan of swapper_pg_dir, if nothing it read changed since (then kept for the next check too). */
function reuseSwapperPtePages(k: KState, cache: KernelMappingsCache): SwapperPtePages | null {
  const r = cache.swapperPrev;
  if (r === null || r.pgd !== k.swapper_pg_dir) return null;
  for (let i = 0; i < r.frames.length; i++) if (cache.frameChanged(r.frames[i]!)) return null;
  const es = r.entries;
  for (let i = 0; i < es.length; i += 2) {
    const a = es[i] as number;
    if ((a >= 0 ? pgd_read(k, a) : pmd_read(k, -1 - a)) !== es[i + 1]) return null;
  }
  cache.swapperNext = r;
  cache.reused++;
  return r;
}

/** Kernel-mapping comparisons (and checkFrames' scan of swapper_pg_dir) kept from one check to the next (IncrementalInvariantChecker). */
export interface KernelMappingsCache {
  /** Guest frame `pfn` may have been written since the last check. */
  frameChanged: (pfn: number) => boolean;
  /** The last check's records, and this check's (filled by checkKernelMappings). */
  prev: Map<MmStruct, KernelMappingsRecord>;
  next: Map<MmStruct, KernelMappingsRecord>;
  /** checkFrames' scan of swapper_pg_dir for kernel pte pages: the last check's, and this check's. */
  swapperPrev: SwapperPtePages | null;
  swapperNext: SwapperPtePages | null;
  /** checkLowPage's findings: the last check's (undefined: none kept), and this check's. */
  lowPagePrev: string[] | undefined;
  lowPageNext: string[] | null;
  /** Records reused (counted up). */
  reused: number;
}

/** Does `r` still hold for `mm`: no frame it read written, every pgd entry it translated the same? */
function kernelMappingsHold(k: KState, mm: MmStruct, r: KernelMappingsRecord, frameChanged: (pfn: number) => boolean): boolean {
  if (r.pgd !== mm.pgd || r.owner !== mm.owner) return false;
  for (let i = 0; i < r.frames.length; i++) if (frameChanged(r.frames[i]!)) return false;
  const es = r.entries;
  for (let i = 0; i < es.length; i += 2) if (pgd_read(k, es[i] as number) !== es[i + 1]) return false;
  return true;
}

/** Compare every live pgd's kernel part with swapper_pg_dir; with `cache`, an mm none of whose inputs changed gets the findings of the last check. */
function checkKernelMappings(k: KState, report0: Report, cache: KernelMappingsCache | null = null): void {
  const L = k.L;
  const sw = k.swapper_pg_dir;
  const pmdOwners = new Map<number, number>();
  const usePmd = (mm: MmStruct, pmd: number): void => {
    const other = pmdOwners.get(pmd);
    if (other !== undefined) report0(`pgd ${hex(mm.pgd)}: kernel pmd ${hex(pmd)} also used by pgd ${hex(other)}`);
    pmdOwners.set(pmd, mm.pgd);
  };
  for (const mm of k.mms) {
    if (L.pae && k.SHARED_KERNEL_PMD) {
      for (let i = L.USER_PTRS_PER_PGD; i < L.PTRS_PER_PGD; i++) {
        if (readRaw(k, mm.pgd + i * 8) !== readRaw(k, sw + i * 8)) {
          report0(`pgd ${hex(mm.pgd)} (${mm.owner}): kernel slot ${i} is not init_mm's shared pmd`);
        }
      }
      continue;
    }
    let report = report0;
    let rec: KernelMappingsRecord | null = null;
    if (cache !== null) {
      const r = cache.prev.get(mm);
      if (r !== undefined && kernelMappingsHold(k, mm, r, cache.frameChanged)) {
        for (const ev of r.events) {
          if (typeof ev === 'string') report0(ev);
          else usePmd(mm, ev);
        }
        cache.next.set(mm, r);
        cache.reused++;
        continue;
      }
      // 2-level reads both pgds' words; PAE reads the pgds only through pgd_read (kept in `entries`), the pmds' words.
      const rr: KernelMappingsRecord = { pgd: mm.pgd, owner: mm.owner, frames: L.pae ? [] : [Math.floor(mm.pgd / 4096), Math.floor(sw / 4096)], entries: [], events: [] };
      rec = rr;
      report = (s) => {
        rr.events.push(s);
        report0(s);
      };
    }
    if (L.pae) {
      for (let i = L.USER_PTRS_PER_PGD; i < L.PTRS_PER_PGD; i++) {
        const e = pgd_read(k, mm.pgd + i * 8);
        rec?.entries.push(mm.pgd + i * 8, e);
        if (!present(e)) {
          report(`pgd ${hex(mm.pgd)} (${mm.owner}): kernel slot ${i} is empty`);
          continue;
        }
        const pmd = entryPa(e);
        const ek = pgd_read(k, sw + i * 8);
        rec?.entries.push(sw + i * 8, ek);
        const pmd_k = entryPa(ek);
        if (pmd === pmd_k) {
          report(`pgd ${hex(mm.pgd)} (${mm.owner}): kernel slot ${i} shares init_mm's pmd while unshared`);
          continue;
        }
        rec?.events.push(pmd);
        rec?.frames.push(Math.floor(pmd / 4096), Math.floor(pmd_k / 4096));
        usePmd(mm, pmd);
        // compareEntry reports nothing for equal entries: compare the two tables' words first.
        const mine = readWords(k, pmd, 1024, SCRATCH_PMD);
        const init = readWords(k, pmd_k, 1024, SCRATCH_PTE);
        for (let j = 0; j < 512; j++) {
          if (mine[2 * j] === init[2 * j] && mine[2 * j + 1] === init[2 * j + 1]) continue;
          const va = i * L.PGDIR_SIZE + j * L.PMD_SIZE;
          compareEntry(k, report, mm, va, pmd + j * 8, pmd_k + j * 8);
        }
      }
    } else {
      const mine = readWords(k, mm.pgd, 1024, SCRATCH_PMD);
      const init = readWords(k, sw, 1024, SCRATCH_PTE);
      for (let i = L.USER_PTRS_PER_PGD; i < 1024; i++) {
        if (mine[i] === init[i]) continue;
        compareEntry(k, report, mm, i * L.PGDIR_SIZE, mm.pgd + i * 4, sw + i * 4);
      }
    }
    if (rec !== null) cache!.next.set(mm, rec);
  }
}

function compareEntry(k: KState, report: Report, mm: MmStruct, va: number, p: number, p_k: number): void {
  const L = k.L;
  if (va >= L.HYPERVISOR_START) return;
  const v = readRaw(k, p);
  const v_k = readRaw(k, p_k);
  if (v === v_k) return;
  const inVmalloc = va + L.PMD_SIZE > L.VMALLOC_START && va < L.VMALLOC_END;
  if (inVmalloc && v === 0n) return; // not synced yet: vmalloc_fault will
  report(
    `pgd ${hex(mm.pgd)} (${mm.owner}): kernel entry for ${hex(va)} is ${hex(v)}, init_mm has ${hex(v_k)}` +
      (inVmalloc ? ' (vmalloc area)' : ''),
  );
}

/** 32-bit words from guest-physical `addr` into `out` (one bulk read when the memory offers it, as read32 word by word otherwise). */
function readWords(k: KState, addr: number, words: number, out: Uint32Array): Uint32Array {
  const mem = k.mem;
  if (mem.read32s !== undefined) mem.read32s(addr, out, words);
  else for (let j = 0; j < words; j++) out[j] = mem.read32(addr + 4 * j);
  return out;
}

const SCRATCH_PMD = new Uint32Array(1024);
const SCRATCH_PTE = new Uint32Array(1024);
const SCRATCH_PGD = new Uint32Array(1024);

/**
 * Who owns each frame: an owner name per frame (interned; a typed array over
 * the guest's frames, a Map beyond), and the frames in the order first claimed.
 */
class Owners {
  /** Per frame: 0, or 1 + the index of its owner's name. */
  readonly idx: Int32Array;
  private readonly extra = new Map<number, number>();
  private readonly names: string[] = [];
  private readonly nameIdx = new Map<string, number>();
  /** The frames claimed, in the order first claimed. */
  readonly order: number[] = [];

  /** `idx`: an all-zero array of one entry per guest frame (reused: release() zeroes it again). */
  constructor(idx: Int32Array) {
    this.idx = idx;
  }

  /** Zero the entries this census set (the array goes back to the pool all-zero). */
  release(): void {
    for (const pfn of this.order) if (pfn >>> 0 === pfn && pfn < this.idx.length) this.idx[pfn] = 0;
  }

  /** The owner's name, or undefined. */
  get(pfn: number): string | undefined {
    const i = pfn >>> 0 === pfn && pfn < this.idx.length ? this.idx[pfn]! : (this.extra.get(pfn) ?? 0);
    return i === 0 ? undefined : this.names[i - 1];
  }

  has(pfn: number): boolean {
    return pfn >>> 0 === pfn && pfn < this.idx.length ? this.idx[pfn] !== 0 : this.extra.has(pfn);
  }

  set(pfn: number, what: string): void {
    let n = this.nameIdx.get(what);
    if (n === undefined) {
      this.names.push(what);
      n = this.names.length;
      this.nameIdx.set(what, n);
    }
    if (pfn >>> 0 === pfn && pfn < this.idx.length) {
      if (this.idx[pfn] === 0) this.order.push(pfn);
      this.idx[pfn] = n;
    } else {
      if (!this.extra.has(pfn)) this.order.push(pfn);
      this.extra.set(pfn, n);
    }
  }
}

/** The census of one mm's page tables: the claims, user page references and reports, in the order found. */
export interface MmCensusSink {
  report(s: string): void;
  claim(pfn: number, what: string): void;
  /** A user pte maps user page `pfn` (< nrPages). */
  ref(pfn: number): void;
}

/**
 * The census of one live mm (everything checkFrames learns from its page
 * tables): its kernel pmds (PAE, unshared), its pte pages, the user pages
 * its ptes map; and what is wrong with them. Reads each table page once.
 */
export function mmCensus(k: KState, mm: MmStruct, sink: MmCensusSink, rec: CensusInputs | null = null, pages: PageCensusCache | null = null): void {
  const L = k.L;
  const p = k.pages;
  const ops = k.ops;
  const pae = L.pae;
  const wpe = pae ? 2 : 1;
  const hasPfnOf = ops.pte_val_pfn !== undefined;
  // Under PAE the pgd is read only through pgd_read, whose values `entries` keeps (a pgd shares its
  // frame with others: a write to another one must not void this census); 2-level reads its words.
  if (!pae) rec?.frames.push(Math.floor(mm.pgd / 4096));
  if (pae && !k.SHARED_KERNEL_PMD) {
    for (let i = L.USER_PTRS_PER_PGD; i < L.PTRS_PER_PGD; i++) {
      const e = pgd_read(k, mm.pgd + i * 8);
      rec?.entries.push(mm.pgd + i * 8, e);
      if (present(e)) sink.claim(entryPfn(e), `kernel pmd of ${mm.owner}`);
    }
  }
  // 2-level: the pgd's user words read once (the same values as a read per entry).
  const pgdWords = pae ? null : readWords(k, mm.pgd, L.USER_PTRS_PER_PGD, SCRATCH_PGD);
  for (let i = 0; i < L.USER_PTRS_PER_PGD; i++) {
    let pmdBase: number;
    let n: number;
    if (pae) {
      const e = pgd_read(k, mm.pgd + i * 8);
      rec?.entries.push(mm.pgd + i * 8, e);
      if (!present(e)) {
        sink.report(`pgd ${hex(mm.pgd)} (${mm.owner}): user slot ${i} has no pmd`);
        continue;
      }
      pmdBase = entryPa(e);
      n = 512;
    } else {
      pmdBase = mm.pgd + i * 4;
      n = 1;
    }
    const pmdWords = pgdWords === null ? readWords(k, pmdBase, n * wpe, SCRATCH_PMD) : pgdWords;
    const w0 = pgdWords === null ? 0 : i;
    if (pae) rec?.frames.push(Math.floor(pmdBase / 4096));
    for (let j = 0; j < n; j++) {
      // Most entries of a sparse table are empty: test the raw low word first (pmd_val keeps the flags).
      const plo = pmdWords[w0 + j * wpe]!;
      if ((plo & 1) === 0) continue;
      const pmd = pmd_read(k, pmdBase + j * L.ENTRY_SIZE);
      rec?.entries.push(-1 - (pmdBase + j * L.ENTRY_SIZE), pmd);
      if (!present(pmd)) continue;
      const ptePfn = entryPfn(pmd);
      rec?.frames.push(ptePfn);
      sink.claim(ptePfn, `pte page of ${mm.owner}`);
      const va0 = i * L.PGDIR_SIZE + j * L.PMD_SIZE;
      // The census of this pte page as the last check made it, when nothing it used has changed since.
      const cached = pages?.get(k, ptePfn, va0, mm.owner);
      if (cached !== undefined) {
        replayPage(cached, sink);
        if (rec !== null) for (const v of cached.ptes) rec.ptes.push(v);
        pages!.put(cached);
        continue;
      }
      const page: PageCensus | null = pages === null ? null : newPageCensus(k, ptePfn, va0, mm.owner);
      const out: MmCensusSink = page === null ? sink : pageSink(page, sink);
      const pteWords = readWords(k, ptePfn * 4096, L.PTRS_PER_PTE * wpe, SCRATCH_PTE);
      for (let x = 0; x < L.PTRS_PER_PTE; x++) {
        const lo = pteWords[x * wpe]!;
        // present(pte_read): pte_val keeps the flag bits; an empty entry reads as 0.
        if ((lo & 1) === 0) continue;
        const hi = pae ? pteWords[x * 2 + 1]! : 0;
        const pfn = hasPfnOf ? ops.pte_val_pfn!(lo, hi) : entryPfn(ops.pte_val(pteFromWords(lo, hi)));
        const va = va0 + x * 4096;
        // What the findings depend on: the entry, its frame, and that frame's PG_anon and (writable) count.
        if (rec !== null || page !== null) {
          const known = pfn !== k.empty_zero_page && pfn < p.nrPages;
          const anon = known ? p.flags[pfn]! & PG_anon : 0;
          const count = anon !== 0 && (lo & PTE_RW) !== 0 ? p._count[pfn]! : 0;
          rec?.ptes.push(lo, hi, pfn, anon, count);
          page?.ptes.push(lo, hi, pfn, anon, count);
        }
        if (pfn === k.empty_zero_page) {
          if ((lo & PTE_RW) !== 0) out.report(`${mm.owner}: ZERO_PAGE mapped writable at ${hex(va)}`);
          continue;
        }
        if (pfn >= p.nrPages || (p.flags[pfn]! & PG_anon) === 0) {
          out.report(`${mm.owner}: user pte at ${hex(va)} maps frame ${hex(pfn)}, which is not a user page`);
          continue;
        }
        out.ref(pfn);
        if ((lo & PTE_RW) !== 0 && p._count[pfn]! > 1) {
          out.report(`${mm.owner}: writable pte at ${hex(va)} maps frame ${hex(pfn)} shared ${p._count[pfn]} ways (COW broken)`);
        }
      }
      if (page !== null) pages!.put(page);
    }
  }
}

/**
 * The census of one pte page (mmCensus's loop over it): what it read (its
 * present ptes, with the frame state each finding depends on) and what it
 * found (reports and user page references, in order).
 */
interface PageCensus {
  ptePfn: number;
  va0: number;
  owner: string;
  zeroPage: number;
  nrPages: number;
  /** Per present pte: lo, hi, pfn, PG_anon of the frame, its count when writable and anon (as CensusInputs.ptes). */
  ptes: number[];
  /** 0 report (text), 2 reference (pfn). */
  kinds: number[];
  pfns: number[];
  texts: string[];
}

/** Pte page censuses kept from one check to the next (IncrementalInvariantChecker). */
export interface PageCensusCache {
  /** The census of pte page `ptePfn` at `va0` of `owner`'s mm, if the last check made one and nothing it used has changed since. */
  get(k: KState, ptePfn: number, va0: number, owner: string): PageCensus | undefined;
  /** Keep a census (made or reused) for the next check. */
  put(c: PageCensus): void;
}

function newPageCensus(k: KState, ptePfn: number, va0: number, owner: string): PageCensus {
  return { ptePfn, va0, owner, zeroPage: k.empty_zero_page, nrPages: k.pages.nrPages, ptes: [], kinds: [], pfns: [], texts: [] };
}

/** A sink that records into `page` and passes on to `sink`. */
function pageSink(page: PageCensus, sink: MmCensusSink): MmCensusSink {
  return {
    report: (s) => {
      page.kinds.push(0);
      page.pfns.push(0);
      page.texts.push(s);
      sink.report(s);
    },
    claim: (pfn, what) => sink.claim(pfn, what),
    ref: (pfn) => {
      page.kinds.push(2);
      page.pfns.push(pfn);
      page.texts.push('');
      sink.ref(pfn);
    },
  };
}

function replayPage(c: PageCensus, sink: MmCensusSink): void {
  for (let i = 0; i < c.kinds.length; i++) {
    if (c.kinds[i] === 0) sink.report(c.texts[i]!);
    else sink.ref(c.pfns[i]!);
  }
}

/** Do the present ptes `t` (5 numbers each, as CensusInputs.ptes) still give the same frames, with the same PG_anon and (writable anon) count? */
function ptesHold(k: KState, t: readonly number[]): boolean {
  const p = k.pages;
  const ops = k.ops;
  const hasPfnOf = ops.pte_val_pfn !== undefined;
  for (let i = 0; i < t.length; i += 5) {
    const lo = t[i]!;
    const hi = t[i + 1]!;
    const pfn = t[i + 2]!;
    if ((hasPfnOf ? ops.pte_val_pfn!(lo, hi) : entryPfn(ops.pte_val(pteFromWords(lo, hi)))) !== pfn) return false;
    if (pfn === k.empty_zero_page || pfn >= p.nrPages) continue;
    const anon = p.flags[pfn]! & PG_anon;
    if (anon !== t[i + 3]) return false;
    if (anon !== 0 && (lo & PTE_RW) !== 0 && p._count[pfn] !== t[i + 4]) return false;
  }
  return true;
}

/** What one mm's census read: the table frames, the entries it translated, the ptes it found present. */
export interface CensusInputs {
  /** Guest frames read (the pgd's page, pmd pages, pte pages). */
  frames: number[];
  /** Pairs (address, value as pgd_read gave it) for pgd entries, (-1 - address, value as pmd_read gave it) for pmd entries. */
  entries: (number | bigint)[];
  /** Per present pte: lo, hi, pfn (pte_val's frame), PG_anon of the frame (0 for the zero page or beyond memory), its count when writable and anon. */
  ptes: number[];
}

/** One mm's census as recorded: its inputs and its findings (claims, references, reports) in order. */
interface MmCensus {
  pgd: number;
  owner: string;
  zeroPage: number;
  nrPages: number;
  inputs: CensusInputs;
  /** 0 report (text), 1 claim (pfn, text), 2 reference (pfn). */
  kinds: number[];
  pfns: number[];
  texts: string[];
  /** The censuses of its pte pages (with a page cache). */
  pages: PageCensus[];
}

function recordCensus(k: KState, mm: MmStruct, pages: PageCensusCache | null = null): MmCensus {
  const c: MmCensus = {
    pgd: mm.pgd,
    owner: mm.owner,
    zeroPage: k.empty_zero_page,
    nrPages: k.pages.nrPages,
    inputs: { frames: [], entries: [], ptes: [] },
    kinds: [],
    pfns: [],
    texts: [],
    pages: [],
  };
  const pc: PageCensusCache | null =
    pages === null
      ? null
      : {
          get: pages.get,
          put: (x) => {
            pages.put(x);
            c.pages.push(x);
          },
        };
  mmCensus(
    k,
    mm,
    {
      report: (s) => {
        c.kinds.push(0);
        c.pfns.push(0);
        c.texts.push(s);
      },
      claim: (pfn, what) => {
        c.kinds.push(1);
        c.pfns.push(pfn);
        c.texts.push(what);
      },
      ref: (pfn) => {
        c.kinds.push(2);
        c.pfns.push(pfn);
        c.texts.push('');
      },
    },
    c.inputs,
    pc,
  );
  return c;
}

/** Does `c` still describe `mm`: no frame it read changed, and every entry, frame and page state it used is the same? */
function censusHolds(k: KState, mm: MmStruct, c: MmCensus, frameChanged: (pfn: number) => boolean): boolean {
  const p = k.pages;
  if (c.pgd !== mm.pgd || c.owner !== mm.owner || c.zeroPage !== k.empty_zero_page || c.nrPages !== p.nrPages) return false;
  const inp = c.inputs;
  for (let i = 0; i < inp.frames.length; i++) if (frameChanged(inp.frames[i]!)) return false;
  // The frames are unchanged; the translations (pgd_val, pmd_val, pte_val) must be too.
  const es = inp.entries;
  for (let i = 0; i < es.length; i += 2) {
    const a = es[i] as number;
    const v = a >= 0 ? pgd_read(k, a) : pmd_read(k, -1 - a);
    if (v !== es[i + 1]) return false;
  }
  return ptesHold(k, inp.ptes);
}

/**
 * The guest invariant checker, incremental: the census of an mm's page
 * tables (checkFrames' per-mm part, the bulk of a check) is kept from one
 * check to the next and redone only for the mms that changed since: a
 * table frame it read was written (`frameChanged`, from the caller, who
 * tracks writes to memory), an entry it translated translates differently,
 * or a page it found mapped changed its PG_anon flag or (mapped writable)
 * its count. A redone census reuses, likewise, the census of each of its pte
 * pages none of whose inputs changed. The comparison of an mm's kernel part
 * with init_mm's (checkKernelMappings) is kept the same way, redone when its
 * pgd, a kernel pmd it compared, or swapper_pg_dir's were written or a pgd
 * entry it translated changed; so is checkFrames' scan of swapper_pg_dir for
 * the kernel pte pages (their PG_reserved flags are tested afresh), and the
 * check of low page 0 while its frame is not written. Everything else is checked in full each
 * time, so the result is exactly checkInvariants' (a test compares them
 * statement by statement).
 */
export class IncrementalInvariantChecker {
  private cache = new Map<MmStruct, MmCensus>();
  /** Pte page censuses of the last check, by pte page frame; and those of this check. */
  private pages = new Map<number, PageCensus>();
  private nextPages = new Map<number, PageCensus>();
  /** Each mm's kernel-mapping comparison of the last check. */
  private kernelMappings = new Map<MmStruct, KernelMappingsRecord>();
  /** checkFrames' scan of swapper_pg_dir for kernel pte pages, of the last check. */
  private swapperPtePages: SwapperPtePages | null = null;
  /** checkLowPage's findings of the last check. */
  private lowPage: string[] | undefined = undefined;
  /** Pte page censuses reused inside redone mm censuses. */
  pagesReused = 0;
  /** Censuses redone, and reused, over all checks. */
  rechecked = 0;
  reused = 0;
  /** Kernel-mapping comparisons of an mm reused, over all checks. */
  kernelMappingsReused = 0;

  /**
   * checkInvariants(k, tasks), reusing the census of every mm none of
   * whose inputs changed. `frameChanged(pfn)`: guest frame `pfn` may have
   * been written since the previous call (true when unsure).
   */
  check(k: KState, tasks: { name: string; mm: MmStruct }[], frameChanged: (pfn: number) => boolean): string[] {
    const next = new Map<MmStruct, MmCensus>();
    this.nextPages = new Map();
    const pageCache: PageCensusCache = {
      get: (kk, ptePfn, va0, owner) => {
        const c = this.pages.get(ptePfn);
        if (c === undefined || c.va0 !== va0 || c.owner !== owner || c.zeroPage !== kk.empty_zero_page || c.nrPages !== kk.pages.nrPages) return undefined;
        if (frameChanged(ptePfn) || !ptesHold(kk, c.ptes)) return undefined;
        this.pagesReused++;
        return c;
      },
      put: (c) => {
        this.nextPages.set(c.ptePfn, c);
      },
    };
    const km: KernelMappingsCache = { frameChanged, prev: this.kernelMappings, next: new Map(), swapperPrev: this.swapperPtePages, swapperNext: null, lowPagePrev: this.lowPage, lowPageNext: null, reused: 0 };
    const out = checkInvariants(k, tasks, (mm, sink) => {
      let c = this.cache.get(mm);
      if (c !== undefined && censusHolds(k, mm, c, frameChanged)) {
        this.reused++;
        // Its pte pages' censuses stay valid with it.
        for (const pc of c.pages) this.nextPages.set(pc.ptePfn, pc);
      } else {
        c = recordCensus(k, mm, pageCache);
        this.rechecked++;
      }
      next.set(mm, c);
      for (let i = 0; i < c.kinds.length; i++) {
        const kind = c.kinds[i]!;
        if (kind === 0) sink.report(c.texts[i]!);
        else if (kind === 1) sink.claim(c.pfns[i]!, c.texts[i]!);
        else sink.ref(c.pfns[i]!);
      }
    }, true, km);
    this.cache = next;
    this.kernelMappings = km.next;
    this.swapperPtePages = km.swapperNext;
    this.lowPage = km.lowPageNext ?? undefined;
    this.kernelMappingsReused += km.reused;
    this.pages = this.nextPages;
    this.nextPages = new Map();
    return out;
  }

  /** Forget every census (the next check redoes them all). */
  reset(): void {
    this.cache.clear();
    this.pages.clear();
    this.kernelMappings.clear();
    this.swapperPtePages = null;
    this.lowPage = undefined;
  }
}

/** Census of allocated frames and user page references. */
function checkFrames(
  k: KState,
  tasks: { name: string; mm: MmStruct }[],
  report: Report,
  census: (mm: MmStruct, sink: MmCensusSink) => void,
  incremental: boolean,
  /** With the incremental checker: reuse the scan of swapper_pg_dir for kernel pte pages when nothing it read changed. */
  cache: KernelMappingsCache | null = null,
): void {
  const L = k.L;
  const p = k.pages;
  const owner = new Owners(zeroed(0, p.nrPages));
  const refs = zeroed(1, p.nrPages);
  const refOrder: number[] = [];
  try {
    const claim = (pfn: number, what: string): void => {
      const o = owner.get(pfn);
      if (o !== undefined && o !== what) report(`frame ${hex(pfn)} owned twice: ${o} and ${what}`);
      owner.set(pfn, what);
    };
    for (const c of k.slab.caches) {
      const what = `slab ${c.name}`;
      for (const pfn of c.slabs.keys()) claim(pfn, what);
    }
    for (const a of k.vmlist) {
      const what = `vmalloc ${hex(a.addr)}`;
      for (const pfn of a.pages) claim(pfn, what);
    }
    for (const pfn of k.df_list) claim(pfn, 'df_list');
    // init_mm's kernel pte pages allocated after boot (vmalloc, split large pages).
    // `rec`: what the scan read (frames, translated entries) and the pte pages it found, for the next check.
    const kernelPtePages = (pgd: number, what: string, rec: SwapperPtePages | null): void => {
      const first = L.USER_PTRS_PER_PGD;
      if (!L.pae) {
        // 2-level: the pgd's words read once (the same values as a read per entry).
        const words = readWords(k, pgd, 1024, SCRATCH_PMD);
        rec?.frames.push(Math.floor(pgd / 4096));
        for (let i = first; i < L.PTRS_PER_PGD; i++) {
          if ((words[i]! & 1) === 0) continue;
          const e = pmd_read(k, pgd + i * 4);
          rec?.entries.push(-1 - (pgd + i * 4), e);
          if (!present(e) || (e & _PAGE_PSE) !== 0n) continue;
          const pfn = entryPfn(e);
          rec?.pfns.push(pfn);
          if ((p.flags[pfn]! & PG_reserved) === 0) claim(pfn, what);
        }
        return;
      }
      for (let i = first; i < L.PTRS_PER_PGD; i++) {
        const pe = L.pae ? pgd_read(k, pgd + i * 8) : 0n;
        if (L.pae) rec?.entries.push(pgd + i * 8, pe);
        const tables = L.pae ? entryPa(pe) : -1;
        const n = L.pae ? 512 : 1;
        const base = L.pae ? tables : pgd + i * 4;
        const words = readWords(k, base, L.pae ? 1024 : 1, SCRATCH_PMD);
        rec?.frames.push(Math.floor(base / 4096));
        for (let j = 0; j < n; j++) {
          // present(pmd_read): pmd_val keeps the flag bits (an empty entry reads as 0).
          if ((words[L.pae ? 2 * j : j]! & 1) === 0) continue;
          const e = L.pae ? pmd_read(k, tables + j * 8) : pmd_read(k, pgd + i * 4);
          rec?.entries.push(-1 - (L.pae ? tables + j * 8 : pgd + i * 4), e);
          if (!present(e) || (e & _PAGE_PSE) !== 0n) continue;
          const pfn = entryPfn(e);
          rec?.pfns.push(pfn);
          if ((p.flags[pfn]! & PG_reserved) === 0) claim(pfn, what);
        }
      }
    };
    const swapperRec = cache === null ? null : reuseSwapperPtePages(k, cache);
    if (swapperRec !== null) {
      // The same pte pages as the last scan found: claimed in the same order, PG_reserved tested afresh.
      for (const pfn of swapperRec.pfns) if ((p.flags[pfn]! & PG_reserved) === 0) claim(pfn, 'kernel pte page');
    } else {
      const rec: SwapperPtePages | null = cache === null ? null : { pgd: k.swapper_pg_dir, frames: [], entries: [], pfns: [] };
      kernelPtePages(k.swapper_pg_dir, 'kernel pte page', rec);
      if (cache !== null) cache.swapperNext = rec;
    }
    // User page tables and pages of every live mm.
    const sink: MmCensusSink = {
      report,
      claim,
      ref: (pfn) => {
        if (refs[pfn]!++ === 0) refOrder.push(pfn);
      },
    };
    const mmSeen = new Set<MmStruct>();
    for (const t of tasks) mmSeen.add(t.mm);
    for (const mm of k.mms) {
      if (!mmSeen.has(mm)) report(`mm of ${mm.owner} is alive but no process owns it`);
      census(mm, sink);
    }
    for (const pfn of refOrder) {
      const n = refs[pfn]!;
      claim(pfn, 'user page');
      if (p._count[pfn] !== n) report(`user frame ${hex(pfn)}: ${n} ptes map it, reference count ${p._count[pfn]}`);
    }
    // Every allocated block must be owned; every owned frame allocated.
    let leaked = 0;
    const allocOrder = p.allocOrder;
    const ownerIdx = owner.idx;
    const leak = (from: number, to: number): void => {
      for (let pfn = from; pfn < to; pfn++) {
        if (allocOrder[pfn]! < 0 || ownerIdx[pfn] !== 0) continue;
        if (leaked++ < 5) report(`frame ${hex(pfn)} is allocated (by ${p.owner.get(pfn) ?? '?'}) but nothing owns it: leaked`);
      }
    };
    if (incremental) {
      // The same scan, in order, over the chunks that hold an allocated block head (the allocator's per-chunk recount).
      p.refreshChunks();
      const heads = p.chunkHeads;
      for (let c = 0; c < heads.length; c++) {
        if (heads[c] !== 0) leak(c << AUDIT_CHUNK_SHIFT, Math.min(p.nrPages, (c + 1) << AUDIT_CHUNK_SHIFT));
      }
    } else leak(0, p.nrPages);
    if (leaked > 5) report(`${leaked} leaked frames in all`);
    for (const pfn of owner.order) {
      if (p.allocOrder[pfn]! < 0) report(`frame ${hex(pfn)} is used as ${owner.get(pfn)!} but is not allocated`);
    }
  } finally {
    // Back to the pool all-zero (also when a read throws).
    owner.release();
    for (const pfn of refOrder) refs[pfn] = 0;
  }
}

/** Two reusable per-frame arrays (owners, user page references), all-zero between checks. */
const POOL: Int32Array[] = [new Int32Array(0), new Int32Array(0)];

function zeroed(which: 0 | 1, n: number): Int32Array {
  if (POOL[which]!.length !== n) POOL[which] = new Int32Array(n);
  return POOL[which]!;
}

function checkLowPage(k: KState, report: Report): void {
  const words = readWords(k, 0, 1024, SCRATCH_PTE);
  for (let off = 0; off < 4096; off += 4) {
    if (words[off >>> 2] !== 0) {
      report(`low page 0 was written at offset ${hex(off)} (a page-table update through an empty or stale pgd entry)`);
      return;
    }
  }
}

/** Software walk of `pgd` (memory only): the guest-physical address for `va`, or -1. */
export function softWalk(k: KState, pgd: number, va: number): number {
  const L = k.L;
  const pgdp = pgd + Math.floor(va / L.PGDIR_SIZE) * L.ENTRY_SIZE;
  let pmdp = pgdp;
  if (L.pae) {
    const e = pgd_read(k, pgdp);
    if (!present(e)) return -1;
    pmdp = entryPa(e) + ((va >>> 21) & 511) * 8;
  }
  const pmd = pmd_read(k, pmdp);
  if (!present(pmd)) return -1;
  if ((pmd & _PAGE_PSE) !== 0n) return entryPa(pmd) + (va % L.PMD_SIZE);
  const pte = pte_read(k, entryPa(pmd) + (L.pae ? ((va >>> 12) & 511) * 8 : ((va >>> 12) & 1023) * 4));
  if (!present(pte)) return -1;
  return entryPa(pte) + (va & 4095);
}

/** CR3 is the active mm's pgd, and the processor's walk agrees with memory (PDPTEs under PAE). */
function checkCr3(k: KState, report: Report): void {
  const L = k.L;
  const cr3 = k.ops.read_cr3();
  if (cr3 !== k.active_mm.pgd) {
    report(`CR3 holds ${hex(cr3)} but the active mm (${k.active_mm.owner}) has pgd ${hex(k.active_mm.pgd)}`);
    return;
  }
  const samples: number[] = [L.PAGE_OFFSET];
  // Where the active mm has mappings: the start of each of its first vmas.
  for (const v of k.active_mm.vmas.slice(0, 8)) samples.push(v.start);
  for (let i = 0; i < L.PTRS_PER_PGD; i++) {
    const base = i * L.PGDIR_SIZE;
    if (base >= L.HYPERVISOR_START) continue;
    if (!L.pae) {
      if (i % 64 === 0) samples.push(base);
      continue;
    }
    samples.push(base);
    const e = pgd_read(k, cr3 + i * 8);
    if (!present(e)) continue;
    let found = 0;
    // present(pmd_read): pmd_val keeps the flag bits (an empty entry reads as 0).
    const pmds = readWords(k, entryPa(e), 1024, SCRATCH_PMD);
    for (let j = 0; j < 512 && found < 4; j++) {
      const va = base + j * L.PMD_SIZE;
      if (va >= L.HYPERVISOR_START) break;
      if ((pmds[2 * j]! & 1) !== 0) {
        samples.push(va);
        found++;
      }
    }
  }
  for (const va of samples) {
    const soft = softWalk(k, cr3, va);
    const hw = k.ops.probe(va, ACCESS_READ, false);
    const hwPa = hw.ok ? hw.gpa : -1;
    if (soft !== hwPa) {
      report(
        `the processor's walk of ${hex(va)} gives ${hwPa < 0 ? 'a fault' : hex(hwPa)} but the pgd in memory gives ` +
          `${soft < 0 ? 'no mapping' : hex(soft)}` +
          (L.pae ? ' (stale PDPTE registers: pgd changed after the CR3 load)' : ''),
      );
    }
  }
}
