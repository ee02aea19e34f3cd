/**
 * Whole-table validation and release (alloc_l1/l2/l3_table, free_lX_table in
 * Xen 3.1.0 mm.c), from the survivors of `npm run mutate xen`: a pinned table
 * is validated entry by entry with the same rules as a single update (flags,
 * the frame must be the guest's, RW needs a writable type reference), a failure
 * names the entry and rolls back every reference the entries before it took,
 * and unpinning releases every reference the entries hold. Plus the frame
 * table's own accounting (pin count, errors on misuse). The Xen invariant
 * checker runs after every test.
 */
import * as assert from 'uvu/assert';
import { PTE_G, PTE_PS } from '../../emulator/paging-bits.js';
import { FrameTable, PGT_L1, PGT_NONE, PGT_WRITABLE } from '../../hypervisor/xen/frame-table.js';
import { checkXenInvariants, EINVAL, MMUEXT_PIN_L1_TABLE, MMUEXT_PIN_L2_TABLE, MMUEXT_PIN_L3_TABLE, MMUEXT_UNPIN_TABLE, XenBackend } from '../../hypervisor/xen/index.js';
import { suite } from '../harness.js';
import { alloc, makeWorld, mfn, mkpgd, mkpmd, mkpte, P, RW, state, US, type XW } from './xen-world.js';

let current: XenBackend | null = null;
function world(pae: boolean): XW {
  const w = makeWorld(pae);
  current = w.b;
  return w;
}
const s = suite('xen whole-table validation, rollback and release');
s.after.each(() => {
  const b = current;
  current = null;
  if (b === null) return;
  const v = checkXenInvariants(b);
  if (v.length > 0) throw new Error(`Xen invariants violated after the test:\n  ${v.join('\n  ')}`);
});

const NOT_GUEST = 0xf0000; // neither the guest's nor Xen's frame
const G = BigInt(PTE_G);
const PS = BigInt(PTE_PS);

function put(w: XW, pfn: number, i: number, v: bigint): void {
  if (w.pae) w.b.mem.write64(pfn * 4096 + 8 * i, v);
  else w.b.mem.write32(pfn * 4096 + 4 * i, Number(v));
}

function pin(w: XW, cmd: number, pfn: number): { rc: number; log: readonly string[] } {
  const r = w.b.hv.mmuext_op([{ cmd, mfn: mfn(w, pfn) }]);
  return { rc: r.rc, log: r.refusal?.log ?? [] };
}

