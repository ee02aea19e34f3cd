/**
 * Edges of the frame table (hypervisor/xen/frame-table.ts) the storage tests
 * leave open (issue 14): the hooks' defaults, what counts as a page table
 * (count > 0, L1..L4), L4 frames released like the others, a TLB-flush
 * stamp of 0 being a stamp, the type-count changes of a failed validation,
 * pinned frames at count zero in the snapshot, and frame indexes that are
 * not integers.
 */
import * as assert from 'uvu/assert';
import { FrameTable, PGT_L1, PGT_L2, PGT_L4, PGT_NONE, PGT_WRITABLE, type PageType } from '../../hypervisor/xen/frame-table.js';
import { suite } from '../harness.js';

const s = suite('xen frame table: edges');

function table(): { ft: FrameTable; freed: [number, PageType][]; changes: [number, number][]; ok: { alloc: boolean } } {
  const freed: [number, PageType][] = [];
  const changes: [number, number][] = [];
  const ok = { alloc: true };
  const ft = new FrameTable(() => {}, (m) => m, 0, 16);
  ft.ops = { alloc: () => ok.alloc, free: (m, t) => void freed.push([m, t]) };
  ft.onTypeChange = (m, stamp) => void changes.push([m, stamp]);
  return { ft, freed, changes, ok };
}

s('defaults: flush time 0, the type-change and free hooks do nothing', () => {
  const ft = new FrameTable(() => {}, (m) => m, 0, 16);
  ft.ops = { alloc: () => true, free: () => {} };
  assert.ok(ft.getPageType(1, PGT_L1));
  ft.putPageType(1);
  assert.is(ft.get(1)?.stamp, 0, 'stamped with the default flush time');
  assert.ok(ft.getPageType(1, PGT_WRITABLE), 'a type change with the default hook');
  assert.is(ft.typeOf(1), PGT_WRITABLE);
});

s('a page table is a frame with a count, of type L1..L4', () => {
  const { ft, freed } = table();
  assert.ok(ft.getPageType(2, PGT_L1));
  assert.ok(ft.isPageTable(2));
  ft.putPageType(2);
  assert.not.ok(ft.isPageTable(2), 'count zero: the type is only recorded');
  assert.is(ft.typeOf(2), PGT_L1);
  assert.ok(ft.getPageType(3, PGT_L4));
  assert.ok(ft.isPageTable(3), 'L4');
  ft.putPageType(3);
  assert.equal(freed, [[2, PGT_L1], [3, PGT_L4]], 'an L4 is released too');
});

s('a stamp of 0 is a stamp: a later type change of a type-none frame is reported', () => {
  const { ft, changes, ok } = table();
  assert.ok(ft.getPageType(4, PGT_WRITABLE));
  ft.putPageType(4); // stamped at flush time 0
  ok.alloc = false;
  assert.not.ok(ft.getPageType(4, PGT_L2)); // a change (writable -> l2), then type none
  assert.equal(ft.get(4), { type: PGT_NONE, count: 0, pinned: false, xenL2: false, validated: false, stamp: 0 });
  changes.length = 0;
  ok.alloc = true;
  assert.ok(ft.getPageType(4, PGT_L1));
  assert.equal(changes, [[4, 0]]);
});

s('a failed validation takes and gives back one reference: two type-count changes', () => {
  const { ft, ok } = table();
  ok.alloc = false;
  const n = ft.typeRefChanges;
  assert.not.ok(ft.getPageType(5, PGT_L1));
  assert.is(ft.typeRefChanges - n, 2);
  assert.is(ft.countOf(5), 0);
});

s('pins: pinning twice counts once; a pinned frame at count zero is in the snapshot', () => {
  const { ft, ok } = table();
  assert.ok(ft.getPageType(6, PGT_L2));
  ft.setPinned(6, true);
  ft.setPinned(6, true);
  assert.is(ft.pinnedCount, 1);
  ft.putPageType(6);
  assert.equal([...ft.snapshot().keys()], [6]);
  assert.equal(ft.snapshot().get(6), { type: PGT_L2, count: 0, pinned: true, xenL2: false, validated: false, stamp: 0 });
  ok.alloc = false;
  assert.ok(ft.getPageType(7, PGT_WRITABLE));
  ft.putPageType(7);
  assert.equal([...ft.snapshot().keys()], [6], 'neither counted nor pinned: left out');
});

s('frame numbers that are not integers are not frames', () => {
  const { ft } = table();
  assert.ok(ft.getPageType(8, PGT_WRITABLE));
  assert.throws(() => ft.frameAt(0.5), /no frame number 0.5/);
  assert.is(ft.frameAt(0), 8);
});

s.run();
