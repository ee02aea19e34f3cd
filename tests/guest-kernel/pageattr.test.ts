import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelBug } from '../../guest-kernel/kernel.js';
import { BACKENDS, CONFIGS, assertClean, boot, runs } from './helpers.js';

const s = suite('guest-kernel change_page_attr');

const PHYS = (16 << 20) + 0x5000;

for (const c of CONFIGS) {
  for (const b of BACKENDS) {
    if (!runs(b, c.pae)) continue;
    s(`${b.label} ${c.label}: cpa ro splits a large page (native), reaches every pgd, and reverts`, () => {
      const k = boot(b, { ...c, checkEachOp: true });
      const large = k.ops.largePagesAllowed;
      k.shrinkCaches();
      const base = k.snapshot();
      const va = k.L.PAGE_OFFSET + PHYS;
      k.ops.mem.write32(PHYS, 0xabcd);
      assert.is(k.createProcess('a'), 0);
      assert.is(k.createProcess('b'), 0);
      assert.is(k.changePageAttr(PHYS, 1, 'ro'), 0);
      assert.is(k.stats.cpaSplits, large ? 1 : 0);
      assert.is(k.createProcess('c'), 0);
      for (const p of ['a', 'b', 'c']) {
        k.switchTo(p);
        assert.is(k.kernelReadVa(va), 0xabcd);
        assert.throws(() => k.kernelWriteVa(va, 1), (e: unknown) => e instanceof KernelBug, `${p}: the page is read-only`);
        k.kernelWriteVa(va + 4096, 7); // the neighbour keeps its rights
      }
      k.switchToIdle();
      assert.throws(() => k.kernelWriteVa(va, 1), (e: unknown) => e instanceof KernelBug);
      assert.is(k.changePageAttr(PHYS, 1, 'rw'), 0);
      assert.is(k.stats.cpaReverts, large ? 1 : 0);
      for (const p of ['a', 'b', 'c']) {
        k.switchTo(p);
        k.kernelWriteVa(va, 0x5555);
        assert.is(k.kernelReadVa(va), 0x5555);
      }
      if (large) {
        // Back to one large page in init_mm.
        const r = k.ops.probe(va, 0, false);
        assert.ok(r.ok && r.gpa === PHYS);
      }
      assert.is(k.changePageAttr(k.L.max_low_pfn * 4096, 1, 'ro'), -22, 'highmem / beyond lowmem');
      for (const p of ['a', 'b', 'c']) k.exit(p);
      assertClean(k, 'end');
      k.shrinkCaches();
      assert.equal(k.snapshot(), base, 'the split pte page was freed');
    });
  }
}

s.run();
