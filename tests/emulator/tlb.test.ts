import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { allowMask, TlbLevel, Tlbs, TLBF_D, TLBF_G, TLBF_NX, TLBF_RW, TLBF_US } from '../../emulator/tlb.js';

const ALL = TLBF_RW | TLBF_US | TLBF_D;
const ALLOW = allowMask(ALL, true, true);

// ---- placement ----
const placement = suite('tlb: set-associative placement');

placement('a 4 KiB page goes to set vpn mod sets, a large page to the large array', () => {
  const t = new TlbLevel('T', { entries: 16, ways: 4 }, { entries: 8, ways: 2 });
  for (const vpn of [0, 1, 2, 3, 5, 0x40001, 0xfffff]) {
    const s = t.fillSmall(vpn, 7, ALL, ALLOW);
    const set = vpn % 4;
    assert.ok(s >= set * 4 && s < set * 4 + 4, `vpn ${vpn} in slot ${s}`);
    assert.is(t.lookupSmall(vpn), s);
  }
  for (const lpn of [0, 1, 2, 3, 0x7ff]) {
    const s = t.fillLarge(lpn, 0x200, ALL, ALLOW);
    const set = lpn % 4;
    assert.ok(s >= 16 + set * 2 && s < 16 + set * 2 + 2, `lpn ${lpn} in slot ${s}`);
    assert.is(t.lookupLarge(lpn), s);
  }
  // 4 KiB and large entries with the same number do not see each other.
  const t2 = new TlbLevel('T2', { entries: 16, ways: 4 }, { entries: 8, ways: 2 });
  t2.fillSmall(9, 1, ALL, ALLOW);
  assert.is(t2.lookupLarge(9), -1);
});

placement('a set count that is not a power of two indexes by modulo', () => {
  const t = new TlbLevel('T', { entries: 12, ways: 4 }, { entries: 7, ways: 7 });
  for (const vpn of [0, 1, 2, 3, 4, 5, 100, 0x12345]) {
    const s = t.fillSmall(vpn, 1, ALL, ALLOW);
    const set = vpn % 3;
    assert.ok(s >= set * 4 && s < set * 4 + 4, `vpn ${vpn} in slot ${s}`);
  }
  // fully associative: 7 different large pages all stay
  for (let lpn = 0; lpn < 7; lpn++) t.fillLarge(lpn * 13, 0, ALL, ALLOW);
  for (let lpn = 0; lpn < 7; lpn++) assert.ok(t.lookupLarge(lpn * 13) >= 12);
  t.fillLarge(1000, 0, ALL, ALLOW);
  assert.is(t.lookupLarge(0), -1, 'the oldest of 7 is evicted by the 8th');
});

placement('geometry that does not divide into sets is refused', () => {
  assert.throws(() => new TlbLevel('bad', { entries: 10, ways: 4 }, { entries: 0, ways: 1 }), /not divisible/);
});

placement('an array with no entries never holds anything', () => {
  const t = new TlbLevel('T', { entries: 0, ways: 1 }, { entries: 0, ways: 1 });
  assert.is(t.fillSmall(1, 1, ALL, ALLOW), -1);
  assert.is(t.fillLarge(1, 1, ALL, ALLOW), -1);
  assert.is(t.lookupSmall(1), -1);
  assert.is(t.valid, 0);
});

// ---- LRU ----
const lru = suite('tlb: LRU replacement');

