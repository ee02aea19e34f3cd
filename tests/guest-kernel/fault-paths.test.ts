/**
 * Counters and calls of two fault paths no test asserted (issue 14, gap 6),
 * on every backend and both paging modes:
 *  - a user access to a vmalloc address is a plain SIGSEGV: it must not go
 *    through vmalloc_fault (2.6.22 do_page_fault takes that path only for a
 *    kernel-mode, not-present fault), so no set_pmd syncs the user's pgd and
 *    faults.vmalloc does not move;
 *  - do_wp_page's reuse path (fork, the child exits, the parent writes a page
 *    only it maps now): the pte is made writable in place, no page is
 *    allocated or copied, and the stale read-only TLB entry is flushed
 *    (flush_tlb_page) exactly once. tools/workloads/cow.pvw's `reuse`
 *    measure is the golden workload for it.
 *
 * Planted bugs these tests were verified against: do_page_fault testing the
 * vmalloc range without PFEC_U (a user access synced the pmd and counted a
 * vmalloc fault); the reuse path without its flush; the reuse test on the
 * page count off by one (a copy instead of a reuse).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ACCESS_READ } from '../../emulator/paging-bits.js';
import type { ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { BACKENDS, PAGING, assertClean, bootWith, machineConfig, override, runs, type GuestConfig } from './helpers.js';

const s = suite('guest-kernel: vmalloc user access and the do_wp_page reuse path');
const HEAP = 0x08048000;

interface Spy {
  ops: ParavirtOps;
  setPmd: number;
  flushes: number[];
}

function spy(ops: ParavirtOps): Spy {
  const sp: Spy = { ops, setPmd: 0, flushes: [] };
  sp.ops = override(ops, {
    set_pmd: (p: number, v: bigint) => {
      sp.setPmd++;
      ops.set_pmd(p, v);
    },
    flush_tlb_single: (va: number) => {
      sp.flushes.push(va);
      ops.flush_tlb_single(va);
    },
  });
  return sp;
}

for (const p of PAGING) {
  for (const b of BACKENDS) {
    if (!runs(b, p.pae)) continue;
    const g: GuestConfig = { pae: p.pae, split: '3G', checkEachOp: true };

    // Guards: do_page_fault sending a user-mode fault on a vmalloc address to vmalloc_fault.
    s(`${b.label} ${p.label}: a user access to a vmalloc address is SIGSEGV without vmalloc_fault (no set_pmd, counter unchanged)`, () => {
      const sp = spy(b.create(machineConfig(g)));
      const k = bootWith(sp.ops, g);
      assert.is(k.createProcess('a'), 0); // its pgd predates the area
      assert.is(k.createProcess('b'), 0);
      const area = k.vmalloc(16 << 10)!;
      k.kernelWrite32(area, 0, 0x5a5a5a5a); // in b's context
      k.switchTo('a');
      const vm = k.stats.faultsVmalloc;
      const segv = k.stats.faultsSegv;
      const pmds = sp.setPmd;
      assert.is(k.userRead32('a', area.addr), 'segv');
      assert.is(k.userWrite32('a', area.addr + 4, 1), 'segv');
      assert.is(k.stats.faultsVmalloc, vm, 'no vmalloc fault counted');
      assert.is(sp.setPmd, pmds, 'no set_pmd: the user pgd was not synced');
      assert.is(k.stats.faultsSegv, segv + 2);
      // The kernel's own access from a's context still works (and may sync).
      assert.is(k.kernelRead32(area, 0), 0x5a5a5a5a);
      // Once synced, a user access is a protection fault: SIGSEGV, still no vmalloc fault.
      const vm2 = k.stats.faultsVmalloc;
      assert.is(k.userRead32('a', area.addr), 'segv');
      assert.is(k.stats.faultsVmalloc, vm2);
      k.vfree(area);
      k.exit('a');
      k.exit('b');
      assertClean(k, 'end');
    });

    // Guards: the do_wp_page reuse path without its flush, or copying instead of reusing.
    s(`${b.label} ${p.label}: fork, the child exits, the parent writes: the page is reused in place, one flush of that page`, () => {
      const sp = spy(b.create(machineConfig(g)));
      const k = bootWith(sp.ops, g);
      assert.is(k.createProcess('parent'), 0);
      assert.is(k.mmap('parent', HEAP, 4 << 12, 'rw'), 0);
      assert.is(k.userWrite32('parent', HEAP + 0x1000, 0x1111), 'ok');
      assert.is(k.userWrite32('parent', HEAP + 0x2000, 0x2222), 'ok');
      assert.is(k.fork('parent', 'child'), 0);
      // The child takes its own copy of page 1; page 2 stays shared.
      assert.is(k.userWrite32('child', HEAP + 0x1000, 0xc1), 'ok');
      k.exit('child');
      k.switchTo('parent');
      // The parent's ptes for both pages are still read-only; page 1 is mapped by it alone.
      assert.is(k.userRead32('parent', HEAP + 0x1000), 0x1111, 'fills the TLB with the read-only entry');
      const cow = k.stats.faultsCow;
      const used = k.framesUsed;
      const frame = k.ops.probe(HEAP + 0x1000, ACCESS_READ, true);
      assert.ok(frame.ok);
      sp.flushes.length = 0;
      assert.is(k.userWrite32('parent', HEAP + 0x1004, 0x1234), 'ok');
      assert.is(k.stats.faultsCow, cow + 1, 'one write-protect fault');
      assert.is(k.framesUsed, used, 'no page allocated: reused');
      const after = k.ops.probe(HEAP + 0x1000, ACCESS_READ, true);
      assert.ok(after.ok && frame.ok && after.gpa === frame.gpa, 'the same frame, not a copy');
      assert.equal(sp.flushes.map((va) => va >>> 12), [(HEAP + 0x1000) >>> 12], 'flush_tlb_page of that page (the faulting address), once');
      assert.is(k.userRead32('parent', HEAP + 0x1000), 0x1111);
      assert.is(k.userRead32('parent', HEAP + 0x1004), 0x1234);
      // A second write: no fault, no flush.
      assert.is(k.userWrite32('parent', HEAP + 0x1008, 1), 'ok');
      assert.is(k.stats.faultsCow, cow + 1);
      assert.is(sp.flushes.length, 1);
      k.exit('parent');
      assertClean(k, 'end');
    });

    // Guards (mm mutation survivors): cow_user_page skipped or replaced by a
    // zeroed page; a write fault on a fresh page going through the zero page.
    s(`${b.label} ${p.label}: a COW break copies the whole page; a first write takes one anonymous fault, no COW`, () => {
      const k = bootWith(b.create(machineConfig(g)), g);
      assert.is(k.createProcess('parent'), 0);
      assert.is(k.mmap('parent', HEAP, 2 << 12, 'rw'), 0);
      const user = k.stats.faultsUser;
      const cow = k.stats.faultsCow;
      for (const off of [0, 0x400, 0xffc]) assert.is(k.userWrite32('parent', HEAP + off, 0xa0000 + off), 'ok');
      assert.is(k.stats.faultsUser, user + 1, 'one fault for the first write of a fresh page');
      assert.is(k.stats.faultsCow, cow, 'no copy-on-write: a zeroed page, not the zero page');
      assert.is(k.fork('parent', 'child'), 0);
      assert.is(k.userWrite32('child', HEAP + 0x400, 0xc4), 'ok'); // the copy
      assert.is(k.stats.faultsCow, cow + 1);
      assert.is(k.userRead32('child', HEAP), 0xa0000, 'the copy has the rest of the parent\'s page');
      assert.is(k.userRead32('child', HEAP + 0xffc), 0xa0ffc);
      assert.is(k.userRead32('child', HEAP + 0x400), 0xc4);
      assert.is(k.userRead32('parent', HEAP + 0x400), 0xa0400);
      k.exit('child');
      k.exit('parent');
      assertClean(k, 'end');
    });

    // Guards (mm mutation survivors): an allocation failure in do_anonymous_page or do_wp_page not reported as out of memory.
    s(`${b.label} ${p.label}: the page allocation of a write fault or of a COW break fails: the access is 'oom'`, () => {
      const k = bootWith(b.create(machineConfig(g)), g);
      assert.is(k.createProcess('parent'), 0);
      assert.is(k.mmap('parent', HEAP, 2 << 12, 'rw'), 0);
      assert.is(k.userWrite32('parent', HEAP, 1), 'ok'); // the pte page exists from here on
      k.failAt(1);
      assert.is(k.userWrite32('parent', HEAP + 0x1000, 2), 'oom', 'do_anonymous_page');
      assert.equal(k.injected?.site, 'do_anonymous_page');
      k.failAt(null);
      assert.not.ok(k.hasProcess('parent'), 'the OOM path killed it');
      assert.is(k.createProcess('parent'), 0);
      assert.is(k.mmap('parent', HEAP, 2 << 12, 'rw'), 0);
      assert.is(k.userWrite32('parent', HEAP, 1), 'ok');
      assert.is(k.fork('parent', 'child'), 0);
      k.failAt(1);
      assert.is(k.userWrite32('child', HEAP, 3), 'oom', 'do_wp_page');
      assert.equal(k.injected?.site, 'do_wp_page');
      k.failAt(null);
      assert.is(k.userRead32('parent', HEAP), 1, 'the parent\'s page untouched');
    });
  }
}

s.run();
