import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Kernel } from '../../guest-kernel/kernel.js';
import { BACKENDS, CONFIGS, assertClean, boot, runs } from './helpers.js';

const s = suite('guest-kernel processes');

const HEAP = 0x08048000;

/** A process workload; returns every guest-visible outcome in order. */
function workload(k: Kernel): unknown[] {
  const out: unknown[] = [];
  const o = (v: unknown): void => {
    out.push(v);
  };
  o(k.createProcess('init'));
  o(k.mmap('init', HEAP, 64 << 10, 'rw'));
  o(k.userRead32('init', HEAP)); // ZERO_PAGE
  o(k.userWrite32('init', HEAP, 0xdeadbeef));
  o(k.userRead32('init', HEAP));
  o(k.touch('init', HEAP, 64 << 10, 'write'));
  o(k.userWrite32('init', HEAP + 0x3000, 0x3333));
  o(k.fork('init', 'child'));
  o(k.userRead32('child', HEAP));
  o(k.userWrite32('child', HEAP, 0x1111)); // copy-on-write break in the child
  o(k.userRead32('child', HEAP));
  o(k.userRead32('init', HEAP));
  o(k.userWrite32('init', HEAP + 0x3000, 0x4444)); // and in the parent
  o(k.userRead32('child', HEAP + 0x3000));
  o(k.userRead32('init', HEAP + 0x3000));
  o(k.fork('child', 'grandchild'));
  o(k.userRead32('grandchild', HEAP));
  o(k.userRead32('init', 0x10000000)); // nothing mapped: SIGSEGV
  o(k.mmap('init', 0x20000000, 4096, 'r'));
  o(k.userWrite32('init', 0x20000000, 1)); // read-only: SIGSEGV
  o(k.userRead32('init', 0x20000000));
  o(k.userRead32('init', k.L.PAGE_OFFSET)); // user access to the kernel: SIGSEGV
  o(k.userWrite32('init', k.L.PAGE_OFFSET + 0x100000, 1));
  o(k.munmap('init', HEAP, 4096));
  o(k.userRead32('init', HEAP));
  o(k.userRead32('init', HEAP + 4096));
  o(k.mmap('init', HEAP + 0x1000, 0x2000, 'rw')); // over an existing mapping
  o(k.userRead32('init', HEAP + 0x1000));
  o(k.exec('child'));
  o(k.userRead32('child', HEAP)); // fresh mm: nothing mapped
  o(k.userRead32('grandchild', HEAP + 0x3000));
  o(k.mmap('init', k.L.TASK_SIZE - 4096, 8192, 'rw')); // beyond user space
  o(k.munmap('init', HEAP + 1, 4096)); // unaligned
  k.exit('grandchild');
  k.exit('child');
  k.exit('init');
  return out;
}

const results = new Map<string, unknown[]>();

for (const c of CONFIGS) {
  for (const b of BACKENDS) {
    if (!runs(b, c.pae)) continue;
    s(`${b.label} ${c.label}: fork, COW, exec, exit, SIGSEGV; nothing leaks`, () => {
      const k = boot(b, { ...c, checkEachOp: true });
      k.shrinkCaches();
      const base = k.snapshot();
      const out = workload(k);
      assert.equal(out.slice(0, 4), [0, 0, 0, 'ok']);
      assert.is(out[4], 0xdeadbeef);
      assert.is(out[8], 0xdeadbeef, 'child sees the parent data');
      assert.is(out[10], 0x1111);
      assert.is(out[11], 0xdeadbeef, 'parent unaffected by the child write');
      assert.is(out[13], 0x3333, 'child unaffected by the parent write');
      assert.is(out[14], 0x4444);
      assert.is(out[16], 0x1111, 'grandchild inherits the child data');
      assert.is(out[17], 'segv');
      assert.is(out[19], 'segv');
      assert.is(out[20], 0);
      assert.is(out[21], 'segv');
      assert.is(out[22], 'segv');
      assert.is(out[24], 'segv', 'munmapped page');
      assert.is(out[25], 0, 'the next page is still mapped (zero-filled)');
      assert.is(out[27], 0, 'new mapping is fresh');
      assert.is(out[29], 'segv', 'exec gives an empty mm');
      assert.is(out[30], 0x3333, 'grandchild kept its copy');
      assert.is(out[31], -22);
      assert.is(out[32], -22);
      assert.ok(k.stats.faultsCow >= 3);
      assert.ok(k.stats.faultsSegv >= 6);
      assert.is(k.pgdsAlive, 0);
      assert.is(k.pgdListLength, 0);
      assertClean(k, 'after the workload');
      k.shrinkCaches();
      assert.equal(k.snapshot(), base, 'frames, slab objects and pgd_list back to the boot state');
      const key = c.label;
      const prev = results.get(key);
      if (prev === undefined) results.set(key, out);
      else assert.equal(out, prev, 'same guest-visible results on every backend');
    });
  }
}

s.run();