/** Generic loop and the unrolled 4-way code must choose the same victims. */
for (const ways of [2, 4, 8]) {
  lru(`${ways}-way: the least recently used way is the victim`, () => {
    const sets = 4;
    const t = new TlbLevel('T', { entries: sets * ways, ways }, { entries: 0, ways: 1 });
    const inSet = (k: number): number => 1 + k * sets; // all in set 1
    for (let k = 0; k < ways; k++) t.fillSmall(inSet(k), k, ALL, ALLOW);
    // touch every way but way of page 1, in reverse order: page 1 becomes LRU
    for (let k = ways - 1; k >= 0; k--) if (k !== 1) t.touch(t.lookupSmall(inSet(k)));
    const victimSlot = t.lookupSmall(inSet(1));
    const s = t.fillSmall(inSet(ways), 99, ALL, ALLOW);
    assert.is(s, victimSlot);
    assert.is(t.lookupSmall(inSet(1)), -1);
    for (let k = 0; k <= ways; k++) if (k !== 1) assert.ok(t.lookupSmall(inSet(k)) >= 0, `page ${k} kept`);
    // Recency now, oldest first: ways-1, ways-2, ..., 2, 0, then the new page
    // (for 2 ways: 0, then the new page). The next fill evicts the oldest.
    const second = ways > 2 ? ways - 1 : 0;
    const secondSlot = t.lookupSmall(inSet(second));
    assert.is(t.fillSmall(inSet(ways + 1), 1, ALL, ALLOW), secondSlot);
    assert.is(t.lookupSmall(inSet(second)), -1);
    assert.ok(t.lookupSmall(inSet(ways)) >= 0);
  });
}

/**
 * The 4-way victim is chosen by integer arithmetic while the clock is below
 * 2^31 and by comparing doubles above: both must evict exactly what a
 * reference LRU list evicts, also across the switch.
 */
for (const start of [0, 2 ** 31 - 300, 2 ** 40]) {
  lru(`4-way victims follow a reference LRU list (clock from ${start})`, () => {
    const sets = 4;
    const clock = { now: start };
    const t = new TlbLevel('T', { entries: sets * 4, ways: 4 }, { entries: 0, ways: 1 }, clock);
    const order: number[][] = [[], [], [], []]; // per set, pages least recent first
    let x = 12345;
    const rnd = (n: number): number => {
      x = (x * 1103515245 + 12345) >>> 0;
      return (x >>> 8) % n;
    };
    let evictions = 0;
    for (let step = 0; step < 600; step++) {
      const page = rnd(12 * sets);
      const set = page % sets;
      const o = order[set]!;
      const at = o.indexOf(page);
      if (at >= 0 && rnd(2) === 0) {
        t.touch(t.lookupSmall(page));
      } else {
        const gone = at < 0 && o.length === 4 ? o[0]! : undefined;
        t.fillSmall(page, page, ALL, ALLOW);
        if (gone !== undefined) {
          assert.is(t.lookupSmall(gone), -1, `step ${step}: page ${gone} evicted`);
          o.shift();
          evictions++;
        }
      }
      const i = o.indexOf(page);
      if (i >= 0) o.splice(i, 1);
      o.push(page);
      for (const p of o) assert.ok(t.lookupSmall(p) >= 0, `step ${step}: page ${p} held`);
    }
    assert.ok(evictions > 100, `${evictions} evictions`);
    if (start === 2 ** 31 - 300) assert.ok(clock.now > 2 ** 31, 'the run crossed 2^31');
  });
}

lru('an invalid way is used before any valid one, even a much older one', () => {
  const t = new TlbLevel('T', { entries: 4, ways: 4 }, { entries: 0, ways: 1 });
  for (let v = 0; v < 4; v++) t.fillSmall(v, v, ALL, ALLOW);
  const s2 = t.lookupSmall(2);
  t.invalidateSlot(s2);
  assert.is(t.fillSmall(10, 1, ALL, ALLOW), s2);
  for (const v of [0, 1, 3, 10]) assert.ok(t.lookupSmall(v) >= 0);
});

lru('refilling a page already held reuses its slot', () => {
  const t = new TlbLevel('T', { entries: 8, ways: 4 }, { entries: 4, ways: 4 });
  const a = t.fillSmall(6, 1, ALL, ALLOW);
  const b = t.fillSmall(6, 2, ALL, ALLOW);
  assert.is(a, b);
  assert.is(t.pfn[b], 2);
  assert.is(t.valid, 1);
  const c = t.fillLarge(3, 0x400, ALL, ALLOW);
  assert.is(t.fillLarge(3, 0x600, ALL, ALLOW), c);
  assert.is(t.valid, 2);
});

