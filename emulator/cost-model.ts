/**
 * CPU presets: TLB geometry and the cycle figures the model charges.
 *
 * "Cycle-approximate" means every figure below names its source
 * (../shared/reference/cost-model-sources.md); figures with no published
 * source are marked GUESS, and derived ones say how they were derived.
 * Nothing here is tuned to make a result come out. Relative costs (TLB hit vs
 * walk, native vs Xen) come from the mechanism that charges these figures.
 */

/** Geometry of one TLB array. `entries` 0 means the array does not exist. */
export interface TlbArray {
  entries: number;
  ways: number; // entries/ways sets; ways === entries is fully associative
}

export interface CpuPreset {
  name: string;
  description: string;
  /** First-level instruction TLB, 4 KiB and large (2/4 MiB) pages. */
  itlb4k: TlbArray;
  itlbLarge: TlbArray;
  /** First-level data TLB. */
  dtlb4k: TlbArray;
  dtlbLarge: TlbArray;
  /** Second-level TLB (Core 2 DTLB1, Nehalem STLB), looked up on a first-level miss. */
  l2tlb4k: TlbArray;
  l2tlbLarge: TlbArray;
  /** Whether the second level also serves instruction fetches (Nehalem's STLB is unified). */
  l2Unified: boolean;
  /** Lines of 64 bytes in the page-walk entry cache (see walkEntryCached). */
  walkCacheLines: number;
  cycles: CycleFigures;
  /** For each figure (and each TLB array), where it comes from. */
  sources: Record<string, string>;
}

export interface CycleFigures {
  /** A first-level TLB hit. */
  tlbHit: number;
  /** A first-level miss that hits the second-level TLB. */
  l2TlbHit: number;
  /** One paging-structure entry read that hits the walk cache (an L1D access). */
  walkEntryCached: number;
  /** One paging-structure entry read that misses it (the next cache level). */
  walkEntryMemory: number;
  /** Setting an accessed or dirty bit: a locked read-modify-write of the entry. */
  adUpdate: number;
  /** MOV to CR3 including the non-global flush it implies. */
  cr3Write: number;
  /** A full flush caused by a CR0/CR4 write (same mechanism as a CR3 reload). */
  fullFlush: number;
  /** One INVLPG. */
  invlpg: number;
  /** #PF delivery and return: exception entry to ring 0 plus IRET. */
  pageFault: number;
  /** Loading the four PDPTE registers on a CR3 write under PAE. */
  pdpteLoad: number;
  /**
   * The kernel storing one paging-structure entry (native set_pte, set_pmd,
   * pte_clear ...): one data-cache access to the entry's line.
   */
  pteStore: number;
}

const SRC_P6_CPUID =
  'CPUID leaf 2 descriptors 01h/02h/03h/04h (Linux arch/x86/kernel/cpu/intel.c, intel_tlb_table): P6 family';
const SRC_CORE2_DTLB =
  'Intel 64 and IA-32 Optimization Reference Manual, Intel Core microarchitecture, 2.1.4: DTLB0 16 (4K) + 16 (large), DTLB1 256 (4K) + 32 (large), all 4-way';
const SRC_CORE2_ITLB =
  'CPUID leaf 2 descriptors B0h (ITLB 4K 128 4-way) and B1h (ITLB 2M 8 4-way) (Linux intel_tlb_table)';
const SRC_NHM_TLB =
  'Intel Nehalem reviews citing Intel: L1 DTLB 64 (4K) / 32 (2M/4M) 4-way; ITLB 128 + 7 large; unified STLB 512 4-way, 4K only';
const SRC_CR3_INVLPG =
  'Linux arch/x86/mm/tlb.c comment and linux-mm discussion (2015): full flush by CR3 reload ~96 cycles, one INVLPG ~260 cycles';
const SRC_PF =
  'published exception-cost measurement (Xeon E5 v3): user->kernel entry ~440 cycles + return ~270 cycles; used for every preset (no older figure found)';
const SRC_LOCKED_RMW =
  'Agner Fog, instruction tables: a locked read-modify-write of memory costs on the order of 20 cycles on Core 2/Nehalem (approximate)';
const SRC_WALK_CACHE =
  'modelling choice (cost-model-sources.md "walk memory access"): each entry read is one data-cache access; a small direct-mapped cache of 64-byte entry lines decides L1D vs next level, as gem5 puts a small page-walk cache in front of memory';
const SRC_PTE_STORE =
  'modelling choice: a page-table entry store is charged one L1D access (the figure walkEntryCached uses); the store buffer may hide it, so this is the upper end';
const SRC_PDPTE =
  'GUESS: no published figure; four uncached 8-byte loads, charged as four walk-cache misses would be';

