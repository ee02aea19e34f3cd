/**
 * Misaligned and page-straddling 32-bit accesses (guest-kernel/kernel/
 * misaligned.ts), user and kernel, on every backend and paging mode: x86
 * allows them; a straddling access translates both pages and can fault on
 * either, and a store that faults on its second page stores nothing.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BACKENDS, PAGING, assertClean, boot } from './helpers.js';

const s = suite('guest-kernel misaligned accesses');
const A = 0x01000000;

for (const p of PAGING) {
  const seen: unknown[][] = [];
  for (const b of BACKENDS) {
    s(`${b.label} ${p.label}: user and kernel accesses at any byte address`, () => {
      const k = boot(b, { pae: p.pae, split: '3G', checkEachOp: true });
      const out: unknown[] = [];
      assert.is(k.createProcess('a'), 0);
      assert.is(k.mmap('a', A, 8192, 'rw'), 0);
      // Inside one page, little-endian bytes merged into the aligned words.
      assert.is(k.userWrite32('a', A + 2, 0x11223344), 'ok');
      out.push(k.userRead32('a', A + 2), k.userRead32('a', A), k.userRead32('a', A + 4));
      assert.equal(out.slice(0, 3), [0x11223344, 0x33440000, 0x1122]);
      // Across the page boundary: both pages demand-faulted by one access.
      const faults = k.stats.faultsUser;
      assert.is(k.userWrite32('a', A + 0xffe, 0xaabbccdd), 'ok');
      assert.is(k.stats.faultsUser, faults + 1, 'the second page was demand-faulted by the straddling store');
      out.push(k.userRead32('a', A + 0xffe), k.userRead32('a', A + 0xffc), k.userRead32('a', A + 0x1000));
      assert.equal(out.slice(3, 6), [0xaabbccdd, 0xccdd0000, 0xaabb]);
      // Second page unmapped (the mapping ends at A + 0x2000): SIGSEGV, and the first page keeps its bytes.
      assert.is(k.userWrite32('a', A + 0x1ffc, 0x77777777), 'ok');
      out.push(k.userWrite32('a', A + 0x1ffe, 0x99999999));
      assert.is(out[6], 'segv', 'a store straddling into an unmapped page is a SIGSEGV');
      out.push(k.userRead32('a', A + 0x1ffc));
      assert.is(out[7], 0x77777777, 'nothing was stored in the mapped page');
      out.push(k.userRead32('a', A + 0x1fff));
      assert.is(out[8], 'segv', 'a load straddling into an unmapped page is a SIGSEGV');
      // Kernel accesses into a vmalloc area, misaligned and straddling its pages.
      const v = k.vmalloc(8192)!;
      k.kernelWrite32(v, 2, 5);
      k.kernelWrite32(v, 4094, 0x01020304);
      out.push(k.kernelRead32(v, 2), k.kernelRead32(v, 4094), k.kernelRead32(v, 4092), k.kernelRead32(v, 4096));
      assert.equal(out.slice(-4), [5, 0x01020304, 0x03040000, 0x0102]);
      assert.throws(() => k.kernelRead32(v, 8190), /not inside the vmalloc area/);
      assertClean(k, 'after misaligned accesses');
      seen.push(out);
      if (seen.length === 2) assert.equal(seen[1], seen[0], 'the same on every backend');
    });
  }
}

s.run();