lru('stamps come from one clock shared by the levels of a Tlbs', () => {
  const geo = { entries: 4, ways: 4 };
  const tl = new Tlbs({ itlb4k: geo, itlbLarge: geo, dtlb4k: geo, dtlbLarge: geo, l2tlb4k: geo, l2tlbLarge: geo }, false);
  const a = tl.dtlb.fillSmall(1, 1, ALL, ALLOW);
  const b = tl.l2.fillSmall(1, 1, ALL, ALLOW);
  const c = tl.itlb.fillSmall(1, 1, ALL, ALLOW);
  assert.ok(tl.dtlb.stamp[a]! < tl.l2.stamp[b]! && tl.l2.stamp[b]! < tl.itlb.stamp[c]!);
  assert.is(tl.dtlb.now, tl.clock.now);
  tl.reset();
  assert.is(tl.clock.now, 0);
  assert.is(tl.valid, 0);
});

// ---- flushes and invalidation ----
const flush = suite('tlb: flushes, INVLPG, generations');

flush('global entries survive flush(true) and not flush(false)', () => {
  const t = new TlbLevel('T', { entries: 16, ways: 4 }, { entries: 8, ways: 4 });
  t.fillSmall(1, 1, ALL | TLBF_G, ALLOW);
  t.fillSmall(2, 2, ALL, ALLOW);
  t.fillLarge(3, 0x400, ALL | TLBF_G, ALLOW);
  t.fillLarge(4, 0x600, ALL, ALLOW);
  t.flush(true);
  assert.ok(t.lookupSmall(1) >= 0);
  assert.is(t.lookupSmall(2), -1);
  assert.ok(t.lookupLarge(3) >= 0);
  assert.is(t.lookupLarge(4), -1);
  assert.is(t.valid, 2);
  t.flush(false);
  assert.is(t.lookupSmall(1), -1);
  assert.is(t.lookupLarge(3), -1);
  assert.is(t.valid, 0);
});

flush('invalidateVa drops the 4 KiB entry and the large entry (4 MiB or 2 MiB by mode)', () => {
  const t = new TlbLevel('T', { entries: 16, ways: 4 }, { entries: 8, ways: 4 });
  const va = 0x40a12345;
  t.fillSmall(va >>> 12, 1, ALL | TLBF_G, ALLOW);
  t.fillSmall((va >>> 12) + 1, 1, ALL, ALLOW);
  t.fillLarge(va >>> 22, 0x400, ALL | TLBF_G, ALLOW);
  t.fillLarge(va >>> 21, 0x400, ALL, ALLOW);
  t.invalidateVa(va, false);
  assert.is(t.lookupSmall(va >>> 12), -1, 'global 4 KiB entry dropped too');
  assert.ok(t.lookupSmall((va >>> 12) + 1) >= 0, 'the next page stays');
  assert.is(t.lookupLarge(va >>> 22), -1, '4 MiB entry dropped');
  assert.ok(t.lookupLarge(va >>> 21) >= 0, 'PAE-numbered entry untouched in 2-level mode');
  t.invalidateVa(va, true);
  assert.is(t.lookupLarge(va >>> 21), -1, '2 MiB entry dropped under PAE');
  assert.is(t.valid, 1);
});

flush('a filled slot has a non-zero generation, an invalidated one zero, a refill a new one', () => {
  const t = new TlbLevel('T', { entries: 4, ways: 4 }, { entries: 0, ways: 1 });
  const s = t.fillSmall(5, 1, ALL, ALLOW);
  const g1 = t.gen[s]!;
  assert.ok(g1 !== 0);
  t.invalidateSlot(s);
  assert.is(t.gen[s], 0);
  assert.is(t.tag[s], -1);
  const s2 = t.fillSmall(5, 1, ALL, ALLOW);
  assert.ok(t.gen[s2] !== 0 && t.gen[s2] !== g1);
});

