/** The invariant checker notices what it is meant to notice (each check can fail). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { GFP_KERNEL } from '../../guest-kernel/mm/page-alloc.js';
import { mm_ptep } from '../../guest-kernel/mm/memory.js';
import { BACKENDS, boot, runs } from './helpers.js';

const s = suite('guest-kernel invariants');

for (const b of BACKENDS) {
  for (const pae of [true, false]) {
    if (!runs(b, pae)) continue;
    const label = `${b.label} ${pae ? 'PAE' : '2-level'}`;

    s(`${label}: a frame allocated and dropped is reported as leaked`, () => {
      const k = boot(b, { pae, split: '3G' });
      assert.equal(k.checkInvariants(), []);
      const pfn = k.k.pages.alloc_pages(GFP_KERNEL, 0, 'test_leak');
      const v = k.checkInvariants();
      assert.ok(v.some((x) => x.includes(`frame 0x${pfn.toString(16)} is allocated (by test_leak)`)), v.join('\n'));
      k.k.pages.free_page(pfn);
      assert.equal(k.checkInvariants(), []);
    });

    s(`${label}: a pgd missing from pgd_list, or a stale one on it, is reported`, () => {
      const k = boot(b, { pae, split: '3G' });
      k.createProcess('a');
      const unshared = !pae || !k.ops.sharedKernelPmd;
      if (unshared) {
        const head = k.k.pgd_list;
        k.k.pgd_list = -1;
        assert.ok(k.checkInvariants().some((x) => /missing from the list/.test(x)));
        k.k.pgd_list = head;
      } else {
        k.k.pgd_list = Math.floor(k.pgdOf('a') / 4096);
        k.k.pages.private[k.k.pgd_list] = -2;
        k.k.pages.index[k.k.pgd_list] = -1;
        assert.ok(k.checkInvariants().some((x) => /is listed but/.test(x)));
        k.k.pgd_list = -1;
      }
      assert.equal(k.checkInvariants(), []);
    });

    s(`${label}: a kernel entry differing from init_mm, a writable shared page, a user pte on a kernel frame`, () => {
      const k = boot(b, { pae, split: '3G' });
      k.createProcess('a');
      k.mmap('a', 0x1000000, 8192, 'rw');
      k.userWrite32('a', 0x1000000, 1);
      k.fork('a', 'b');
      const mm = [...k.k.mms].find((m) => m.owner === 'b')!;
      const ptep = mm_ptep(k.k, mm, 0x1000000);
      const ops = k.ops;
      const orig = ops.pte_val(pae ? ops.mem.read64(ptep) : BigInt(ops.mem.read32(ptep)));
      ops.set_pte(ptep, ops.make_pte(orig | 2n)); // writable while shared with a
      assert.ok(k.checkInvariants().some((x) => /COW broken/.test(x)));
      ops.set_pte(ptep, ops.make_pte(BigInt(k.k.swapper_pg_dir) | (orig & 0xffdn))); // a kernel frame, read-only
      assert.ok(k.checkInvariants().some((x) => /not a user page/.test(x)));
      ops.set_pte(ptep, ops.make_pte(orig));
      ops.flush_tlb_user();
      assert.equal(k.checkInvariants(), [], 'restored');
    });
  }
}

s('native PAE: CR3 and the PDPTE registers are checked against the pgd in memory', () => {
  const k = boot(BACKENDS[0]!, { pae: true, split: '3G' });
  k.createProcess('a');
  k.mmap('a', 0x1000000, 4096, 'rw');
  k.userWrite32('a', 0x1000000, 9);
  assert.equal(k.checkInvariants(), []);
  // Change the loaded pgd's slot 0 in memory without reloading CR3: the
  // processor still uses the old PDPTE.
  const pgd = k.pgdOf('a');
  const mem = k.ops.mem;
  const old = mem.read64(pgd);
  mem.write64(pgd, 0n);
  assert.is(k.userRead32('a', 0x1000000), 9, 'the processor still walks the old pmd');
  const v = k.checkInvariants();
  assert.ok(v.some((x) => /stale PDPTE registers/.test(x)), v.join('\n'));
  mem.write64(pgd, old);
  assert.equal(k.checkInvariants(), []);
});

s.run();
