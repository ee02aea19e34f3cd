/**
 * The access matrix (issue 6): a user process cannot reach kernel memory or
 * another process's memory. Over user/kernel addresses × read/write/fetch ×
 * own/other process, on both backends (and Xen with a shuffled p2m), PAE and
 * 2-level, 3G split and a lower one (PAGE_OFFSET 0x40000000 / 0x80000000):
 *  - its own user pages: as their protection says (rw, r, rx, rwx; fetch of a
 *    non-executable page faults where NX exists, i.e. under PAE);
 *  - kernel addresses (direct map, kernel text, its own page tables through
 *    the direct map, a vmalloc area, the top of memory, the hypervisor hole):
 *    a #PF with the user bit, SIGSEGV through the kernel, nothing written;
 *  - another process's private page: not mapped at all in this one; at the
 *    same virtual address each process reaches its own frame; a write by one
 *    is never seen by the other (copy-on-write too).
 * Fetches go through ParavirtOps.access with ACCESS_FETCH as the user process
 * (the workload language has no fetch); reads and writes also through the
 * kernel's user-access path (do_page_fault, SIGSEGV).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE, PFEC_ID, PFEC_P, PFEC_U, PFEC_W, type AccessKind } from '../../emulator/paging-bits.js';
import type { Kernel, Split } from '../../guest-kernel/kernel.js';
import { PAGE_OFFSET_BY_SPLIT } from '../../guest-kernel/layout.js';
import { BACKENDS, boot, backendInvariants } from '../guest-kernel/helpers.js';

const s = suite('access matrix');

const KINDS: [AccessKind, string][] = [
  [ACCESS_READ, 'read'],
  [ACCESS_WRITE, 'write'],
  [ACCESS_FETCH, 'fetch'],
];

const RW = 0x08048000;
const RO = 0x08049000;
const RX = 0x0804a000;
const RWX = 0x0804b000;
const B_ONLY = 0x10000000;

interface World {
  k: Kernel;
  pae: boolean;
  pageOffset: number;
}

function setUp(backend: (typeof BACKENDS)[number], pae: boolean, split: Split): World {
  const k = boot(backend, { pae, split, memBytes: 16 << 20 });
  k.createProcess('A');
  k.mmap('A', RW, 4096, 'rw');
  k.mmap('A', RO, 4096, 'r');
  k.mmap('A', RX, 4096, 'rx');
  k.mmap('A', RWX, 4096, 'rwx');
  assert.is(k.userWrite32('A', RW, 0xaaaa0001), 'ok');
  assert.is(k.userWrite32('A', RWX, 0xaaaa0004), 'ok');
  for (const va of [RO, RX]) assert.is(k.touch('A', va, 4096, 'read'), 'ok');
  k.createProcess('B');
  k.mmap('B', RW, 4096, 'rw');
  k.mmap('B', B_ONLY, 4096, 'rw');
  assert.is(k.userWrite32('B', RW, 0xbbbb0001), 'ok');
  assert.is(k.userWrite32('B', B_ONLY, 0xbbbb0002), 'ok');
  return { k, pae, pageOffset: PAGE_OFFSET_BY_SPLIT[split] };
}

/** One access by the user process through the backend (the hardware's answer, no fault handling). */
function hw(w: World, who: string, va: number, kind: AccessKind): { ok: true; gpa: number } | { ok: false; errorCode: number } {
  w.k.switchTo(who);
  return w.k.ops.access(va >>> 0, kind, true);
}

/** The gpa a process's user address reaches (probe: no side effects), or -1. */
function gpaOf(w: World, who: string, va: number): number {
  w.k.switchTo(who);
  const r = w.k.ops.probe(va, ACCESS_READ, true);
  return r.ok ? r.gpa : -1;
}