flush('the watcher is told of every change of a valid slot, with its old tag', () => {
  const t = new TlbLevel('T', { entries: 4, ways: 4 }, { entries: 2, ways: 2 });
  const seen: string[] = [];
  t.watcher = {
    tlbSlotChanging: (level, slot, tag) => {
      assert.is(level, t);
      seen.push(`${slot}:${tag}`);
    },
  };
  const a = t.fillSmall(10, 1, ALL, ALLOW);
  const b = t.fillSmall(11, 1, ALL, ALLOW);
  const l = t.fillLarge(3, 0x400, ALL | TLBF_G, ALLOW);
  assert.equal(seen, [], 'filling invalid slots changes nothing cached');
  t.fillSmall(10, 2, ALL, ALLOW); // refill in place
  assert.equal(seen, [`${a}:10`]);
  for (const v of [12, 13, 14]) t.fillSmall(v, 1, ALL, ALLOW); // the third evicts the LRU way (11)
  assert.equal(seen.slice(1), [`${b}:11`]);
  t.recomputeAllow(false, false);
  assert.is(seen.length, 2 + t.valid);
  seen.length = 0;
  t.invalidateVa(3 << 21, true);
  assert.equal(seen, [`${l}:3`]);
  t.invalidateSlot(l);
  assert.is(seen.length, 1, 'an invalid slot reports nothing');
  t.flush(false);
  assert.is(seen.length, 5);
});

// ---- permissions ----
const perms = suite('tlb: allow masks');

const R_S = 1, R_U = 2, W_S = 4, W_U = 8, X_S = 16, X_U = 32;

perms('allowMask follows SDM 4.6 for each flag combination', () => {
  // user read/write, dirty
  assert.is(allowMask(TLBF_RW | TLBF_US | TLBF_D, true, true), R_S | R_U | W_S | W_U | X_S | X_U);
  // clean entry: no write may complete without a walk (D must be set)
  assert.is(allowMask(TLBF_RW | TLBF_US, true, true), R_S | R_U | X_S | X_U);
  // read-only, dirty: supervisor writes only with WP clear, user writes never
  assert.is(allowMask(TLBF_US | TLBF_D, true, false), R_S | R_U | X_S | X_U);
  assert.is(allowMask(TLBF_US | TLBF_D, false, false), R_S | R_U | W_S | X_S | X_U);
  // supervisor page: no user access at all
  assert.is(allowMask(TLBF_RW | TLBF_D, true, true), R_S | W_S | X_S);
  // XD counts only with EFER.NXE
  assert.is(allowMask(TLBF_RW | TLBF_US | TLBF_D | TLBF_NX, true, true), R_S | R_U | W_S | W_U);
  assert.is(allowMask(TLBF_RW | TLBF_US | TLBF_D | TLBF_NX, true, false), R_S | R_U | W_S | W_U | X_S | X_U);
});

perms('recomputeAllow re-derives masks under new WP/NXE and renews generations', () => {
  const t = new TlbLevel('T', { entries: 4, ways: 4 }, { entries: 0, ways: 1 });
  const ro = TLBF_US | TLBF_D | TLBF_NX;
  const s = t.fillSmall(1, 1, ro, allowMask(ro, true, true));
  const g = t.gen[s]!;
  assert.is(t.allow[s], R_S | R_U);
  t.recomputeAllow(false, false);
  assert.is(t.allow[s], R_S | R_U | W_S | X_S | X_U);
  assert.ok(t.gen[s] !== g, 'a cached copy of the old mask must be invalid');
  assert.is(t.valid, 1, 'nothing flushed');
});

placement.run();
lru.run();
flush.run();
perms.run();
