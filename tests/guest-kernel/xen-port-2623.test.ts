/**
 * Guest-level behaviour the Xen port of Linux 2.6.23 and the 2.6.22 mm
 * share with every backend (issue 10, items 3, 4 and 9): run on every
 * backend and paging mode; the Xen-only figures (trapped writes) are checked
 * where the backend is Xen. Each fails on the model before the fix (commit
 * 283108a) and passes after.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { MmHandle } from '../../hypervisor/paravirt-ops.js';
import { BACKENDS, PAGING, assertClean, boot, bootWith, override } from './helpers.js';

const HEAP = 0x08048000;
const s = suite('2.6.22 mm on the 2.6.23 Xen port (issue 10)');
const traps = (k: { ops: { stats: { traps?: Record<string, number> } } }): number =>
  (k.ops.stats as { traps?: Record<string, number> }).traps?.['ptwr_emulate'] ?? 0;

for (const b of BACKENDS) {
  for (const { pae, label } of PAGING) {
    const xen = b.name.startsWith('xen');

    s(`${b.label} ${label} [item 3]: fork write-protects the parent's ptes with clear_bit: one trapped write per writable pte on a pinned table, never batched`, () => {
      const k = boot(b, { pae, split: '3G' });
      k.createProcess('a');
      k.mmap('a', HEAP, 16 * 4096, 'rw');
      assert.is(k.touch('a', HEAP, 16 * 4096, 'write'), 'ok');
      const t0 = traps(k);
      const h0 = { ...((k.ops.stats as { hypercalls?: Record<string, number> }).hypercalls ?? {}) };
      assert.is(k.fork('a', 'b'), 0);
      if (xen) {
        assert.is(traps(k) - t0, 16, 'one trapped write per writable pte of the pinned parent');
        const h = (k.ops.stats as { hypercalls: Record<string, number> }).hypercalls;
        assert.is((h['mmu_update'] ?? 0) - (h0['mmu_update'] ?? 0) < 16, true, 'not sent as (batched) mmu_updates');
      }
      // Both sides copy-on-write: the parent's write gets a copy, the child keeps the old data.
      assert.is(k.touch('a', HEAP, 4, 'write'), 'ok');
      assertClean(k, `${b.name} ${label}`);
      k.exit('b');
      k.exit('a');
    });

    s(`${b.label} ${label} [item 4]: munmap clears each pte with ptep_get_and_clear: plain stores, trapped on a pinned table (PAE: two per pte), never batched`, () => {
      const k = boot(b, { pae, split: '3G' });
      k.createProcess('a');
      k.mmap('a', HEAP, 4 * 4096, 'rw');
      assert.is(k.touch('a', HEAP, 4 * 4096, 'write'), 'ok');
      const t0 = traps(k);
      assert.is(k.munmap('a', HEAP, 4 * 4096), 0);
      if (xen) assert.is(traps(k) - t0, 4 * (pae ? 2 : 1));
      assert.is(k.touch('a', HEAP, 4, 'read'), 'segv', 'unmapped');
      assertClean(k, `${b.name} ${label}`);
    });

    s(`${b.label} ${label} [item 9]: exit_mmap runs with the dying mm still loaded (the CR3 write comes at the next switch_mm)`, () => {
      const cfg = { pae, split: '3G' as const };
      const real = b.create({ pae, memBytes: 64 << 20, cpu: 'core2', pageOffset: 0xc0000000 });
      const seen: { pgd: number; cr3: number }[] = [];
      const ops = override(real, {
        exit_mmap: (mm: MmHandle) => {
          seen.push({ pgd: mm.pgd, cr3: real.read_cr3() });
          real.exit_mmap(mm);
        },
      });
      const k = bootWith(ops, cfg);
      k.createProcess('a');
      k.mmap('a', HEAP, 4096, 'rw');
      assert.is(k.touch('a', HEAP, 4, 'write'), 'ok');
      k.exit('a');
      assert.is(seen.length, 1);
      assert.is(seen[0]!.cr3, seen[0]!.pgd, 'arch_exit_mmap is called with the dying pgd in CR3');
      assertClean(k, `${b.name} ${label}`);
    });
  }
}

s.run();
