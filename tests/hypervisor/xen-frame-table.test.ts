/**
 * The frame table's storage (hypervisor/xen/frame-table.ts): per-frame state
 * in typed arrays over a window of machine frames that grows on demand, the
 * type_info bits, the order frames are listed in, and get_page_type /
 * put_page_type bookkeeping seen from outside (type change and TLB-flush
 * stamps, validation on the first reference, release on the last).
 */
import * as assert from 'uvu/assert';
import {
  FrameTable,
  PGT_L1,
  PGT_L2,
  PGT_L3,
  PGT_L4,
  PGT_NONE,
  PGT_WRITABLE,
  PGT_pae_xen_l2,
  PGT_pinned,
  PGT_present,
  PGT_type_mask,
  PGT_validated,
  type PageType,
} from '../../hypervisor/xen/frame-table.js';
import { suite } from '../harness.js';

const s = suite('xen frame table: typed-array storage');

interface Calls {
  alloc: [number, PageType, boolean][];
  free: [number, PageType, boolean][];
  typeChanges: [number, number][];
  freed: number;
  log: string[];
}

function table(base = 0, count = 0): { ft: FrameTable; calls: Calls; time: { now: number } } {
  const calls: Calls = { alloc: [], free: [], typeChanges: [], freed: 0, log: [] };
  const time = { now: 0 };
  const ft = new FrameTable((l) => calls.log.push(l.text), (m) => m + 0x1000, base, count);
  ft.ops = {
    alloc: (mfn, type, xenL2) => {
      calls.alloc.push([mfn, type, xenL2]);
      return true;
    },
    free: (mfn, type, xenL2) => {
      calls.free.push([mfn, type, xenL2]);
    },
  };
  ft.flushTime = () => time.now;
  ft.onTypeChange = (mfn, stamp) => calls.typeChanges.push([mfn, stamp]);
  ft.onFreePageType = () => calls.freed++;
  return { ft, calls, time };
}

s('type_info bits: the type in bits 2:0, the flags above it, all distinct', () => {
  assert.is(PGT_type_mask, 7);
  for (const t of [PGT_NONE, PGT_L1, PGT_L2, PGT_L3, PGT_L4, PGT_WRITABLE]) assert.is(t & PGT_type_mask, t);
  const flags = [PGT_pae_xen_l2, PGT_validated, PGT_pinned, PGT_present];
  for (const f of flags) assert.is(f & PGT_type_mask, 0, `flag ${f} outside the type bits`);
  assert.is(flags.reduce((a, f) => a | f, 0), flags.reduce((a, f) => a + f, 0), 'one bit each');
  for (const f of flags) assert.ok(f < 256, 'fits the byte');
});

s('the window: the domain gives it, a frame outside grows it up or down, state kept', () => {
  const { ft, time } = table(100, 10);
  assert.equal(ft.window, { first: 100, size: 64 }, 'at least 64 frames');
  assert.is(ft.indexOf(100), 0);
  assert.is(ft.indexOf(163), 63);
  assert.is(ft.indexOf(164), -1);
  assert.is(ft.indexOf(99), -1);
  assert.is(ft.indexOf(100.5), -1, 'not a frame number');
  assert.ok(ft.getPageType(105, PGT_L2, true));
  ft.setPinned(105, true);
  assert.ok(ft.getPageType(106, PGT_WRITABLE));
  ft.putPageType(106);
  time.now = 9;
  assert.ok(ft.getPageType(107, PGT_WRITABLE));
  ft.putPageType(107);
  const before = [105, 106, 107].map((m) => ft.get(m));
  // Upwards: past the end, at least doubling.
  assert.ok(ft.getPageType(170, PGT_WRITABLE));
  assert.equal(ft.window, { first: 100, size: 128 });
  // Far upwards: exactly to the frame.
  assert.ok(ft.getPageType(5000, PGT_WRITABLE));
  assert.equal(ft.window, { first: 100, size: 4901 });
  // Downwards: towards the frame, at least doubling, not below 0.
  assert.ok(ft.getPageType(90, PGT_WRITABLE));
  assert.is(ft.window.first, 0);
  assert.is(ft.window.size, 5001);
  assert.is(ft.indexOf(105), 105);
  assert.equal([105, 106, 107].map((m) => ft.get(m)), before, 'state moved with the window');
  assert.equal(ft.get(105), { type: PGT_L2, count: 1, pinned: true, xenL2: true, validated: true, stamp: -1 });
  assert.equal(ft.get(107), { type: PGT_WRITABLE, count: 0, pinned: false, xenL2: false, validated: true, stamp: 9 });
  assert.equal([90, 170, 5000].map((m) => ft.countOf(m)), [1, 1, 1]);
  assert.is(ft.pinnedCount, 1);
  // A window in the middle grows down only as far as needed when the doubling would pass 0.
  const { ft: mid } = table(1000, 100);
  assert.ok(mid.getPageType(950, PGT_WRITABLE));
  assert.equal(mid.window, { first: 900, size: 200 });
  assert.ok(mid.getPageType(10, PGT_WRITABLE));
  assert.equal(mid.window, { first: 10, size: 1090 });
  // Default: a window from 0.
  const { ft: dflt } = table();
  assert.equal(dflt.window, { first: 0, size: 64 });
});

