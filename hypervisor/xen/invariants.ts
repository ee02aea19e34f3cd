/**
 * The Xen model's invariant checker: recount from memory every reference
 * Xen's rules say exists, and compare with the frame table.
 *
 *  - every frame's type count equals the references that exist: present
 *    entries of validated tables pointing at it (L3 -> L2, L2 -> L1, writable
 *    L1 entries -> writable), plus its pin, plus the loaded base pointer;
 *  - no page-table frame is mapped writable by any present L1 entry of a
 *    typed L1, and no typed L2 holds a PSE entry in a guest slot;
 *  - pinned frames are typed;
 *  - PAE: every L3's slot-3 L2 is typed L2 + pae_xen_l2 and referenced by
 *    exactly one L3; Xen's hole entries are intact in every table carrying
 *    them;
 *  - the machine CR3 is the base pointer (or Xen's low copy of it).
 *
 * The hypervisor's checker: it knows nothing of the guest port (the guest
 * kernel checks its own accounting, such as unbalanced release_pd).
 *
 * Reads memory directly (no cycles charged). Returns the violations found,
 * in a fixed order: per frame in the frame table's order, then the counts
 * (frames referenced, in the order first referenced, then the others in the
 * frame table's order), then the slot-3 L2s. The tallies are typed arrays
 * over the frame table's window (no object per frame).
 *
 * Two passes (issue 12: the inject sweep checks twice per injected run):
 * `xenInvariantsHold` recounts over the frame table's arrays with no order
 * kept and no call per entry and only decides "nothing to report";
 * `checkXenInvariantsExact` is the ordered pass that words the violations,
 * run only when the first pass saw something wrong (or a frame outside the
 * window, which it leaves to the exact pass). The first pass is
 * conservative: whenever the exact pass would report something, it says
 * false, so checkXenInvariants returns exactly what the exact pass returns
 * (tests/hypervisor/xen-invariants-fast.test.ts compares them on broken states).
 */
import { PTE_P, PTE_PS, PTE_RW } from '../../emulator/paging-bits.js';
import { PAE_L3_LIMIT_MFN } from './abi.js';
import type { XenDomain } from './domain.js';
import { PGT_L1, PGT_L2, PGT_L3, PGT_L4, PGT_pae_xen_l2, PGT_pinned, PGT_present, PGT_type_mask, PGT_validated } from './frame-table.js';
import { hex } from '../../emulator/hex.js';
import { typeName } from './reasons.js';
import type { PhysMem } from '../../emulator/phys-mem.js';
import type { XenHole } from './hole.js';

/**
 * A count per machine frame: an Int32Array over a window of frames (a Map
 * beyond it), and the frames in the order they were first counted.
 */
class Tally {
  private readonly counts: Int32Array;
  private readonly extra = new Map<number, number>();
  /** The frames counted, in the order first counted. */
  readonly order: number[] = [];

  constructor(
    private readonly first: number,
    size: number,
  ) {
    this.counts = new Int32Array(size);
  }

  add(mfn: number): void {
    const i = mfn - this.first;
    if (i >>> 0 === i && i < this.counts.length) {
      if (++this.counts[i]! === 1) this.order.push(mfn);
      return;
    }
    const c = (this.extra.get(mfn) ?? 0) + 1;
    if (c === 1) this.order.push(mfn);
    this.extra.set(mfn, c);
  }

  get(mfn: number): number {
    const i = mfn - this.first;
    if (i >>> 0 === i && i < this.counts.length) return this.counts[i]!;
    return this.extra.get(mfn) ?? 0;
  }
}

export function checkXenInvariants(target: { readonly domain: XenDomain } | XenDomain): string[] {
  const d: XenDomain = 'domain' in target ? target.domain : target;
  return xenInvariantsHold(d) ? [] : checkXenInvariantsExact(d);
}

/**
 * The fast pass: true only if checkXenInvariantsExact(d) would find nothing.
 * The same recount (pins, references of validated tables' entries, the
 * base pointer) into typed arrays over the frame table's window, every
 * condition of the exact pass tested where it would report; any doubt (a
 * violation, a frame outside the window) is false.
 */
export function xenInvariantsHold(target: { readonly domain: XenDomain } | XenDomain): boolean {
  const d: XenDomain = 'domain' in target ? target.domain : target;
  const c = new FastRecount(d);
  return c.tables() && c.counts() && c.machineRoot();
}

/**
 * The fast pass's state and its steps, each a small method: the per-table
 * scans run ~150 times per check and get compiled after a few checks,
 * where one large function would run its first checks unoptimized (an
 * inject sweep's first runs are what its benchmark times).
 */
