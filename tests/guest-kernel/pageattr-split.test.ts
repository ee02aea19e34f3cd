/**
 * change_page_attr keeps the protection of every other page of the large
 * page it splits (issue 14, gap 4). pageattr.test.ts checks the changed page,
 * its neighbour's write access and the revert; here every page of the large
 * page (text and data) is compared before and after: what the processor
 * allows (read, write, fetch: NX under PAE) and the entry's flags (P, RW, US,
 * PWT, PCD, G, NX; A and D are the processor's), then again after the revert.
 *
 * Planted bugs these tests were verified against (guest-kernel/mm/pageattr.ts):
 *  - the split's reference protection PAGE_KERNEL for a text large page (the
 *    neighbouring kernel text became non-executable);
 *  - split_large_page giving every pte the new protection;
 *  - revert_page restoring a text large page with PAGE_KERNEL_LARGE (NX).
 * (`nx` and `x` are not used: under PAE PAGE_KERNEL already has NX, and in
 * 2-level PAGE_KERNEL_EXEC is PAGE_KERNEL, so each is the revert request, a
 * BUG on a page still mapped large, as in 2.6.22; and a split pmd carries the
 * reference protection, NX for data, so `x` could not make data executable.)
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE } from '../../emulator/paging-bits.js';
import type { CpaMode } from '../../guest-kernel/mm/pageattr.js';
import { lookup_address } from '../../guest-kernel/mm/pageattr.js';
import { pmd_read, pte_read } from '../../guest-kernel/mm/pgtable-defs.js';
import type { Kernel } from '../../guest-kernel/kernel.js';
import { BACKENDS, PAGING, assertClean, boot, runs } from './helpers.js';

const s = suite('guest-kernel change_page_attr: every page of a split large page keeps its protection');

// Flags that are the kernel's choice: P RW US PWT PCD G, and NX (bit 63).
const KEEP = 0x11fn | (1n << 63n);

/** Per page of the large page holding PFN: "r w x flags" as the processor and the entry show it. */
function view(k: Kernel, pfn: number): string[] {
  const L = k.L;
  const per = L.LARGE_PAGE_SIZE / 4096;
  const first = pfn - (pfn % per);
  const out: string[] = [];
  for (let p = first; p < first + per; p++) {
    const va = L.PAGE_OFFSET + p * 4096;
    const r = k.ops.probe(va, ACCESS_READ, false);
    const w = k.ops.probe(va, ACCESS_WRITE, false);
    const x = k.ops.probe(va, ACCESS_FETCH, false);
    const e = lookup_address(k.k, va);
    const v = e === null ? 0n : e.large ? pmd_read(k.k, e.addr) : pte_read(k.k, e.addr);
    out.push(`${p.toString(16)}: ${r.ok ? 'r' : '-'}${w.ok ? 'w' : '-'}${x.ok ? 'x' : '-'} ${(v & KEEP).toString(16)}`);
  }
  return out;
}

const CASES: { what: string; pfn: number; mode: CpaMode }[] = [
  { what: 'a kernel text page made read-only', pfn: 0x180, mode: 'ro' },
  { what: 'a kernel data page made read-only', pfn: (24 << 8) + 7, mode: 'ro' },
];

for (const p of PAGING) {
  for (const b of BACKENDS) {
    if (!runs(b, p.pae)) continue;
    // Guards: a wrong reference protection in the split (or in the revert) for the pages not asked for.
    s(`${b.label} ${p.label}: cpa on one page; every other page of its large page is unchanged, and all of them after the revert`, () => {
      const k = boot(b, { pae: p.pae, split: '3G', checkEachOp: true });
      k.createProcess('a');
      for (const c of CASES) {
        const before = view(k, c.pfn);
        assert.is(k.changePageAttr(c.pfn * 4096, 1, c.mode), 0);
        const after = view(k, c.pfn);
        const per = k.L.LARGE_PAGE_SIZE / 4096;
        const idx = c.pfn % per;
        for (let i = 0; i < per; i++) {
          if (i === idx) continue;
          assert.is(after[i], before[i], `${c.what}: page ${i} of the large page`);
        }
        const changed = after[idx]!.split(' ')[1]!;
        if (c.mode === 'ro') assert.is(changed[1], '-', `${c.what}: not writable`);
        if (c.what.includes('text')) assert.ok(before[idx]!.split(' ')[1]!.endsWith('x'), 'kernel text is executable');
        assert.is(k.changePageAttr(c.pfn * 4096, 1, 'rw'), 0);
        const reverted = view(k, c.pfn);
        for (let i = 0; i < per; i++) {
          if (i === idx) continue;
          assert.is(reverted[i], before[i], `${c.what}: page ${i} of the large page after the revert`);
        }
        // Reverting means PAGE_KERNEL (2.6.22 __change_page_attr): a text page
        // reverted in a pte page stays NX under PAE; where the large page is
        // restored (native), it is exactly as before.
        if (k.ops.largePagesAllowed || !c.what.includes('text')) assert.is(reverted[idx], before[idx], `${c.what}: the page itself after the revert`);
      }
      assertClean(k, 'end');
      k.exit('a');
    });
  }
}

s.run();
