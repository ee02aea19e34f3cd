/**
 * Pseudo-physical memory: the guest's frame numbers (pfn 0..nrPages-1) are
 * not machine frames. The domain builder gives the guest a set of machine
 * frames and the guest keeps a p2m table (pfn -> mfn); Xen keeps the reverse
 * machine-to-physical table (m2p) that guests read (Linux mfn_to_pfn).
 *
 * Layouts the backend can build:
 *  - identity: mfn = pfn (like a dom0 with all low memory);
 *  - shuffled: a seeded permutation (no Math.random: the same seed gives the
 *    same machine layout, so runs are reproducible);
 *  - above4g: the guest's machine frames straddle the 4 GiB line, half of
 *    them at mfn >= 0x100000, so Xen's "PAE pgd must be below 4GB" rule can
 *    bite a PAE guest without the pae_extended_cr3 assist.
 *
 * Entry conversion (Linux 2.6.23 arch/i386/xen/mmu.c xen_make_pte /
 * xen_pte_val): a present entry's frame field is translated, its flags are
 * left alone; a non-present entry (swap entry, file pte) is left as it is.
 */
import { pteFromWords, pteSplit, type PteVal } from '../types.js';
import { PAE_L3_LIMIT_MFN } from './abi.js';

export type P2mLayout = 'identity' | 'shuffled';

/** Deterministic 32-bit PRNG (mulberry32), seeded. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The last m2p version given out (P2m.m2pVersion): unique per P2m made and per m2p change, in this thread. */
let lastM2pVersion = 0;

export class P2m {
  /**
   * Which contents the m2p has: a number no other P2m's m2p (made, or
   * changed since) has had in this thread; a copy of a P2m keeps it until
   * either changes. For results derived from the m2p (the invariant
   * checker's sums over frozen tables).
   */
  m2pVersion = ++lastM2pVersion;
  /** pfn -> mfn. */
  private readonly p2m: Int32Array;
  /** (mfn - poolBase) -> pfn, -1 for none. */
  private readonly m2p: Int32Array;
  /** First machine frame of the guest's pool, and the pool size (== nrPages). */
  readonly poolBase: number;
  readonly nrPages: number;
  /** The invalid frame number put into an entry whose frame cannot be translated. */
  readonly invalidFrame: number;

  constructor(nrPages: number, layout: P2mLayout, above4g: boolean, seed: number, pae: boolean) {
    this.nrPages = nrPages;
    this.poolBase = above4g ? PAE_L3_LIMIT_MFN - Math.floor(nrPages / 2) : 0;
    this.invalidFrame = pae ? 0xffffff : 0xfffff;
    if (this.poolBase + nrPages > (pae ? 1 << 24 : 1 << 20)) {
      throw new RangeError(`guest of ${nrPages} pages does not fit the machine's physical address space`);
    }
    this.p2m = new Int32Array(nrPages);
    this.m2p = new Int32Array(nrPages).fill(-1);
    for (let i = 0; i < nrPages; i++) this.p2m[i] = this.poolBase + i;
    if (layout === 'shuffled') {
      const rnd = mulberry32(seed);
      for (let i = nrPages - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        const t = this.p2m[i]!;
        this.p2m[i] = this.p2m[j]!;
        this.p2m[j] = t;
      }
    }
    for (let i = 0; i < nrPages; i++) this.m2p[this.p2m[i]! - this.poolBase] = i;
  }

  /** The machine frame of guest frame `pfn`, or -1 outside guest memory. */
  pfnToMfn(pfn: number): number {
    return pfn >= 0 && pfn < this.nrPages && Number.isInteger(pfn) ? this.p2m[pfn]! : -1;
  }

  /** The guest frame of machine frame `mfn` (Xen's m2p), or -1 if the guest does not own it. */
  mfnToPfn(mfn: number): number {
    const i = mfn - this.poolBase;
    return i >= 0 && i < this.nrPages ? this.m2p[i]! : -1;
  }

  /**
   * Xen's m2p as it is now, for the invariant checker's fast pass:
   * `m2p[mfn - poolBase]` (for 0 <= mfn - poolBase < nrPages) is the pfn of
   * mfn or -1. Read-only: the caller must not write it.
   */
  m2pArray(): Int32Array {
    return this.m2p;
  }

  isGuestMfn(mfn: number): boolean {
    return this.mfnToPfn(mfn) >= 0;
  }

  /** MMU_MACHPHYS_UPDATE: m2p[mfn] = pfn (the guest's own frames only). */
  setM2p(mfn: number, pfn: number): void {
    const i = mfn - this.poolBase;
    if (i >= 0 && i < this.nrPages) {
      this.m2p[i] = pfn;
      this.m2pVersion = ++lastM2pVersion;
    }
  }

  /** Highest machine frame of the pool + 1. */
  get poolEnd(): number {
    return this.poolBase + this.nrPages;
  }

  // ---- entry conversion (make_pte / pte_val and the pmd/pgd variants) ----

  // Both work on the entry's two 32-bit words (types.ts pteLo/pteHi/
  // pteFromWords): the frame field is bits 35:12 (lo bits 31:12, hi bits
  // 3:0), the flags every other bit. The result is exactly
  // (v & PTE_FLAGS_MASK) | (BigInt(frame) << 12n), without BigInt arithmetic.

  /** pfn form -> machine form: translate the frame of a present entry. */
  toMachine(v: PteVal): PteVal {
    const w = pteSplit(v);
    const lo = w[0]!;
    if ((lo & 1) === 0) return v;
    const hi = w[1]!;
    const mfn = this.pfnToMfn((hi & 0xf) * 0x100000 + (lo >>> 12));
    return withFrame(lo, hi, mfn < 0 ? this.invalidFrame : mfn);
  }

  /** machine form -> pfn form: translate the frame of a present entry (foreign frames give the invalid pfn). */
  toPseudo(v: PteVal): PteVal {
    const w = pteSplit(v);
    const lo = w[0]!;
    if ((lo & 1) === 0) return v;
    const hi = w[1]!;
    const pfn = this.mfnToPfn((hi & 0xf) * 0x100000 + (lo >>> 12));
    return withFrame(lo, hi, pfn < 0 ? this.invalidFrame : pfn);
  }

  /**
   * The frame field (bits 35:12) of toPseudo(the entry with words lo/hi):
   * what entryPfn(toPseudo(v)) gives, without building BigInt values.
   */
  pseudoFrameOf(lo: number, hi: number): number {
    const frame = (hi & 0xf) * 0x100000 + (lo >>> 12);
    if ((lo & 1) === 0) return frame;
    const pfn = this.mfnToPfn(frame);
    return pfn < 0 ? this.invalidFrame : pfn;
  }
}

/** The entry (lo, hi) with its frame field (bits 35:12) replaced by `frame` (< 2^24). */
function withFrame(lo: number, hi: number, frame: number): PteVal {
  return pteFromWords((lo & 0xfff) | (frame << 12), (hi & 0xfffffff0) | (frame >>> 20));
}