class FastRecount {
  private readonly mem: PhysMem;
  private readonly pae: boolean;
  /** Entries per table. */
  private readonly n: number;
  private readonly base: number;
  private readonly size: number;
  private readonly typeInfo: Uint8Array;
  private readonly typeCount: Int32Array;
  private readonly m2p: Int32Array;
  private readonly poolBase: number;
  private readonly nrPages: number;
  private readonly hole: XenHole;
  /** The references that exist, per frame of the window. */
  private readonly want: Int32Array;
  /** Per L2, the L3s whose slot 3 holds it. */
  private readonly slot3: Int32Array;
  /** The window indices of the frames typed (count > 0) with the pae_xen_l2 flag. */
  private readonly xenL2s: number[] = [];
  /** The window indices of the frames typed (count > 0) as page tables. */
  private readonly pageTables: number[] = [];
  /** The validated L1s whose frames are frozen (PhysMem.isFrozen): their buffers, in the frame table's window order. */
  private readonly frozenL1s: Int32Array[] = [];
  /** Their writable references summed per window index (frozenSum), or null when there are none. */
  private frozen: Int32Array | null = null;

  constructor(private readonly d: XenDomain) {
    this.mem = d.mmu.mem;
    this.pae = d.pae;
    this.n = d.pae ? 512 : 1024;
    const { base, typeInfo, typeCount } = d.frames.arrays();
    this.base = base;
    this.size = typeInfo.length;
    this.typeInfo = typeInfo;
    this.typeCount = typeCount;
    this.m2p = d.p2m.m2pArray();
    this.poolBase = d.p2m.poolBase;
    this.nrPages = d.p2m.nrPages;
    this.hole = d.hole;
    this.want = scratchTally(0, this.size);
    this.slot3 = scratchTally(1, this.size);
  }

  /** The index of guest frame `m` in the window; -1 if not the guest's, -2 if outside the window. */
  private guestIndex(m: number): number {
    const g = m - this.poolBase;
    if (g < 0 || g >= this.nrPages || this.m2p[g]! < 0) return -1;
    const j = m - this.base;
    return j < 0 || j >= this.size ? -2 : j;
  }

  /**
   * Pins, every validated table's references, the base pointer. Only the
   * frames the frame table lists as page tables or pinned
   * (FrameTable.pageTableFrames) can hold a pin or a validated table, so
   * only they are visited, in window order (the order of the frozen tables
   * the sum cache is keyed by).
   */
  tables(): boolean {
    const { typeInfo, typeCount, want, size } = this;
    const { list, count: listed } = this.d.frames.pageTableFrames();
    const order = scratchOrder(listed);
    for (let k = 0; k < listed; k++) {
      const f = list[k]! - this.base;
      if (f < 0 || f >= size) return false;
      order[k] = f;
    }
    order.sort();
    for (let k = 0; k < listed; k++) {
      const f = order[k]!;
      const info = typeInfo[f]!;
      if ((info & PGT_present) === 0) continue;
      const count = typeCount[f]!;
      if ((info & PGT_pinned) !== 0) {
        want[f]!++;
        if (count === 0) return false;
      }
      if (count === 0) continue;
      if ((info & PGT_pae_xen_l2) !== 0) this.xenL2s.push(f);
      const type = info & PGT_type_mask;
      if (type >= PGT_L1 && type <= PGT_L4) this.pageTables.push(f);
      if ((info & PGT_validated) === 0) continue;
      if (type === PGT_L1) {
        const mfn = this.base + f;
        if (this.mem.isFrozen(mfn)) this.frozenL1s.push(this.mem.frame(mfn));
        else if (!this.l1(this.mem.frame(mfn))) return false;
      } else if (type === PGT_L2) {
        if (!this.l2(this.base + f, (info & PGT_pae_xen_l2) !== 0)) return false;
      } else if (type === PGT_L3) {
        if (!this.l3(this.mem.frame(this.base + f))) return false;
      }
    }
    const b = this.d.baseMfn;
    if (b >= 0) {
      const j = b - this.base;
      if (j < 0 || j >= size) return false;
      want[j]!++;
    }
    if (this.frozenL1s.length > 0) {
      const sum = this.frozenSum();
      if (sum === null) return false;
      // l1()'s test, for the frozen tables' references: none to a page table.
      for (const f of this.pageTables) if (sum[f]! > 0) return false;
      this.frozen = sum;
    }
    return true;
  }