for (const b of BACKENDS) {
  for (const [pae, split] of [[true, '3G'], [false, '3G'], [true, '1G'], [false, '2G']] as [boolean, Split][]) {
    const label = `${b.label} ${pae ? 'PAE' : '2-level'} ${split}`;

    s(`${label}: own user pages, per their protection`, () => {
      const w = setUp(b, pae, split);
      // Fetch of a non-executable page faults only where NX exists (PAE with EFER.NXE).
      const fetchNx = pae;
      const want: Record<number, [boolean, boolean, boolean]> = {
        [RW]: [true, true, !fetchNx],
        [RO]: [true, false, !fetchNx],
        [RX]: [true, false, true],
        [RWX]: [true, true, true],
      };
      const cells: string[] = [];
      for (const [va, exp] of Object.entries(want)) {
        for (const [kind, name] of KINDS) {
          const r = hw(w, 'A', Number(va), kind);
          cells.push(`${Number(va).toString(16)} ${name}: ${r.ok ? 'ok' : `#PF ${r.errorCode.toString(2)}`}`);
          assert.is(r.ok, exp[kind], `A ${name} at ${Number(va).toString(16)}`);
          if (!r.ok) {
            // A protection fault on a present page, from user mode.
            assert.ok((r.errorCode & (PFEC_P | PFEC_U)) === (PFEC_P | PFEC_U), cells.join('\n'));
            if (kind === ACCESS_FETCH) assert.ok((r.errorCode & PFEC_ID) !== 0, 'instruction fetch bit');
            if (kind === ACCESS_WRITE) assert.ok((r.errorCode & PFEC_W) !== 0);
          }
        }
      }
      // Through the kernel: the values, and SIGSEGV for a store to the read-only page (the process survives).
      assert.is(w.k.userRead32('A', RW), 0xaaaa0001);
      assert.is(w.k.userRead32('A', RWX), 0xaaaa0004);
      const segv = w.k.stats.faultsSegv;
      assert.is(w.k.userWrite32('A', RO, 1), 'segv');
      assert.is(w.k.userWrite32('A', RX, 1), 'segv');
      assert.is(w.k.stats.faultsSegv, segv + 2);
      assert.is(w.k.userRead32('A', RO), 0, 'the read-only page is unchanged (zero-filled)');
      assert.ok(w.k.hasProcess('A'));
      assert.equal([...w.k.checkInvariants(), ...backendInvariants(w.k.ops)], []);
    });

    s(`${label}: kernel addresses: every user read, write and fetch faults; nothing changes`, () => {
      const w = setUp(b, pae, split);
      const area = w.k.vmalloc(4096)!;
      w.k.kernelWrite32(area, 0, 0x5eed);
      const pgdA = w.k.pgdOf('A');
      const holeStart = pae ? 0xf5800000 : 0xfc000000;
      const targets: [string, number][] = [
        ['direct map (phys 0)', w.pageOffset],
        ['kernel text', w.pageOffset + 0x100000],
        ["A's own pgd via the direct map", w.pageOffset + pgdA],
        ['vmalloc area', area.addr],
        ['hypervisor hole', holeStart + 0x1000],
        ['top of memory', 0xfffff000],
      ];
      // The kernel itself reaches the mapped ones in A's context (so the matrix is not vacuous;
      // the vmalloc area after a vmalloc fault where kernel pmds are not shared).
      w.k.switchTo('A');
      const before = targets.slice(0, 4).map(([, va]) => w.k.kernelReadVa(va));
      for (const [what, va] of targets.slice(0, 4)) {
        w.k.switchTo('A');
        assert.ok(w.k.ops.access(va, ACCESS_READ, false).ok, `kernel-mode read of ${what}`);
      }
      for (const [what, va] of targets) {
        for (const [kind, name] of KINDS) {
          const r = hw(w, 'A', va, kind);
          assert.is(r.ok, false, `user ${name} of ${what} (${va.toString(16)})`);
          // Under Xen the guest's segments end below the hypervisor hole: an
          // access there is a #GP, not a #PF [item 15].
          const gp = w.k.ops.name === 'xen' && va >= 2 ** 32 - w.k.ops.reservedTop + 2 * 4096;
          const fault = 'fault' in r ? (r as { fault?: string }).fault : undefined;
          if (!r.ok && gp) assert.is(fault, 'GP', `user ${name} of ${what}: #GP beyond the segment limit`);
          else if (!r.ok) assert.ok(fault !== 'GP' && (r.errorCode & PFEC_U) !== 0, 'a user-mode #PF');
        }
        // Through the kernel: SIGSEGV, the process survives.
        assert.is(w.k.userRead32('A', va), 'segv', `read ${what}`);
        assert.is(w.k.userWrite32('A', va, 0xbad), 'segv', `write ${what}`);
        assert.ok(w.k.hasProcess('A'));
      }
      const after = targets.slice(0, 4).map(([, va]) => w.k.kernelReadVa(va));
      assert.equal(after, before, 'no user store reached kernel memory');
      assert.is(w.k.kernelRead32(area, 0), 0x5eed);
      assert.equal([...w.k.checkInvariants(), ...backendInvariants(w.k.ops)], []);
    });

    s(`${label}: another process's memory is never reachable`, () => {
      const w = setUp(b, pae, split);
      // B's private page is not mapped in A at all: not present, SIGSEGV.
      for (const [kind, name] of KINDS) {
        const r = hw(w, 'A', B_ONLY, kind);
        assert.is(r.ok, false, `A ${name} of B's private page`);
        if (!r.ok) assert.is(r.errorCode & PFEC_P, 0, 'not present in A');
      }
      assert.is(w.k.userRead32('A', B_ONLY), 'segv');
      assert.is(w.k.userWrite32('A', B_ONLY, 1), 'segv');
      // Same virtual address, different frames and values.
      const a = gpaOf(w, 'A', RW);
      const bb = gpaOf(w, 'B', RW);
      assert.ok(a >= 0 && bb >= 0);
      assert.is.not(Math.floor(a / 4096), Math.floor(bb / 4096), 'same VA, different frames');
      assert.is(w.k.userRead32('A', RW), 0xaaaa0001);
      assert.is(w.k.userRead32('B', RW), 0xbbbb0001);
      assert.is(w.k.userWrite32('A', RW, 0x1234), 'ok');
      assert.is(w.k.userRead32('B', RW), 0xbbbb0001, "A's store is not seen by B");
      // No address of A's user space reaches a frame of B's.
      const bFrames = new Set([bb, gpaOf(w, 'B', B_ONLY)].map((x) => Math.floor(x / 4096)));
      for (const va of [RW, RO, RX, RWX]) {
        for (const [kind] of KINDS) {
          w.k.switchTo('A');
          const r = w.k.ops.probe(va, kind, true);
          if (r.ok) assert.not.ok(bFrames.has(Math.floor(r.gpa / 4096)), `A reaches B's frame at ${va.toString(16)}`);
        }
      }
      // Copy-on-write: a forked child shares the frame read-only until it writes.
      assert.is(w.k.fork('A', 'C'), 0);
      assert.is(gpaOf(w, 'C', RW), gpaOf(w, 'A', RW), 'shared after fork');
      const c = hw(w, 'C', RW, ACCESS_WRITE);
      assert.is(c.ok, false, 'the shared frame is read-only in the child');
      assert.is(w.k.userWrite32('C', RW, 0xcccc), 'ok');
      assert.is.not(gpaOf(w, 'C', RW), gpaOf(w, 'A', RW), 'the write broke the sharing');
      assert.is(w.k.userRead32('A', RW), 0x1234, "C's store is not seen by A");
      assert.is(w.k.userRead32('C', RW), 0xcccc);
      // After B exits, A still cannot reach its old address.
      w.k.exit('B');
      assert.is(w.k.userRead32('A', B_ONLY), 'segv');
      assert.equal([...w.k.checkInvariants(), ...backendInvariants(w.k.ops)], []);
    });
  }
}

s.run();