export const PRESETS: Record<string, CpuPreset> = {
  p6: {
    name: 'p6',
    description: 'P6 family (Pentium Pro/II/III): one TLB level, no second-level TLB',
    itlb4k: { entries: 32, ways: 4 },
    itlbLarge: { entries: 2, ways: 2 },
    dtlb4k: { entries: 64, ways: 4 },
    dtlbLarge: { entries: 8, ways: 4 },
    l2tlb4k: { entries: 0, ways: 1 },
    l2tlbLarge: { entries: 0, ways: 1 },
    l2Unified: false,
    walkCacheLines: 64,
    cycles: {
      tlbHit: 0,
      l2TlbHit: 0,
      walkEntryCached: 3,
      walkEntryMemory: 7,
      adUpdate: 20,
      cr3Write: 96,
      fullFlush: 96,
      invlpg: 260,
      pageFault: 710,
      pdpteLoad: 28,
      pteStore: 3,
    },
    sources: {
      tlb: SRC_P6_CPUID,
      tlbHit: 'L1 TLB lookup overlaps the L1D access (physically tagged cache): no added cycles',
      l2TlbHit: 'no second-level TLB on P6',
      walkEntryCached: 'GUESS: P6 L1D load-use latency of 3 cycles (commonly quoted; no Intel table found)',
      walkEntryMemory: 'GUESS: P6 on-package/on-die L2 latency ~7 cycles (commonly quoted; no Intel table found)',
      adUpdate: SRC_LOCKED_RMW,
      cr3Write: SRC_CR3_INVLPG,
      fullFlush: SRC_CR3_INVLPG,
      invlpg: SRC_CR3_INVLPG,
      pageFault: SRC_PF,
      pdpteLoad: SRC_PDPTE,
      pteStore: SRC_PTE_STORE,
      walkCache: SRC_WALK_CACHE,
    },
  },
  core2: {
    name: 'core2',
    description: 'Intel Core microarchitecture (Core 2): DTLB0 + DTLB1',
    itlb4k: { entries: 128, ways: 4 },
    itlbLarge: { entries: 8, ways: 4 },
    dtlb4k: { entries: 16, ways: 4 },
    dtlbLarge: { entries: 16, ways: 4 },
    l2tlb4k: { entries: 256, ways: 4 },
    l2tlbLarge: { entries: 32, ways: 4 },
    l2Unified: false,
    walkCacheLines: 64,
    cycles: {
      tlbHit: 0,
      l2TlbHit: 2,
      walkEntryCached: 3,
      walkEntryMemory: 14,
      adUpdate: 20,
      cr3Write: 96,
      fullFlush: 96,
      invlpg: 260,
      pageFault: 710,
      pdpteLoad: 56,
      pteStore: 3,
    },
    sources: {
      tlb: `${SRC_CORE2_DTLB}; ${SRC_CORE2_ITLB}`,
      tlbHit: 'L1 TLB lookup overlaps the L1D access (physically tagged cache): no added cycles',
      l2TlbHit: 'Intel Optimization Reference Manual, Core microarchitecture 2.1.4: a DTLB0 miss that hits DTLB1 costs 2 cycles',
      walkEntryCached: 'Intel Optimization Reference Manual, Core microarchitecture: L1D load-use latency 3 cycles',
      walkEntryMemory: 'Intel Optimization Reference Manual, Core microarchitecture: L2 latency 14 cycles',
      adUpdate: SRC_LOCKED_RMW,
      cr3Write: SRC_CR3_INVLPG,
      fullFlush: SRC_CR3_INVLPG,
      invlpg: SRC_CR3_INVLPG,
      pageFault: SRC_PF,
      pdpteLoad: SRC_PDPTE,
      pteStore: SRC_PTE_STORE,
      walkCache: SRC_WALK_CACHE,
    },
  },
  nehalem: {
    name: 'nehalem',
    description: 'Intel Nehalem: L1 DTLB/ITLB + unified 4K-only STLB',
    itlb4k: { entries: 128, ways: 4 },
    itlbLarge: { entries: 7, ways: 7 },
    dtlb4k: { entries: 64, ways: 4 },
    dtlbLarge: { entries: 32, ways: 4 },
    l2tlb4k: { entries: 512, ways: 4 },
    l2tlbLarge: { entries: 0, ways: 1 },
    l2Unified: true,
    walkCacheLines: 64,
    cycles: {
      tlbHit: 0,
      l2TlbHit: 7,
      walkEntryCached: 4,
      walkEntryMemory: 10,
      adUpdate: 20,
      cr3Write: 96,
      fullFlush: 96,
      invlpg: 260,
      pageFault: 710,
      pdpteLoad: 40,
      pteStore: 4,
    },
    sources: {
      tlb: SRC_NHM_TLB,
      tlbHit: 'L1 TLB lookup overlaps the L1D access (physically tagged cache): no added cycles',
      l2TlbHit: 'GUESS: STLB hit penalty ~7 cycles (commonly quoted for Nehalem; Haswell optimization manual gives ~12 for its larger STLB)',
      walkEntryCached: 'Intel Optimization Reference Manual, Nehalem: L1D latency 4 cycles',
      walkEntryMemory: 'Intel Optimization Reference Manual, Nehalem: L2 latency 10 cycles',
      adUpdate: SRC_LOCKED_RMW,
      cr3Write: SRC_CR3_INVLPG,
      fullFlush: SRC_CR3_INVLPG,
      invlpg: SRC_CR3_INVLPG,
      pageFault: SRC_PF,
      pdpteLoad: SRC_PDPTE,
      pteStore: SRC_PTE_STORE,
      walkCache: SRC_WALK_CACHE,
    },
  },
};