  /**
   * The writable references of the frozen L1s (what l1() would add to
   * `want`), per window index, from the cache when these very buffers were
   * summed before under the same m2p and window; null if one points outside
   * the window (l1() would say false). An injected run restored from a
   * checkpoint checks the same frozen direct-map L1s of the kernel (about
   * 130 tables, 65,000 entries for 256 MiB) check after check.
   */
  private frozenSum(): Int32Array | null {
    const tables = this.frozenL1s;
    const version = this.d.p2m.m2pVersion;
    for (let c = 0; c < frozenCache.length; c++) {
      const e = frozenCache[c]!;
      if (e.base !== this.base || e.size !== this.size || e.m2pVersion !== version || e.tables.length !== tables.length) continue;
      let same = true;
      for (let i = 0; i < tables.length && same; i++) same = e.tables[i] === tables[i];
      if (!same) continue;
      if (c > 0) {
        frozenCache.splice(c, 1);
        frozenCache.unshift(e);
      }
      return e.sum;
    }
    const { pae, n } = this;
    const sum = new Int32Array(this.size);
    for (const words of tables) {
      for (let i = 0; i < n; i++) {
        const lo = words[pae ? 2 * i : i]!;
        if ((lo & (PTE_P | PTE_RW)) !== (PTE_P | PTE_RW)) continue;
        const j = this.guestIndex(frameNumber(pae, lo, pae ? words[2 * i + 1]! : 0));
        if (j === -1) continue;
        if (j < 0) return null;
        sum[j]!++;
      }
    }
    frozenCache.unshift({ tables: [...tables], base: this.base, size: this.size, m2pVersion: version, sum });
    if (frozenCache.length > FROZEN_CACHE_SIZE) frozenCache.pop();
    return sum;
  }

  /** An L1: writable references; none to a page table. */
  private l1(words: Int32Array): boolean {
    const { pae, n, want, typeInfo, typeCount } = this;
    for (let i = 0; i < n; i++) {
      const lo = words[pae ? 2 * i : i]!;
      if ((lo & (PTE_P | PTE_RW)) !== (PTE_P | PTE_RW)) continue;
      const j = this.guestIndex(frameNumber(pae, lo, pae ? words[2 * i + 1]! : 0));
      if (j === -1) continue;
      if (j < 0) return false;
      want[j]!++;
      const t = typeInfo[j]! & PGT_type_mask;
      if (t >= PGT_L1 && t <= PGT_L4 && typeCount[j]! > 0) return false;
    }
    return true;
  }

  /** An L2: guest slots reference guest L1s, no large page; Xen's hole intact. */
  private l2(mfn: number, xenL2: boolean): boolean {
    const { pae, want, typeInfo } = this;
    const words = this.mem.frame(mfn);
    const end = pae && !xenL2 ? this.n : this.hole.firstSlot;
    for (let i = 0; i < end; i++) {
      const lo = words[pae ? 2 * i : i]!;
      if ((lo & PTE_P) === 0) continue;
      if ((lo & PTE_PS) !== 0) return false;
      const j = this.guestIndex(frameNumber(pae, lo, pae ? words[2 * i + 1]! : 0));
      if (j < 0) return false;
      want[j]!++;
      if ((typeInfo[j]! & PGT_type_mask) !== PGT_L1) return false;
    }
    return !((xenL2 || !pae) && !this.hole.isIntact(mfn));
  }

  /** An L3: four present slots, each a guest L2, pae_xen_l2 exactly in slot 3. */
  private l3(words: Int32Array): boolean {
    const { pae, want, typeInfo, slot3 } = this;
    for (let i = 0; i < 4; i++) {
      const lo = words[pae ? 2 * i : i]!;
      if ((lo & PTE_P) === 0) {
        if (i === 3) return false;
        continue;
      }
      const j = this.guestIndex(frameNumber(pae, lo, pae ? words[2 * i + 1]! : 0));
      if (j < 0) return false;
      want[j]!++;
      const t = typeInfo[j]!;
      if ((t & PGT_present) === 0 || (t & PGT_type_mask) !== PGT_L2 || ((t & PGT_pae_xen_l2) !== 0) !== (i === 3)) return false;
      if (i === 3 && ++slot3[j]! > 1) return false;
    }
    return true;
  }

