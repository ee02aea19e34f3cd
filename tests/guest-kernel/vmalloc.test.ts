import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BACKENDS, CONFIGS, assertClean, boot, runs } from './helpers.js';

const s = suite('guest-kernel vmalloc');

for (const c of CONFIGS) {
  for (const b of BACKENDS) {
    if (!runs(b, c.pae)) continue;
    s(`${b.label} ${c.label}: vmalloc area read from another process (vmalloc_fault where the kernel pmd is not shared)`, () => {
      const k = boot(b, { ...c, checkEachOp: true });
      const shared = c.pae && k.ops.sharedKernelPmd;
      k.shrinkCaches();
      const base = k.snapshot();
      assert.is(k.createProcess('a'), 0);
      assert.is(k.createProcess('b'), 0);
      const area = k.vmalloc(64 << 10)!;
      assert.ok(area !== null);
      assert.ok(area.addr >= k.L.VMALLOC_START && area.addr + area.size <= k.L.VMALLOC_END);
      k.kernelWrite32(area, 0, 0xdeadbeef); // in b's context
      k.kernelWrite32(area, 0xfffc, 0x12345678);
      k.switchTo('a');
      assert.is(k.kernelRead32(area, 0), 0xdeadbeef);
      assert.is(k.kernelRead32(area, 0xfffc), 0x12345678);
      // One vmalloc fault per pgd that predates the area — except that natively
      // the area's pages are global, so a TLB entry filled in b's context
      // survives the switch to a (as on real hardware).
      const expected = shared ? [0] : k.ops.globalPagesAllowed === false ? [2] : [1, 2];
      assert.ok(expected.includes(k.stats.faultsVmalloc), `vmalloc faults ${k.stats.faultsVmalloc}, expected ${expected}`);
      const faults = k.stats.faultsVmalloc;
      // A pgd made after the area copies init_mm's entries: no fault.
      assert.is(k.createProcess('c'), 0);
      assert.is(k.kernelRead32(area, 0), 0xdeadbeef);
      assert.is(k.stats.faultsVmalloc, faults);
      // vmalloc_sync_all ahead of time: a 3 MiB area spans several pmds; no pgd faults on it.
      const big = k.vmalloc(3 << 20)!;
      k.kernelWrite32(big, 0, 1);
      k.kernelWrite32(big, (3 << 20) - 4, 2);
      k.vmallocSyncAll();
      const before = k.stats.faultsVmalloc;
      for (const p of ['a', 'b', 'c']) {
        k.switchTo(p);
        assert.is(k.kernelRead32(big, 0), 1);
        assert.is(k.kernelRead32(big, (3 << 20) - 4), 2);
        assert.is(k.kernelRead32(big, 1 << 20), 0);
      }
      assert.is(k.stats.faultsVmalloc, before, 'vmalloc_sync_all synced every pgd');
      k.vfree(area);
      k.vfree(big);
      // Kernel access to a freed area is an oops.
      assert.throws(() => k.kernelReadVa(area.addr), /unable to handle kernel paging request/);
      for (const p of ['a', 'b', 'c']) k.exit(p);
      assertClean(k, 'end');
      k.shrinkCaches();
      const end = k.snapshot();
      // Kernel pte pages made for vmalloc stay (Linux never frees them).
      assert.equal({ ...end, framesUsed: 0, framesFree: 0 }, { ...base, framesUsed: 0, framesFree: 0 });
      assert.ok(end.framesUsed - base.framesUsed <= 3, `kernel pte pages only (${end.framesUsed - base.framesUsed})`);
    });
  }
}

s.run();
