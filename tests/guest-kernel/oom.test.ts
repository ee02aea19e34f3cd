/**
 * Fault injection: the k-th allocation (page or slab) fails, for every k
 * inside pgd_alloc (process creation: mm_alloc) and inside fork as a whole
 * (dup_mm: mm_struct, pgd, pmds, vmas, pte pages), then inside exec and a
 * demand fault. Each run must report -ENOMEM (or kill the process for a
 * fault) and leave nothing behind: frames, slab objects, pgd_list entries,
 * live mms, and under Xen the hypervisor's type counts and pins.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Kernel } from '../../guest-kernel/kernel.js';
import { BACKENDS, NATIVE, XEN, assertClean, boot, type BackendFactory, type GuestConfig } from './helpers.js';

const s = suite('guest-kernel OOM injection');
const HEAP = 0x08048000;

interface Sweep {
  /** Runs that hit an injected failure. */
  failed: number;
  sites: Set<string>;
}

/**
 * For k = 1, 2, ...: boot, `setup`, arm failAt(k), `op`; stop at the first k
 * whose op completes without hitting the injection. Checks the leak-freedom
 * of every failed run with `cleanup` undoing what a successful op made.
 */
function sweep(
  b: BackendFactory,
  g: GuestConfig,
  setup: (k: Kernel) => void,
  op: (k: Kernel) => number | string,
  failedOutcome: number | string,
): Sweep {
  const res: Sweep = { failed: 0, sites: new Set() };
  for (let n = 1; n < 200; n++) {
    const k = boot(b, g);
    setup(k);
    k.shrinkCaches();
    const before = k.snapshot();
    const pinned = k.ops.stats.pinned;
    k.failAt(n);
    const r = op(k);
    const inj = k.injected;
    k.failAt(null);
    if (inj === null) {
      assert.ok(r !== failedOutcome, `k=${n}: no injection yet the op failed (${String(r)})`);
      assertClean(k, `k=${n} (no failure)`);
      return res;
    }
    res.failed++;
    res.sites.add(inj.site);
    assert.is(r, failedOutcome, `k=${n} failed at ${inj.site}: outcome`);
    assertClean(k, `k=${n} failed at ${inj.site}`);
    k.shrinkCaches();
    const after = k.snapshot();
    assert.equal(after, before, `k=${n} failed at ${inj.site}: nothing leaked`);
    assert.is(k.ops.stats.pinned, pinned, `k=${n}: no pin left behind`);
  }
  throw new Error('sweep did not terminate');
}

// Native and Xen (the shuffled-p2m set-up adds nothing to allocation unwinds).
for (const b of [NATIVE, XEN]) {
  for (const g of [
    { pae: true, split: '3G', memBytes: 24 << 20 },
    { pae: true, split: '1G', memBytes: 24 << 20 },
    { pae: false, split: '3G', memBytes: 24 << 20 },
  ] as GuestConfig[]) {
    const label = `${b.label} ${g.pae ? 'PAE' : '2-level'} ${g.split}`;

    s(`${label}: every allocation of pgd_alloc (process creation) fails cleanly`, () => {
      const r = sweep(
        b,
        g,
        (k) => {
          k.createProcess('other'); // something on pgd_list already
        },
        (k) => k.createProcess('p'),
        -12,
      );
      assert.ok(r.failed >= (g.pae ? 3 : 2), `${r.failed} injection points`);
      const sites = [...r.sites].join(', ');
      assert.ok(/pgd_alloc/.test(sites), sites);
      if (g.pae) assert.ok(/pmd_cache_alloc/.test(sites), sites);
    });

    s(`${label}: every allocation of fork fails cleanly`, () => {
      const r = sweep(
        b,
        g,
        (k) => {
          k.createProcess('init');
          k.mmap('init', HEAP, 8 << 20, 'rw');
          k.touch('init', HEAP, 16 << 10, 'write');
          k.touch('init', HEAP + (6 << 20), 8 << 10, 'write'); // another pte page
          k.mmap('init', 0x40000000, 4096, 'r');
          k.touch('init', 0x40000000, 4096, 'read');
        },
        (k) => k.fork('init', 'child'),
        -12,
      );
      assert.ok(r.failed >= 5, `${r.failed} injection points`);
      const sites = [...r.sites].join(', ');
      assert.ok(/pte_alloc_one/.test(sites), sites);
      assert.ok(/dup_mmap/.test(sites), sites);
      assert.ok(/pgd_alloc/.test(sites), sites);
    });

    s(`${label}: exec and a demand fault under OOM`, () => {
      const e = sweep(
        b,
        g,
        (k) => {
          k.createProcess('init');
          k.mmap('init', HEAP, 64 << 10, 'rw');
          k.touch('init', HEAP, 64 << 10, 'write');
        },
        (k) => k.exec('init'),
        -12,
      );
      assert.ok(e.failed >= 2);
      // A fault that cannot allocate kills the process (the OOM path).
      const k = boot(b, g);
      k.createProcess('init');
      k.mmap('init', HEAP, 64 << 10, 'rw');
      k.createProcess('bystander');
      k.failAt(1);
      assert.is(k.userWrite32('init', HEAP, 1), 'oom');
      assert.is(k.hasProcess('init'), false);
      assert.is(k.stats.oomKills, 1);
      assert.is(k.userWrite32('bystander', 0, 1), 'segv', 'the rest of the system goes on');
      assertClean(k, 'after the OOM kill');
    });
  }
}

// The seed's and the pre-patch out_oom unwinds too (natively: under Xen PAE the
// seed's pgd_dtor is refused when the pgd's slab page is released, bug 2).
for (const variant of ['seed', 'prepatch'] as const) {
  for (const pae of [true, false]) {
    s(`native ${pae ? 'PAE' : '2-level'} ${variant}: pgd_alloc's out_oom leaks nothing`, () => {
      const r = sweep(
        BACKENDS[0]!,
        { pae, split: '1G', variant, memBytes: 24 << 20 },
        (k) => {
          k.createProcess('other');
        },
        (k) => k.createProcess('p'),
        -12,
      );
      assert.ok(r.failed >= 2, `${r.failed} injection points`);
    });
  }
}

s.run();