  /**
   * Counts, over the whole window (a frame without state has type_info 0
   * and, if it counts nothing, count 0); every typed pae_xen_l2 in an L3's
   * slot 3 (l3() saw none in two).
   */
  counts(): boolean {
    const { typeCount, want, size, frozen } = this;
    if (frozen === null) {
      for (let f = 0; f < size; f++) if (typeCount[f] !== want[f]) return false;
    } else {
      for (let f = 0; f < size; f++) if (typeCount[f] !== want[f]! + frozen[f]!) return false;
    }
    for (const f of this.xenL2s) if (this.slot3[f] === 0) return false;
    return true;
  }

  /** The processor runs on the base pointer (or its low copy). */
  machineRoot(): boolean {
    const d = this.d;
    const root = d.baseMfn < 0 ? d.idleRoot : d.baseMfn;
    return d.machineRoot === (this.pae && root >= PAE_L3_LIMIT_MFN ? d.lowL3 : root);
  }
}

/** A sum of frozen L1s' writable references (FastRecount.frozenSum), and what it is valid for. */
interface FrozenSum {
  /** The frozen buffers summed, in order. */
  readonly tables: readonly Int32Array[];
  readonly base: number;
  readonly size: number;
  readonly m2pVersion: number;
  readonly sum: Int32Array;
}

/** How many sums are kept (the most recently used first): a sweep's checkpoints each freeze their own set of tables. */
const FROZEN_CACHE_SIZE = 8;
const frozenCache: FrozenSum[] = [];

/**
 * The fast pass's two tallies, kept between calls and zeroed for each: a
 * fresh typed array of a window's size costs more (allocation, external
 * memory accounting, the collections it brings on) than the pass itself.
 * The pass calls nothing that could call it again, so one pair serves.
 */
const scratch: Int32Array[] = [new Int32Array(0), new Int32Array(0)];

/** The listed frames' window indices, sorted (FastRecount.tables): a scratch array reused from pass to pass, as the tallies are. */
let scratchList = new Int32Array(0);

function scratchOrder(n: number): Int32Array {
  if (scratchList.length < n) scratchList = new Int32Array(Math.max(n, 2 * scratchList.length));
  return scratchList.subarray(0, n);
}

function scratchTally(k: 0 | 1, size: number): Int32Array {
  let a = scratch[k]!;
  if (a.length < size) a = scratch[k] = new Int32Array(size);
  else a.fill(0, 0, size);
  return a;
}

/**
 * rules.frameOf as a small integer, for the fast pass's array indices: a
 * frame at or beyond 2^31 (an entry with high address bits set, far above
 * any machine frame of the model) is -1, which no guest frame and no
 * window index is.
 */
function frameNumber(pae: boolean, lo: number, hi: number): number {
  if (!pae) return lo >>> 12;
  const h = hi & 0xfffff;
  return h >= 0x800 ? -1 : (h << 20) | (lo >>> 12);
}