s('bounds: reads outside the window are "no state", writes refuse what is not a frame number', () => {
  const { ft } = table(100, 10);
  for (const m of [-1, 0, 99, 164, 1e9, 100.5, NaN]) {
    assert.is(ft.typeOf(m), PGT_NONE, `${m}`);
    assert.is(ft.countOf(m), 0);
    assert.not.ok(ft.isPinned(m));
    assert.not.ok(ft.isXenL2(m));
    assert.not.ok(ft.isValidated(m));
    assert.not.ok(ft.isPageTable(m));
    assert.not.ok(ft.has(m));
    assert.is(ft.get(m), undefined);
  }
  assert.equal(ft.window, { first: 100, size: 64 }, 'reads do not grow the window');
  for (const m of [-1, 1.5, NaN, 2 ** 53]) {
    assert.throws(() => ft.getPageType(m, PGT_WRITABLE), /is not a machine frame number/, `${m}`);
  }
  assert.throws(() => ft.putPageType(-1), /put_page_type: mfn -1 has no type reference/);
  assert.throws(() => ft.setPinned(1e9, true), /pin flag on an untyped mfn 3b9aca00/);
  assert.throws(() => new FrameTable(() => {}, (m) => m, -1, 4), /is not a range of machine frames/);
  assert.throws(() => new FrameTable(() => {}, (m) => m, 0, -4), /is not a range of machine frames/);
  assert.throws(() => new FrameTable(() => {}, (m) => m, 0.5, 4), /is not a range of machine frames/);
  assert.is(ft.frameCount, 0, 'nothing entered');
  assert.throws(() => ft.frameAt(0), /no frame number 0/);
  ft.debugSetCount(120, 5);
  assert.is(ft.countOf(120), 0, 'debugSetCount does not give a frame state');
});

s('frames are listed in the order they first got state, for good, past the first 64', () => {
  const { ft } = table(0, 1000);
  const order: number[] = [];
  for (let k = 0; k < 150; k++) {
    const m = (k * 37) % 1000;
    order.push(m);
    assert.ok(ft.getPageType(m, PGT_WRITABLE));
  }
  for (const m of order) ft.putPageType(m);
  assert.ok(ft.getPageType(order[3]!, PGT_L1), 'a second typing adds nothing');
  assert.is(ft.frameCount, 150);
  assert.equal(Array.from({ length: 150 }, (_, k) => ft.frameAt(k)), order);
  assert.equal(ft.frames().map(([m]) => m), order);
  assert.throws(() => ft.frameAt(150), /no frame number 150/);
  assert.throws(() => ft.frameAt(-1), /no frame number -1/);
  assert.equal([...ft.snapshot().keys()], [order[3]], 'the snapshot keeps frames holding a reference');
  // get() is a copy: changing it changes nothing.
  const f = ft.get(order[3]!)!;
  f.count = 99;
  f.pinned = true;
  assert.is(ft.countOf(order[3]!), 1);
  assert.not.ok(ft.isPinned(order[3]!));
});

