/**
 * What the shadow-paging backends show of the seed patch's bugs and of the
 * announcements the hooks exist for:
 *  - VMI keeps the kernel pmd shared (activate_vmi leaves shared_kernel_pmd
 *    at 1), so the seed's pgd_dtor is never installed and bug 2 cannot happen
 *    on it (the monitor's record of such a release is tested in
 *    tests/hypervisor/vmi.test.ts); asked to run unshared, VMI cannot: the
 *    per-pgd kernel pmd copies are plain stores it is never told about;
 *  - a 2-level pgd whose alloc_pd_clone never reached the monitor has its
 *    kernel part unshadowed: the kernel faults on its own direct map in that
 *    address space, and the fault persists (a kernel BUG);
 *  - lguest has no alloc/release hooks at all: both kernels run the same.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelBug, type Variant } from '../../guest-kernel/kernel.js';
import { createLguestBackend } from '../../hypervisor/lguest/index.js';
import { createVmiBackend } from '../../hypervisor/vmi/index.js';
import { assertClean, boot, bootWith, machineConfig, override, BACKENDS } from './helpers.js';

const s = suite('guest kernel on the shadow-paging backends');
const VMI = BACKENDS.find((b) => b.name === 'vmi')!;
const LGUEST = BACKENDS.find((b) => b.name === 'lguest')!;

for (const variant of ['seed', 'patched'] as Variant[]) {
  s(`bug 2 (${variant}) VMI PAE: the kernel pmd is shared, pgd_dtor never runs, releases balance`, () => {
    const k = boot(VMI, { pae: true, split: '3G', variant });
    for (let i = 0; i < 3; i++) {
      k.createProcess(`p${i}`);
      k.exit(`p${i}`);
    }
    k.shrinkCaches();
    assertClean(k, variant);
  });

  s(`${variant} VMI PAE asked for an unshared kernel pmd: the kernel pmd copies were never announced, the kernel faults in the new mm`, () => {
    // pgd_alloc copies swapper's kernel pmd into each new pgd's own pmd with
    // plain stores; the monitor only learns of the pmd page (AllocatePage,
    // VMI_PAGE_ZEROED), never of the copied entries, so it shadows none of them.
    const vmi = createVmiBackend(machineConfig({ pae: true, split: '3G' }));
    const k = bootWith(override(vmi, { sharedKernelPmd: false }), { pae: true, split: '3G', variant });
    let err: unknown;
    try {
      k.createProcess('p0');
      k.switchTo('p0');
      k.kernelReadVa(k.L.PAGE_OFFSET + (5 << 20));
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof KernelBug, `expected a kernel BUG, got ${String(err)}`);
    assert.ok((vmi.stats.traps['unshadowed_entry'] ?? 0) > 0);
  });
}

s('VMI 2-level: a pgd whose alloc_pd_clone is missing leaves the kernel unshadowed there (a kernel BUG)', () => {
  const vmi = createVmiBackend(machineConfig({ pae: false, split: '3G' }));
  const k = bootWith(override(vmi, { alloc_pd_clone: () => {} }), { pae: false, split: '3G' });
  let err: unknown;
  try {
    k.createProcess('a');
    k.switchTo('a');
    k.kernelReadVa(k.L.PAGE_OFFSET + (5 << 20));
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof KernelBug, `expected a kernel BUG, got ${String(err)}`);
  assert.ok((vmi.stats.traps['unshadowed_entry'] ?? 0) > 0);
  // The same with the announcement: fine.
  const ok = boot(VMI, { pae: false, split: '3G' });
  ok.createProcess('a');
  ok.switchTo('a');
  ok.kernelReadVa(ok.L.PAGE_OFFSET + (5 << 20));
  assertClean(ok, 'with alloc_pd_clone');
});

s('lguest: seed and patched kernels run the same (no page-table hooks)', () => {
  const out: number[][] = [];
  for (const variant of ['seed', 'patched'] as Variant[]) {
    const b = createLguestBackend(machineConfig({ pae: false, split: '3G' }));
    const k = bootWith(b, { pae: false, split: '3G', variant });
    for (let i = 0; i < 3; i++) {
      k.createProcess(`p${i}`);
      k.exit(`p${i}`);
    }
    k.shrinkCaches();
    assert.equal(b.checkInvariants(), []);
    out.push([k.framesUsed, k.pgdsAlive]);
  }
  assert.equal(out[0], out[1]);
  void LGUEST;
});

s.run();