/** The ordered pass: every violation, worded, in the fixed order above. */
export function checkXenInvariantsExact(target: { readonly domain: XenDomain } | XenDomain): string[] {
  const d: XenDomain = 'domain' in target ? target.domain : target;
  const out: string[] = [];
  const mem = d.mmu.mem;
  const pae = d.pae;
  const n = pae ? 512 : 1024;
  const ft = d.frames;
  const rules = d.rules;
  const p2m = d.p2m;
  const { first, size } = ft.window;
  /** The references that exist, per frame. */
  const expected = new Tally(first, size);
  /** Per L2, the L3s whose slot 3 holds it; the (l2, l3) pairs in the order seen. */
  const slot3 = new Tally(first, size);
  const slot3L2: number[] = [];
  const slot3L3: number[] = [];
  const typeNameOf = (mfn: number): string => typeName(ft.typeOf(mfn), ft.isXenL2(mfn));

  const nFrames = ft.frameCount;
  for (let k = 0; k < nFrames; k++) {
    const mfn = ft.frameAt(k);
    const info = ft.typeInfo(mfn);
    const count = ft.countOf(mfn);
    if ((info & PGT_pinned) !== 0) {
      expected.add(mfn);
      if (count === 0) out.push(`pinned mfn ${hex(mfn)} is not typed`);
    }
    if (count === 0 || (info & PGT_validated) === 0) continue;
    const type = info & PGT_type_mask;
    const xenL2 = (info & PGT_pae_xen_l2) !== 0;
    const words = mem.frame(mfn);
    if (type === PGT_L1) {
      for (let i = 0; i < n; i++) {
        const lo = words[pae ? 2 * i : i]! >>> 0;
        if ((lo & PTE_P) === 0 || (lo & PTE_RW) === 0) continue;
        const m = rules.frameOf(lo, pae ? words[2 * i + 1]! >>> 0 : 0);
        if (!p2m.isGuestMfn(m)) continue;
        expected.add(m);
        if (ft.isPageTable(m)) {
          out.push(`page-table mfn ${hex(m)} (${typeNameOf(m)}) is mapped writable by L1 mfn ${hex(mfn)} entry ${i}`);
        }
      }
    } else if (type === PGT_L2) {
      for (let i = 0; i < n; i++) {
        if (!rules.isGuestL2Slot(xenL2, i)) continue;
        const lo = words[pae ? 2 * i : i]! >>> 0;
        if ((lo & PTE_P) === 0) continue;
        const m = rules.frameOf(lo, pae ? words[2 * i + 1]! >>> 0 : 0);
        if ((lo & PTE_PS) !== 0) out.push(`L2 mfn ${hex(mfn)} entry ${i} maps a large page`);
        if (!p2m.isGuestMfn(m)) {
          out.push(`L2 mfn ${hex(mfn)} entry ${i} points at mfn ${hex(m)}, not the guest's`);
          continue;
        }
        expected.add(m);
        if (ft.typeOf(m) !== PGT_L1) out.push(`L2 mfn ${hex(mfn)} entry ${i} points at mfn ${hex(m)} not typed l1`);
      }
      if ((xenL2 || !pae) && !d.hole.isIntact(mfn)) out.push(`Xen's hole entries of L2 mfn ${hex(mfn)} were changed`);
    } else if (type === PGT_L3) {
      for (let i = 0; i < 4; i++) {
        const lo = words[pae ? 2 * i : i]! >>> 0;
        if ((lo & PTE_P) === 0) {
          if (i === 3) out.push(`L3 mfn ${hex(mfn)} has no slot 3`);
          continue;
        }
        const m = rules.frameOf(lo, pae ? words[2 * i + 1]! >>> 0 : 0);
        if (!p2m.isGuestMfn(m)) {
          out.push(`L3 mfn ${hex(mfn)} slot ${i} points at mfn ${hex(m)}, not the guest's`);
          continue;
        }
        expected.add(m);
        const t = ft.typeInfo(m);
        if ((t & PGT_present) === 0 || (t & PGT_type_mask) !== PGT_L2 || ((t & PGT_pae_xen_l2) !== 0) !== (i === 3)) {
          out.push(`L3 mfn ${hex(mfn)} slot ${i} points at mfn ${hex(m)} typed ${(t & PGT_present) !== 0 ? typeNameOf(m) : 'none'}`);
        }
        if (i === 3) {
          slot3.add(m);
          slot3L2.push(m);
          slot3L3.push(mfn);
        }
      }
    }
  }
  if (d.baseMfn >= 0) expected.add(d.baseMfn);

  // Every frame referenced (in the order first referenced), then every other frame with state.
  const counted = expected.order;
  for (let k = 0; k < counted.length; k++) {
    const mfn = counted[k]!;
    const have = ft.countOf(mfn);
    const want = expected.get(mfn);
    if (have !== want) out.push(`mfn ${hex(mfn)}: type count ${have} but ${want} references exist`);
  }
  for (let k = 0; k < nFrames; k++) {
    const mfn = ft.frameAt(k);
    if (expected.get(mfn) !== 0) continue;
    const have = ft.countOf(mfn);
    if (have !== 0) out.push(`mfn ${hex(mfn)}: type count ${have} but 0 references exist`);
  }
  for (const l2 of slot3.order) {
    const c = slot3.get(l2);
    if (c === 1) continue;
    const l3s: number[] = [];
    for (let j = 0; j < slot3L2.length; j++) if (slot3L2[j] === l2) l3s.push(slot3L3[j]!);
    out.push(`slot-3 L2 mfn ${hex(l2)} is referenced by ${c} L3s (${l3s.map(hex).join(', ')})`);
  }
  for (let k = 0; k < nFrames; k++) {
    const mfn = ft.frameAt(k);
    if ((ft.typeInfo(mfn) & PGT_pae_xen_l2) !== 0 && ft.countOf(mfn) > 0 && slot3.get(mfn) === 0) {
      out.push(`pae_xen_l2 mfn ${hex(mfn)} is in no L3's slot 3`);
    }
  }

  // The processor runs on the base pointer (or its low copy).
  const root = d.baseMfn < 0 ? d.idleRoot : d.baseMfn;
  const want = pae && root >= PAE_L3_LIMIT_MFN ? d.lowL3 : root;
  if (d.machineRoot !== want) out.push(`machine CR3 frame ${hex(d.machineRoot)} is not the base pointer ${hex(want)}`);

  return out;
}