for (const pae of [true, false]) {
  const label = pae ? 'PAE' : '2-level';

  s(`${label}: an L1 validated by a pin: each bad entry refused by its rule, the entries before it rolled back`, () => {
    const w = world(pae);
    const data = w.D0 + 9;
    const xen = w.b.domain.hole.holeL1;
    const c0 = w.b.domain.frames.countOf(mfn(w, data)); // the kernel's direct map maps it RW
    const cases: [string, bigint, RegExp][] = [
      ['GLOBAL', mkpte(w, w.D0 + 10, P | RW | US | G), /^Bad L1 flags 100$/],
      ["Xen's frame", (BigInt(xen) << 12n) | P | US, new RegExp(`^Error getting mfn ${xen.toString(16)} \\(pfn ffffffff\\) from L1 entry`)],
      ['I/O space', (BigInt(NOT_GUEST) << 12n) | P | US, /^Non-privileged attempt to map I\/O space 000f0000$/],
      ['a page table mapped RW', mkpte(w, w.kpt, P | RW), /^Bad type \(saw l1 != exp writable\)/],
    ];
    for (const [what, bad, line] of cases) {
      const t = alloc(w);
      put(w, t, 0, mkpte(w, data, P | RW | US)); // takes a writable reference
      put(w, t, 3, bad);
      const before = state(w);
      const r = pin(w, MMUEXT_PIN_L1_TABLE, t);
      assert.is(r.rc, -EINVAL, what);
      assert.ok(r.log.some((l) => line.test(l)), `${what}: ${r.log.join(' / ')}`);
      assert.ok(r.log.includes('Failure in alloc_l1_table: entry 3'), `${what}: the entry is named`);
      assert.is(state(w), before, `${what}: the data page's writable reference was rolled back`);
      assert.is(w.b.domain.frames.countOf(mfn(w, data)), c0);
    }
  });

  s(`${label}: an L2 validated by a pin: PSE and foreign frames refused, the L1 before rolled back`, () => {
    const w = world(pae);
    for (const [what, badOf, line] of [
      ['PSE', (pt: number) => mkpmd(w, pt, P | RW | US | PS), /^Bad L2 flags 80$/],
      ['a frame not the guest\'s', () => (BigInt(NOT_GUEST) << 12n) | P | RW, /^Could not get page ref for pfn f0000$/],
    ] as const) {
      const l2 = alloc(w);
      const pt = alloc(w);
      const pt2 = alloc(w);
      put(w, l2, 0, mkpmd(w, pt, P | RW | US));
      put(w, l2, 2, badOf(pt2));
      const before = state(w);
      const r = pin(w, MMUEXT_PIN_L2_TABLE, l2);
      assert.is(r.rc, -EINVAL, what);
      assert.ok(r.log.some((l) => line.test(l)), `${what}: ${r.log.join(' / ')}`);
      assert.ok(r.log.includes('Failure in alloc_l2_table: entry 2'), `${what}: ${r.log.join(' / ')}`);
      assert.is(state(w), before, `${what}: the L1 reference of entry 0 was rolled back`);
      // Xen 3.1.0 put_page_type: at count 0 the type stays recorded (l1), unvalidated.
      assert.is(w.b.domain.frames.countOf(mfn(w, pt)), 0, `${what}: the L1 of entry 0 holds no type reference`);
      assert.not.ok(w.b.domain.frames.isPageTable(mfn(w, pt)), `${what}: nor is it a page table any more`);
      assert.is(w.b.domain.frames.typeOf(mfn(w, pt)), PGT_L1, `${what}: its last type stays recorded`);
      assert.is(w.b.domain.frames.get(mfn(w, pt))?.validated, false, `${what}: unvalidated`);
    }
  });

  s(`${label}: pin then unpin: validation reads every entry, takes each entry's reference, unpinning drops them all`, () => {
    const w = world(pae);
    const d = w.b.domain;
    const data = w.D0 + 9;
    const t = alloc(w);
    put(w, t, 0, mkpte(w, data, P | RW | US));
    put(w, t, 7, mkpte(w, data, P | RW | US));
    put(w, t, 9, mkpte(w, w.D0 + 11, P | US)); // read-only: no reference
    const before = state(w);
    const c0 = d.frames.countOf(mfn(w, data)); // the kernel's direct map maps these RW
    const r0 = d.frames.countOf(mfn(w, w.D0 + 11));
    const pinned = w.b.stats.pinned;
    // alloc_l1_table streams the whole table: every cache line of it (8 PAE /
    // 16 two-level entries a line: 64 lines either way), and checks each of
    // the three present entries (the cost model charges both).
    const lines = d.rules.scanLines;
    const present = d.rules.scanPresent;
    assert.is(pin(w, MMUEXT_PIN_L1_TABLE, t).rc, 0);
    assert.is(d.rules.scanLines - lines, 64, 'every line of the table streamed');
    assert.is(d.rules.scanPresent - present, 3, 'every present entry checked');
    assert.is(d.frames.countOf(mfn(w, data)), c0 + 2, 'two RW entries: two writable references');
    assert.is(d.frames.typeOf(mfn(w, data)), PGT_WRITABLE);
    assert.is(d.frames.countOf(mfn(w, w.D0 + 11)), r0, 'a read-only entry takes none');
    assert.is(d.frames.typeOf(mfn(w, t)), PGT_L1);
    assert.is(w.b.stats.pinned, pinned + 1);
    assert.is(pin(w, MMUEXT_UNPIN_TABLE, t).rc, 0);
    assert.is(w.b.stats.pinned, pinned);
    assert.is(d.frames.countOf(mfn(w, data)), c0, 'unpinning freed the table: its references dropped');
    assert.is(d.frames.countOf(mfn(w, t)), 0, 'the table holds no type reference');
    assert.not.ok(d.frames.isPageTable(mfn(w, t)));
    assert.is(d.frames.get(mfn(w, t))?.validated, false, 'unvalidated (its last type, l1, stays recorded)');
    assert.is(state(w), before);
    // An L2 (its L1 references), pinned and unpinned.
    const l2 = alloc(w);
    const pt = alloc(w);
    put(w, pt, 4, mkpte(w, data, P | RW | US));
    put(w, l2, 1, mkpmd(w, pt, P | RW | US));
    assert.is(pin(w, MMUEXT_PIN_L2_TABLE, l2).rc, 0);
    assert.is(d.frames.typeOf(mfn(w, pt)), PGT_L1);
    assert.is(d.frames.countOf(mfn(w, data)), c0 + 1);
    assert.is(pin(w, MMUEXT_UNPIN_TABLE, l2).rc, 0);
    assert.is(d.frames.countOf(mfn(w, pt)), 0, 'the L1 released with its L2');
    assert.not.ok(d.frames.isPageTable(mfn(w, pt)), 'the L1 released with its L2');
    assert.is(d.frames.get(mfn(w, pt))?.validated, false, 'and unvalidated');
    assert.is(d.frames.countOf(mfn(w, data)), c0, 'and its entries\' references');
    const types = (x: string) => x.split(' mem=')[0];
    assert.is(types(state(w)), types(before), 'types, counts and pins as before (memory was written since)');
  });
}