export const PRESET_NAMES = Object.keys(PRESETS);
export const DEFAULT_PRESET = 'core2';

export function getPreset(name: string): CpuPreset {
  const p = PRESETS[name];
  if (!p) throw new RangeError(`unknown CPU preset '${name}' (known: ${PRESET_NAMES.join(', ')})`);
  return p;
}

/**
 * Cost components: every cycle the machine or a backend charges goes to
 * exactly one of these (docs/cost-model.md). The order is the display order
 * of `boot`, `compare`, `--json` (`measures.LABEL.breakdown`) and the report.
 *  - kernel: the guest kernel's own base work (syscall entry/exit, fixed path
 *    costs of fork/exec/exit/schedule/mmap/signal, native page-table stores)
 *  - page_copy: clear_page / copy_page
 *  - tlb: TLB lookups and page walks, A/D updates, kernel TLB refills
 *  - flush: CR3 writes, INVLPG, full flushes, PDPTE loads
 *  - exception: native exception entry/exit (the #PF round trip)
 *  - hypercall: hypercall entry/exit and multicall dispatch
 *  - trap: trapped-and-emulated page-table writes
 *  - bounce: faults bounced through Xen (what a bounce adds)
 *  - validation: Xen's validation scans, type-count changes, entry writes
 */
export const COST_COMPONENTS = ['kernel', 'page_copy', 'tlb', 'flush', 'exception', 'hypercall', 'trap', 'bounce', 'validation'] as const;
export type CostComponent = (typeof COST_COMPONENTS)[number];
/** Ledger indices of the components (COST_COMPONENTS order), for the charging paths. */
export const CC_KERNEL = 0;
export const CC_PAGE_COPY = 1;
export const CC_TLB = 2;
export const CC_FLUSH = 3;
export const CC_EXCEPTION = 4;
export const CC_HYPERCALL = 5;
export const CC_TRAP = 6;
export const CC_BOUNCE = 7;
export const CC_VALIDATION = 8;
export const N_COST_COMPONENTS = COST_COMPONENTS.length;

/** Ledger index of a component name. */
export function costComponentIndex(c: CostComponent): number {
  return COST_COMPONENTS.indexOf(c);
}

/** A per-component cycle breakdown: component name to cycles (every component present, zero or not). */
export type CostBreakdown = Record<CostComponent, number>;

/** The ledger (indexed by component) as a breakdown object. */
export function breakdownOf(ledger: ArrayLike<number>): CostBreakdown {
  const out = {} as CostBreakdown;
  for (let i = 0; i < N_COST_COMPONENTS; i++) out[COST_COMPONENTS[i]!] = ledger[i]!;
  return out;
}

/** after - before, per component. */
export function breakdownDelta(after: CostBreakdown, before: CostBreakdown): CostBreakdown {
  const out = {} as CostBreakdown;
  for (const c of COST_COMPONENTS) out[c] = after[c] - before[c];
  return out;
}

/** Sum of a breakdown's components. */
export function breakdownSum(b: Partial<Record<CostComponent, number>>): number {
  let s = 0;
  for (const c of COST_COMPONENTS) s += b[c] ?? 0;
  return s;
}

/** The non-zero components only, in display order (the JSON form: zero components may be omitted). */
export function breakdownNonZero(b: Partial<Record<CostComponent, number>>): Partial<CostBreakdown> {
  const out: Partial<CostBreakdown> = {};
  for (const c of COST_COMPONENTS) if ((b[c] ?? 0) !== 0) out[c] = b[c]!;
  return out;
}

/**
 * Event counters of one MMU. Cycles are the sum of the figures charged; TLB
 * hits are counted, and their cycles added when `cycles` is read, so the hit
 * path does one increment.
 */
export class MmuCounters {
  tlbHits = 0;
  l2TlbHits = 0;
  tlbMisses = 0;
  /** Walks by number of entries read: index 1..3 (PAE: PDE+PTE = 2, large = 1). */
  walksByDepth = [0, 0, 0, 0];
  walkCycles = 0;
  walkCacheHits = 0;
  walkCacheMisses = 0;
  adUpdates = 0;
  pageFaults = 0;
  gpFaults = 0;
  flushesFull = 0;
  flushesNonGlobal = 0;
  invlpgs = 0;
  cr3Writes = 0;
  /** Cycles charged other than TLB hits. */
  otherCycles = 0;
  /**
   * Where `otherCycles` went, by component (CC_* indices): every charge adds
   * to `otherCycles` and to exactly one ledger slot, so the ledger sums to
   * `otherCycles`. TLB hits are not in it (the hit path does one increment);
   * Mmu.breakdown adds them to `tlb`.
   */
  ledger = new Float64Array(N_COST_COMPONENTS);

  get walks(): number {
    return this.walksByDepth[1]! + this.walksByDepth[2]! + this.walksByDepth[3]!;
  }
}
