import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BACKENDS, CONFIGS, assertClean, boot, runs } from './helpers.js';

const s = suite('guest-kernel boot');

for (const b of BACKENDS) {
  for (const c of CONFIGS) {
    if (!runs(b, c.pae)) continue;
    s(`${b.label} ${c.label}: boots, CR3 = swapper_pg_dir, invariants clean`, () => {
      const k = boot(b, c);
      assert.is(k.ops.read_cr3(), k.k.swapper_pg_dir);
      assert.is(k.pgdsAlive, 0);
      assert.is(k.framesUsed + k.framesFree, k.framesTotal);
      assertClean(k, 'after boot');
      // The direct map reaches lowmem: a store through memory is seen at PAGE_OFFSET + pa.
      const pa = 5 << 20;
      k.ops.mem.write32(pa, 0x12345678);
      assert.is(k.kernelReadVa(k.L.PAGE_OFFSET + pa), 0x12345678);
      k.kernelWriteVa(k.L.PAGE_OFFSET + pa + 4, 0xcafe);
      assert.is(k.ops.mem.read32(pa + 4), 0xcafe);
      // Layout: vmalloc between lowmem and the fixmap, below the hypervisor hole.
      const L = k.L;
      assert.ok(L.VMALLOC_START >= L.high_memory + (8 << 20));
      assert.ok(L.VMALLOC_END < L.PKMAP_BASE && L.PKMAP_BASE < L.FIXADDR_START && L.FIXADDR_TOP < L.HYPERVISOR_START + 1);
      assert.is(L.USER_PTRS_PER_PGD, c.pae ? { '3G': 3, '2G': 2, '1G': 1 }[c.split] : { '3G': 768, '2G': 512, '1G': 256 }[c.split]);
    });
  }
}

s('native maps lowmem with large pages, Xen with 4 KiB pages', () => {
  const n = boot(BACKENDS[0]!, { pae: true, split: '3G' });
  const x = boot(BACKENDS[1]!, { pae: true, split: '3G' });
  const probe = (k: typeof n, va: number): number => {
    const r = k.ops.probe(va, 0, false);
    return r.ok ? r.gpa : -1;
  };
  assert.is(probe(n, 0xc0400000), 0x400000);
  assert.is(probe(x, 0xc0400000), 0x400000);
  // A user access to the direct map faults (no US bit).
  assert.is(n.ops.probe(0xc0400000, 0, true).ok, false);
  assert.is(x.ops.probe(0xc0400000, 0, true).ok, false);
});

s.run();
