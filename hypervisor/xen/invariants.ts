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
 * Reads memory directly (no cycles charged). Returns the violations found.
 */
import { PTE_P, PTE_PS, PTE_RW } from '../../emulator/paging-bits.js';
import { PAE_L3_LIMIT_MFN } from './abi.js';
import type { XenDomain } from './domain.js';
import { PGT_L1, PGT_L2, PGT_L3, type FrameInfo } from './frame-table.js';
import { hex } from '../../emulator/hex.js';
import { typeName } from './reasons.js';

const typeNameOf = (f: FrameInfo): string => typeName(f.type, f.xenL2);

export function checkXenInvariants(target: { readonly domain: XenDomain } | XenDomain): string[] {
  const d: XenDomain = 'domain' in target ? target.domain : target;
  const out: string[] = [];
  const mem = d.mmu.mem;
  const pae = d.pae;
  const n = pae ? 512 : 1024;
  const expected = new Map<number, number>();
  const add = (mfn: number): void => {
    expected.set(mfn, (expected.get(mfn) ?? 0) + 1);
  };
  const l3sOfL2 = new Map<number, number[]>();
  const ent = (mfn: number, i: number): { lo: number; hi: number; m: number } => {
    const lo = mem.word(mfn, pae ? 2 * i : i);
    const hi = pae ? mem.word(mfn, 2 * i + 1) : 0;
    return { lo, hi, m: d.rules.frameOf(lo, hi) };
  };

  for (const [mfn, f] of d.frames.frames()) {
    if (f.pinned) {
      add(mfn);
      if (f.count === 0) out.push(`pinned mfn ${hex(mfn)} is not typed`);
    }
    if (f.count === 0 || !f.validated) continue;
    if (f.type === PGT_L1) {
      for (let i = 0; i < n; i++) {
        const e = ent(mfn, i);
        if ((e.lo & PTE_P) === 0 || (e.lo & PTE_RW) === 0 || !d.p2m.isGuestMfn(e.m)) continue;
        add(e.m);
        if (d.frames.isPageTable(e.m)) {
          out.push(
            `page-table mfn ${hex(e.m)} (${typeNameOf(d.frames.get(e.m)!)}) is mapped writable by L1 mfn ${hex(mfn)} entry ${i}`,
          );
        }
      }
    } else if (f.type === PGT_L2) {
      for (let i = 0; i < n; i++) {
        if (!d.rules.isGuestL2Slot(f.xenL2, i)) continue;
        const e = ent(mfn, i);
        if ((e.lo & PTE_P) === 0) continue;
        if ((e.lo & PTE_PS) !== 0) out.push(`L2 mfn ${hex(mfn)} entry ${i} maps a large page`);
        if (!d.p2m.isGuestMfn(e.m)) {
          out.push(`L2 mfn ${hex(mfn)} entry ${i} points at mfn ${hex(e.m)}, not the guest's`);
          continue;
        }
        add(e.m);
        if (d.frames.typeOf(e.m) !== PGT_L1) out.push(`L2 mfn ${hex(mfn)} entry ${i} points at mfn ${hex(e.m)} not typed l1`);
      }
      if ((f.xenL2 || !pae) && !d.hole.isIntact(mfn)) out.push(`Xen's hole entries of L2 mfn ${hex(mfn)} were changed`);
    } else if (f.type === PGT_L3) {
      for (let i = 0; i < 4; i++) {
        const e = ent(mfn, i);
        if ((e.lo & PTE_P) === 0) {
          if (i === 3) out.push(`L3 mfn ${hex(mfn)} has no slot 3`);
          continue;
        }
        if (!d.p2m.isGuestMfn(e.m)) {
          out.push(`L3 mfn ${hex(mfn)} slot ${i} points at mfn ${hex(e.m)}, not the guest's`);
          continue;
        }
        add(e.m);
        const t = d.frames.get(e.m);
        if (t === undefined || t.type !== PGT_L2 || t.xenL2 !== (i === 3)) {
          out.push(`L3 mfn ${hex(mfn)} slot ${i} points at mfn ${hex(e.m)} typed ${t ? typeNameOf(t) : 'none'}`);
        }
        if (i === 3) l3sOfL2.set(e.m, [...(l3sOfL2.get(e.m) ?? []), mfn]);
      }
    }
  }
  if (d.baseMfn >= 0) add(d.baseMfn);

  const all = new Set<number>([...expected.keys()]);
  for (const [mfn] of d.frames.frames()) all.add(mfn);
  for (const mfn of all) {
    const have = d.frames.countOf(mfn);
    const want = expected.get(mfn) ?? 0;
    if (have !== want) out.push(`mfn ${hex(mfn)}: type count ${have} but ${want} references exist`);
  }
  for (const [l2, l3s] of l3sOfL2) {
    if (l3s.length !== 1) out.push(`slot-3 L2 mfn ${hex(l2)} is referenced by ${l3s.length} L3s (${l3s.map(hex).join(', ')})`);
  }
  for (const [mfn, f] of d.frames.frames()) {
    if (f.xenL2 && f.count > 0 && !l3sOfL2.has(mfn)) out.push(`pae_xen_l2 mfn ${hex(mfn)} is in no L3's slot 3`);
  }

  // The processor runs on the base pointer (or its low copy).
  const root = d.baseMfn < 0 ? d.idleRoot : d.baseMfn;
  const want = pae && root >= PAE_L3_LIMIT_MFN ? d.lowL3 : root;
  if (d.machineRoot !== want) out.push(`machine CR3 frame ${hex(d.machineRoot)} is not the base pointer ${hex(want)}`);

  return out;
}