s('get_page_type: first reference validates, a type change is reported with the stamp, same type is no change', () => {
  const { ft, calls, time } = table(0, 16);
  assert.ok(ft.getPageType(3, PGT_L1));
  assert.equal(calls.alloc, [[3, PGT_L1, false]]);
  assert.equal(calls.typeChanges, [], 'a frame never typed nor stamped: no flush');
  assert.ok(ft.isValidated(3));
  assert.ok(ft.isPageTable(3));
  assert.ok(ft.getPageType(3, PGT_L1));
  assert.is(calls.alloc.length, 1, 'only the first reference validates');
  assert.is(ft.typeRefChanges, 2);
  assert.not.ok(ft.getPageType(3, PGT_WRITABLE), 'another type while counted');
  assert.equal(calls.log, ['Bad type (saw l1 != exp writable) for mfn 3 (pfn 1003)']);
  assert.not.ok(ft.getPageType(3, PGT_WRITABLE, false, true), 'quiet');
  assert.is(calls.log.length, 1);
  assert.is(ft.typeRefChanges, 2, 'refusals change no count');
  time.now = 5;
  ft.putPageType(3);
  ft.putPageType(3);
  assert.equal(calls.free, [[3, PGT_L1, false]]);
  assert.is(calls.freed, 1);
  assert.equal(ft.get(3), { type: PGT_L1, count: 0, pinned: false, xenL2: false, validated: false, stamp: 5 });
  // The same type again: revalidated, no type change.
  assert.ok(ft.getPageType(3, PGT_L1));
  assert.equal(calls.typeChanges, []);
  assert.is(calls.alloc.length, 2);
  time.now = 7;
  ft.putPageType(3);
  assert.is(calls.freed, 2);
  // A different type: a type change, with the stamp of the last put.
  assert.ok(ft.getPageType(3, PGT_WRITABLE));
  assert.equal(calls.typeChanges, [[3, 7]]);
  assert.is(calls.alloc.length, 2, 'writable needs no validation');
  assert.ok(ft.isValidated(3));
  assert.not.ok(ft.isPageTable(3));
  ft.putPageType(3);
  assert.is(calls.freed, 2, 'releasing a writable frame frees no page table');
  assert.equal(calls.free, [[3, PGT_L1, false], [3, PGT_L1, false]]);
  // The pae_xen_l2 flag is part of the type: an L2 without it is another type.
  assert.ok(ft.getPageType(4, PGT_L2, true));
  assert.ok(ft.isXenL2(4));
  assert.not.ok(ft.getPageType(4, PGT_L2, false));
  assert.equal(calls.log.at(-1), 'Bad type (saw l2|pae_xen_l2 != exp l2) for mfn 4 (pfn 1004)');
  ft.putPageType(4);
  assert.equal(calls.free.at(-1), [4, PGT_L2, true], 'released with its flag');
  assert.ok(ft.getPageType(4, PGT_L2, false));
  assert.not.ok(ft.isXenL2(4), 'the flag goes with a type change');
  assert.equal(calls.typeChanges.at(-1), [4, 7]);
  // An L2 where an L1 is expected is the linear page-table case: silent.
  const n = calls.log.length;
  assert.not.ok(ft.getPageType(4, PGT_L1));
  assert.is(calls.log.length, n);
  // A stamped frame of type none (a failed validation) still reports the change.
  assert.ok(ft.getPageType(5, PGT_WRITABLE));
  time.now = 11;
  ft.putPageType(5);
  ft.ops.alloc = () => false;
  assert.not.ok(ft.getPageType(5, PGT_L3));
  assert.equal(ft.get(5), { type: PGT_NONE, count: 0, pinned: false, xenL2: false, validated: false, stamp: 11 });
  assert.ok(ft.has(5));
  calls.typeChanges.length = 0;
  ft.ops.alloc = () => true;
  assert.ok(ft.getPageType(5, PGT_L1));
  assert.equal(calls.typeChanges, [[5, 11]], 'type none but stamped: a change');
});

s('pins survive type changes and failed validations; the pin count follows the flag', () => {
  const { ft } = table(0, 16);
  assert.ok(ft.getPageType(2, PGT_L1));
  ft.setPinned(2, true);
  ft.putPageType(2);
  assert.ok(ft.getPageType(2, PGT_WRITABLE));
  assert.ok(ft.isPinned(2), 'a type change keeps the pin');
  ft.putPageType(2);
  ft.ops.alloc = () => false;
  assert.not.ok(ft.getPageType(2, PGT_L2));
  assert.ok(ft.isPinned(2), 'a failed validation keeps the pin');
  assert.is(ft.pinnedCount, 1);
  ft.setPinned(2, false);
  ft.setPinned(2, false);
  assert.is(ft.pinnedCount, 0, 'unpinning twice counts once');
  assert.not.ok(ft.isPinned(2));
});