s('PAE: an L3 validated by a pin: bad flags and foreign frames in slots 0-2 refused, the slots before rolled back', () => {
  const w = world(true);
  for (const [what, bad, line] of [
    ['RW', (pmd: number) => mkpgd(w, pmd, P | RW), /^Bad L3 flags 2$/],
    ["a frame not the guest's", () => (BigInt(NOT_GUEST) << 12n) | P, /^Could not get page ref for pfn f0000$/],
  ] as const) {
    const l3 = alloc(w);
    const pmds = [alloc(w), alloc(w), alloc(w), alloc(w)];
    put(w, l3, 0, mkpgd(w, pmds[0]!, P));
    put(w, l3, 1, bad(pmds[1]!));
    put(w, l3, 3, mkpgd(w, pmds[3]!, P));
    const before = state(w);
    const r = pin(w, MMUEXT_PIN_L3_TABLE, l3);
    assert.is(r.rc, -EINVAL, what);
    assert.ok(r.log.some((l) => line.test(l)), `${what}: ${r.log.join(' / ')}`);
    assert.ok(r.log.includes('Failure in alloc_l3_table: entry 1'), `${what}: ${r.log.join(' / ')}`);
    assert.is(state(w), before, `${what}: slot 0's L2 reference rolled back`);
  }
  // Slot 3 with flags an L3 entry may not have, and slot 3 pointing outside the guest.
  for (const [what, v] of [
    ['slot 3 RW', (pmd: number) => mkpgd(w, pmd, P | RW)],
    ["slot 3 not the guest's", () => (BigInt(NOT_GUEST) << 12n) | P],
  ] as const) {
    const l3 = alloc(w);
    const pmds = [alloc(w), alloc(w), alloc(w), alloc(w)];
    for (let i = 0; i < 3; i++) put(w, l3, i, mkpgd(w, pmds[i]!, P));
    put(w, l3, 3, v(pmds[3]!));
    const before = state(w);
    const r = pin(w, MMUEXT_PIN_L3_TABLE, l3);
    assert.is(r.rc, -EINVAL, what);
    assert.ok(r.log.includes('Failure in alloc_l3_table: entry 3'), `${what}: ${r.log.join(' / ')}`);
    assert.is(state(w), before, `${what}: slots 0-2 rolled back`);
  }
});

s('the frame table: pin count, and misuse is an internal error, not a silent negative count', () => {
  const ft = new FrameTable(() => {}, (m) => m);
  ft.ops = { alloc: () => true, free: () => {} };
  assert.throws(() => ft.putPageType(5), /put_page_type: mfn 5 has no type reference/);
  assert.throws(() => ft.setPinned(6, true), /pin flag on an untyped mfn 6/);
  assert.ok(ft.getPageType(7, PGT_L1));
  ft.setPinned(7, true);
  ft.setPinned(7, true);
  assert.is(ft.pinnedCount, 1, 'pinning twice counts once');
  ft.putPageType(7);
  assert.ok(ft.isPinned(7), 'a pinned frame stays in the table at count 0');
  // Xen 3.1.0 put_page_type: at count 0 the type stays recorded, the validated bit cleared.
  assert.is(ft.typeOf(7), PGT_L1, 'the last type stays recorded at count 0');
  assert.is(ft.countOf(7), 0);
  assert.not.ok(ft.isPageTable(7));
  assert.is(ft.get(7)?.validated, false, 'unvalidated');
  ft.setPinned(7, false);
  assert.is(ft.pinnedCount, 0);
  assert.not.ok(ft.isPinned(7), 'unpinned');
  assert.not.ok(ft.snapshot().has(7), 'unpinned at count 0: no state a snapshot compares');
  assert.throws(() => ft.putPageType(7), /has no type reference/);
  // Frames outside the dense range (an extra map) behave the same.
  const dense = new FrameTable(() => {}, (m) => m, 100, 10);
  dense.ops = { alloc: () => true, free: () => {} };
  for (const m of [99, 100, 109, 110]) {
    assert.ok(dense.getPageType(m, PGT_WRITABLE), `${m}`);
    assert.ok(dense.getPageType(m, PGT_WRITABLE));
    assert.is(dense.countOf(m), 2, `${m}`);
    assert.ok(!dense.isPageTable(m));
  }
  assert.equal([...dense.frames()].map(([m]) => m), [99, 100, 109, 110], 'in insertion order');
  for (const m of [100, 99, 110, 109]) {
    dense.putPageType(m);
    dense.putPageType(m);
  }
  // Each keeps its last type (writable) at count 0, as Xen 3.1.0 does; none holds a reference.
  assert.equal([...dense.frames()].map(([m, f]) => [m, f.type, f.count, f.pinned]), [99, 100, 109, 110].map((m) => [m, PGT_WRITABLE, 0, false]));
  assert.equal(dense.snapshot(), new Map());
  // A failed validation leaves nothing behind and is logged.
  const lines: string[] = [];
  const bad = new FrameTable((l) => lines.push(l.text), (m) => m + 1);
  bad.ops = { alloc: () => false, free: () => {} };
  assert.not.ok(bad.getPageType(3, PGT_L1));
  // alloc_page_type failed: type_info = 0 (no type, no count, not validated).
  assert.is(bad.typeOf(3), PGT_NONE);
  assert.is(bad.countOf(3), 0);
  assert.is(bad.get(3)?.validated ?? false, false);
  assert.equal(lines, ['Error while validating mfn 3 (pfn 4) for type l1']);
  assert.not.ok(bad.isPageTable(3));
});

s.run();
