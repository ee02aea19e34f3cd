/**
 * The three pgtable.c variants. `prepatch` runs natively and is refused by
 * Xen; each known bug of the `seed` is shown by a test that fails on `seed`
 * the way the bug predicts and passes on `patched`. Where a bug needs an
 * unshared kernel pmd, the native runs use native hardware told to leave the
 * kernel pmd unshared (sharedKernelPmd: false, which Linux supports natively
 * too) alongside the Xen backend.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { HypervisorRefusal } from '../../hypervisor/types.js';
import { KernelBug, type Kernel, type Variant } from '../../guest-kernel/kernel.js';
import {
  BACKENDS,
  CONFIGS,
  NATIVE,
  SPLITS,
  XEN,
  assertClean,
  boot,
  bootWith,
  lazyBatching,
  machineConfig,
  override,
  pdSpy,
  type BackendFactory,
  type GuestConfig,
} from './helpers.js';

const s = suite('guest-kernel variants');
const HEAP = 0x08048000;

function smallWorkload(k: Kernel): unknown[] {
  const out: unknown[] = [];
  out.push(k.createProcess('init'));
  out.push(k.mmap('init', HEAP, 16 << 10, 'rw'));
  out.push(k.userWrite32('init', HEAP, 42));
  out.push(k.fork('init', 'child'));
  out.push(k.userWrite32('child', HEAP, 43));
  out.push(k.userRead32('init', HEAP), k.userRead32('child', HEAP));
  const a = k.vmalloc(8192)!;
  k.kernelWrite32(a, 0, 7);
  k.switchTo('init');
  out.push(k.kernelRead32(a, 0));
  out.push(k.exec('child'));
  k.exit('child');
  k.exit('init');
  k.vfree(a);
  return out;
}

// ---- prepatch ----

for (const c of CONFIGS) {
  s(`prepatch runs natively (${c.label})`, () => {
    const k = boot(NATIVE, { ...c, variant: 'prepatch', checkEachOp: true });
    assert.equal(smallWorkload(k), [0, 0, 'ok', 0, 'ok', 42, 43, 7, 0]);
    assertClean(k, 'prepatch native');
  });
}

for (const split of SPLITS) {
  s(`prepatch is refused by Xen under PAE (${split}): Xen's reason`, () => {
    const k = boot(XEN, { pae: true, split, variant: 'prepatch' });
    let err: unknown;
    try {
      k.createProcess('init');
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof HypervisorRefusal, `expected a hypervisor refusal, got ${String(err)}`);
    const reason = (err as HypervisorRefusal).reason;
    assert.match(reason, /PAE L3 3rd slot is shared|pgd not at offset 0 of its own frame/);
    assert.ok((k.ops.stats.refusals[Object.keys(k.ops.stats.refusals)[0]!] ?? 0) >= 1, 'counted as a refusal');
  });
}

s('prepatch under Xen 2-level: the pgd is a page and 2-level kernel entries may be shared, so it runs', () => {
  const k = boot(XEN, { pae: false, split: '3G', variant: 'prepatch' });
  assert.equal(smallWorkload(k), [0, 0, 'ok', 0, 'ok', 42, 43, 7, 0]);
});

// ---- seed bug 2: unbalanced release_pd ----

for (const variant of ['seed', 'patched'] as Variant[]) {
  s(`bug 2 (${variant}) Xen PAE: release_pd is a nop on Xen (2.6.23); the guest's own debug check catches the unbalanced release [item 1]`, () => {
    const k = boot(XEN, { pae: true, split: '3G', variant });
    k.createProcess('a');
    k.exit('a');
    // The pgd's slab page is released: pgd_dtor runs.
    let err: unknown;
    try {
      k.shrinkCaches();
    } catch (e) {
      err = e;
    }
    if (variant === 'seed') {
      assert.is(err, undefined, 'Xen is not told: no refusal');
      assert.equal(k.ops.stats.refusals ?? {}, {});
      const v = k.checkInvariants();
      assert.ok(v.some((x) => /unbalanced paravirt_release_pd of pfn 0x[0-9a-f]+: never announced/.test(x)), v.join('; '));
    } else {
      assert.is(err, undefined);
      assertClean(k, 'patched');
    }
  });

  s(`bug 2 (${variant}) native PAE, unshared kernel pmd: the release is unbalanced`, () => {
    const spy = pdSpy(NATIVE.create(machineConfig({ pae: true, split: '3G' })), { sharedKernelPmd: false });
    const k = bootWith(spy.ops, { pae: true, split: '3G', variant });
    for (let i = 0; i < 3; i++) {
      k.createProcess(`p${i}`);
      k.exit(`p${i}`);
    }
    k.shrinkCaches();
    if (variant === 'seed') assert.ok(spy.unbalanced.some((u) => u.what === 'release_pd'));
    else assert.equal(spy.unbalanced, []);
  });
}

// ---- seed bug 3: PGDIR_SIZE stride in _vmalloc_sync_all ----

function unsharedBackends(): { name: string; make: (g: GuestConfig) => ParavirtOps }[] {
  return [
    // Without global pages (as with "nopge"), so a TLB entry filled in one
    // context does not hide the missing pmd entry in another.
    {
      name: 'native (unshared kernel pmd)',
      make: (g) => override(NATIVE.create(machineConfig(g)), { sharedKernelPmd: false, globalPagesAllowed: false }),
    },
    { name: 'xen', make: (g) => XEN.create(machineConfig(g)) },
  ];
}

for (const b of unsharedBackends()) {
  for (const split of SPLITS) {
    for (const variant of ['seed', 'patched'] as Variant[]) {
      s(`bug 3 (${variant}) ${b.name} PAE ${split}: vmalloc_sync_all leaves the area unsynced -> vmalloc faults`, () => {
        const g: GuestConfig = { pae: true, split, variant };
        const k = bootWith(b.make(g), g);
        k.createProcess('a');
        k.createProcess('b');
        k.switchToIdle();
        const area = k.vmalloc(3 << 20)!;
        k.kernelWrite32(area, 0, 0x77); // in init_mm: no fault
        k.vmallocSyncAll();
        const before = k.stats.faultsVmalloc;
        for (const p of ['a', 'b']) {
          k.switchTo(p);
          assert.is(k.kernelRead32(area, 0), 0x77);
          assert.is(k.kernelRead32(area, (2 << 20) + 4096), 0);
        }
        const faults = k.stats.faultsVmalloc - before;
        if (variant === 'seed') assert.ok(faults >= 2, `seed: ${faults} vmalloc faults after the sync`);
        else assert.is(faults, 0, 'patched: every pmd of the area synced');
        assertClean(k, variant);
      });
    }
  }
}

// ---- seed bug 1: pgd on pgd_list before its kernel pmds are installed ----

for (const b of unsharedBackends()) {
  for (const variant of ['seed', 'patched'] as Variant[]) {
    s(`bug 1 (${variant}) ${b.name} PAE: vmalloc_sync_all interrupting pgd_alloc after pgd_ctor`, () => {
      const g: GuestConfig = { pae: true, split: '3G', variant };
      const k = bootWith(b.make(g), g);
      k.createProcess('a');
      const area = k.vmalloc(4096)!;
      k.kernelWrite32(area, 0, 5);
      k.setHook('pgd_alloc:after-pgd_ctor', () => k.vmallocSyncAll());
      let err: unknown;
      try {
        k.createProcess('b');
      } catch (e) {
        err = e;
      }
      assert.is(k.k.hookLog.length, 1, 'the interrupt ran');
      const v = err === undefined ? k.checkInvariants() : [String(err)];
      if (variant === 'seed') {
        assert.ok(v.length > 0, 'seed: the sync wrote through the empty kernel slot');
        if (err === undefined) assert.ok(v.some((x) => /low page 0 was written/.test(x)), v.join('\n'));
      } else {
        assert.equal(v, [], 'patched: the interrupt waited for pgd_lock');
        assert.match(k.k.hookLog[0]!, /pending: interrupts off/);
        k.switchTo('b');
        assert.is(k.kernelRead32(area, 0), 5);
      }
    });
  }

  for (const variant of ['seed', 'patched'] as Variant[]) {
    if (b.name === 'xen') continue; // no large pages under Xen: cpa never walks pgd_list there
    s(`bug 1 (${variant}) ${b.name} PAE: change_page_attr interrupting pgd_alloc before the kernel pmd is installed`, () => {
      const g: GuestConfig = { pae: true, split: '3G', variant };
      const k = bootWith(b.make(g), g);
      const PHYS = (16 << 20) + 0x3000;
      const va = k.L.PAGE_OFFSET + PHYS;
      k.createProcess('a');
      k.setHook('pgd_alloc:before-set_pgd', () => {
        assert.is(k.changePageAttr(PHYS, 1, 'ro'), 0);
      });
      assert.is(k.createProcess('b'), 0);
      assert.is(k.k.hookLog.length, 1);
      k.switchTo('b');
      if (variant === 'seed') {
        // b's kernel pmd was copied before the split and installed after it:
        // the page is still writable through b's pgd.
        k.kernelWriteVa(va, 1);
        const v = k.checkInvariants();
        assert.ok(v.some((x) => /kernel entry for 0xc1000000 is/.test(x)), v.join('\n'));
      } else {
        assert.throws(() => k.kernelWriteVa(va, 1), (e: unknown) => e instanceof KernelBug);
        assertClean(k, 'patched');
      }
    });
  }
}

// ---- seed bug 4: vmalloc_sync_one's set_pmd not flushed in lazy MMU mode ----

const lazyBackends: { name: string; make: (g: GuestConfig) => ParavirtOps; pae: boolean[] }[] = [
  {
    name: 'native (batching lazy mode, unshared)',
    make: (g) => lazyBatching(NATIVE.create(machineConfig(g)), { sharedKernelPmd: false, globalPagesAllowed: false }),
    pae: [true, false],
  },
  { name: 'xen', make: (g) => XEN.create(machineConfig(g)), pae: [true, false] },
];

for (const b of lazyBackends) {
  for (const pae of b.pae) {
    for (const variant of ['seed', 'patched'] as Variant[]) {
      s(`bug 4 (${variant}) ${b.name} ${pae ? 'PAE' : '2-level'}: a vmalloc fault in lazy MMU mode`, () => {
        const g: GuestConfig = { pae, split: '3G', variant };
        const k = bootWith(b.make(g), g);
        k.createProcess('a');
        k.switchToIdle();
        const area = k.vmalloc(4096)!;
        k.kernelWrite32(area, 0, 0x99);
        k.switchTo('a');
        let err: unknown;
        let v: number | undefined;
        try {
          v = k.lazyMmu(() => k.kernelRead32(area, 0));
        } catch (e) {
          err = e;
        }
        if (variant === 'seed') {
          assert.ok(err instanceof KernelBug, `seed: expected an oops, got ${String(err)} / ${v}`);
          assert.match((err as Error).message, /repeats/);
        } else {
          assert.is(err, undefined);
          assert.is(v, 0x99);
          assertClean(k, 'patched');
        }
      });
    }
  }
}

// ---- the patched kernel: identical on both backends for the small workload ----

for (const c of CONFIGS) {
  s(`patched and seed give the same results on both backends in normal use (${c.label})`, () => {
    const outs = BACKENDS.flatMap((b: BackendFactory) =>
      (['patched', 'seed'] as Variant[]).map((variant) => smallWorkload(boot(b, { ...c, variant, checkEachOp: true }))),
    );
    for (const o of outs) assert.equal(o, outs[0]);
  });
}

s.run();
