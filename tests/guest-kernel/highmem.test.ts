/** A guest larger than lowmem: user and vmalloc pages in highmem, page tables in lowmem. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BACKENDS, PAGING, assertClean, boot, runs } from './helpers.js';

const s = suite('guest-kernel highmem');

for (const b of BACKENDS) {
  for (const p of PAGING) {
    if (!runs(b, p.pae)) continue;
    s(`${b.label} ${p.label} 1 GiB guest, 3G split: highmem user and vmalloc pages`, () => {
      const k = boot(b, { pae: p.pae, split: '3G', memBytes: 1 << 30 });
      const L = k.L;
      assert.ok(L.max_low_pfn < L.max_pfn, 'the guest has highmem');
      k.createProcess('init');
      k.mmap('init', 0x08048000, 1 << 20, 'rw');
      for (let off = 0; off < 1 << 20; off += 4096) assert.is(k.userWrite32('init', 0x08048000 + off, off), 'ok');
      // The user pages are highmem frames: no direct-map address reaches them.
      const r = k.ops.probe(0x08048000, 0, true);
      assert.ok(r.ok && r.gpa >= L.max_low_pfn * 4096, 'user page from ZONE_HIGHMEM');
      const a = k.vmalloc(64 << 10)!;
      k.kernelWrite32(a, 0, 0x600d);
      assert.is(k.fork('init', 'c'), 0);
      assert.is(k.userRead32('c', 0x08048000 + 0x5000), 0x5000);
      assert.is(k.kernelRead32(a, 0), 0x600d);
      assertClean(k, 'highmem');
    });
  }
}

s.run();