s('validation that types other frames and grows the window leaves the frame right', () => {
  const { ft, calls } = table(100, 4);
  let depth = 0;
  ft.ops = {
    alloc: (mfn, type) => {
      calls.alloc.push([mfn, type, false]);
      // An L2 takes L1 references on far-away frames, growing the window both ways.
      if (type === PGT_L2 && depth++ === 0) return ft.getPageType(20_000, PGT_L1) && ft.getPageType(3, PGT_L1);
      return true;
    },
    free: (mfn, type) => {
      calls.free.push([mfn, type, false]);
      if (type === PGT_L2) {
        ft.putPageType(20_000);
        ft.putPageType(3);
        ft.getPageType(50_000, PGT_WRITABLE);
      }
    },
  };
  assert.ok(ft.getPageType(101, PGT_L2));
  assert.is(ft.window.first, 0);
  assert.equal(ft.get(101), { type: PGT_L2, count: 1, pinned: false, xenL2: false, validated: true, stamp: -1 });
  assert.equal([ft.countOf(20_000), ft.countOf(3)], [1, 1]);
  assert.equal(Array.from({ length: ft.frameCount }, (_, k) => ft.frameAt(k)), [101, 20_000, 3]);
  ft.flushTime = () => 42;
  ft.putPageType(101);
  assert.ok(ft.window.first + ft.window.size > 50_000, 'grown while releasing');
  assert.equal(ft.get(101), { type: PGT_L2, count: 0, pinned: false, xenL2: false, validated: false, stamp: 42 });
  assert.equal([ft.countOf(20_000), ft.countOf(3), ft.countOf(50_000)], [0, 0, 1]);
  // A validation that fails after growing the window clears the right frame.
  ft.ops.alloc = (mfn) => {
    ft.getPageType(mfn + 100_000, PGT_WRITABLE);
    return false;
  };
  assert.not.ok(ft.getPageType(102, PGT_L1));
  assert.equal(ft.get(102), { type: PGT_NONE, count: 0, pinned: false, xenL2: false, validated: false, stamp: -1 });
  assert.is(ft.countOf(100_102), 1);
  // A type change whose flush hook types a far frame (growing the window) still retypes the right frame.
  ft.ops.alloc = () => true;
  ft.onTypeChange = () => {
    ft.getPageType(300_000, PGT_WRITABLE);
  };
  assert.ok(ft.getPageType(101, PGT_L1));
  assert.equal(ft.get(101), { type: PGT_L1, count: 1, pinned: false, xenL2: false, validated: true, stamp: 42 });
  assert.is(ft.countOf(300_000), 1);
});

s('typeInfo: the raw byte, type and flags together', () => {
  const { ft } = table(0, 16);
  assert.is(ft.typeInfo(3), 0, 'no state');
  assert.ok(ft.getPageType(3, PGT_L2, true));
  ft.setPinned(3, true);
  assert.is(ft.typeInfo(3), PGT_present | PGT_pinned | PGT_validated | PGT_pae_xen_l2 | PGT_L2);
  ft.putPageType(3);
  assert.is(ft.typeInfo(3), PGT_present | PGT_pinned | PGT_pae_xen_l2 | PGT_L2, 'released: validated cleared, type kept');
  assert.ok(ft.getPageType(4, PGT_WRITABLE));
  assert.is(ft.typeInfo(4), PGT_present | PGT_validated | PGT_WRITABLE);
  ft.debugSetCount(4, 7);
  assert.is(ft.countOf(4), 7, 'debugSetCount on a frame with state');
  assert.is(ft.typeInfo(4), PGT_present | PGT_validated | PGT_WRITABLE, 'the count does not touch the flags');
  assert.is(ft.typeInfo(-5), 0);
});


s('pageTableFrames lists exactly the frames typed l1..l4 (at any count) or pinned, through type changes, failed validations, pins and window growth', () => {
  const { ft } = table(0x100, 64);
  let failNext = false;
  const ops = ft.ops;
  ft.ops = {
    alloc: (mfn, type, xenL2) => (failNext ? false : ops.alloc(mfn, type, xenL2)),
    free: (mfn, type, xenL2) => ops.free(mfn, type, xenL2),
  };
  // The frames a full scan finds, sorted (the list itself is unordered).
  const scan = (): number[] => {
    const out: number[] = [];
    for (const [mfn, f] of ft.frames()) if ((f.type >= PGT_L1 && f.type <= PGT_L4) || f.pinned) out.push(mfn);
    return out.sort((a, b) => a - b);
  };
  const listed = (): number[] => {
    const { list, count } = ft.pageTableFrames();
    return [...list.subarray(0, count)].sort((a, b) => a - b);
  };
  // A planted defect this guards against: a type change that does not relist the frame (the checker's table pass would skip a page table).
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const types: PageType[] = [PGT_L1, PGT_L2, PGT_L3, PGT_WRITABLE];
  // Frames below and far above the window: it grows both ways.
  const frames = [0x100, 0x101, 0x105, 0x13f, 0x140, 0x180, 0x40, 0x400];
  let sawListed = false;
  let sawUnlisted = false;
  for (let step = 0; step < 600; step++) {
    const mfn = frames[rnd(frames.length)]!;
    const op = rnd(4);
    if (op === 0) {
      failNext = rnd(5) === 0;
      ft.getPageType(mfn, types[rnd(types.length)]!, false, true);
      failNext = false;
    } else if (op === 1 && ft.countOf(mfn) > 0) ft.putPageType(mfn);
    else if (op === 2 && ft.has(mfn)) ft.setPinned(mfn, rnd(2) === 0);
    const l = listed();
    assert.equal(l, scan(), `step ${step}`);
    if (l.length > 0) sawListed = true;
    if (l.length < ft.frameCount) sawUnlisted = true;
  }
  assert.ok(sawListed && sawUnlisted, 'frames were listed, and frames with state were not');
});

s.run();
