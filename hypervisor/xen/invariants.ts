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
 */
import { PTE_P, PTE_PS, PTE_RW } from '../../emulator/paging-bits.js';
import { PAE_L3_LIMIT_MFN } from './abi.js';
import type { XenDomain } from './domain.js';
import { PGT_L1, PGT_L2, PGT_L3, PGT_pae_xen_l2, PGT_pinned, PGT_present, PGT_type_mask, PGT_validated } from './frame-table.js';
import { hex } from '../../emulator/hex.js';
import { typeName } from './reasons.js';

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
