/**
 * Pseudo-physical memory of the Xen backend: the p2m layouts (identity,
 * seeded shuffle, above 4 GiB), the m2p, and make_pte/pte_val translation
 * (frame of a present entry only, flags untouched).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createXenBackend } from '../../hypervisor/xen/index.js';
import { P2m } from '../../hypervisor/xen/p2m.js';

test('identity: mfn == pfn; m2p is the inverse; out of range is -1', () => {
  const p = new P2m(1024, 'identity', false, 1, true);
  assert.is(p.pfnToMfn(0), 0);
  assert.is(p.pfnToMfn(1023), 1023);
  assert.is(p.pfnToMfn(1024), -1);
  assert.is(p.pfnToMfn(-1), -1);
  assert.is(p.mfnToPfn(77), 77);
  assert.is(p.mfnToPfn(5000), -1);
});

test('shuffled: a permutation of the pool, the same for the same seed, different for another', () => {
  const a = new P2m(4096, 'shuffled', false, 42, true);
  const b = new P2m(4096, 'shuffled', false, 42, true);
  const c = new P2m(4096, 'shuffled', false, 43, true);
  const seen = new Set<number>();
  let moved = 0;
  let differ = 0;
  for (let pfn = 0; pfn < 4096; pfn++) {
    const m = a.pfnToMfn(pfn);
    assert.ok(m >= 0 && m < 4096);
    seen.add(m);
    assert.is(a.mfnToPfn(m), pfn);
    assert.is(b.pfnToMfn(pfn), m);
    if (m !== pfn) moved++;
    if (c.pfnToMfn(pfn) !== m) differ++;
  }
  assert.is(seen.size, 4096);
  assert.ok(moved > 4000, `only ${moved} frames moved`);
  assert.ok(differ > 4000);
});

test('above 4 GiB: half the guest frames at mfn >= 0x100000', () => {
  const p = new P2m(2048, 'identity', true, 1, true);
  assert.is(p.pfnToMfn(0), 0x100000 - 1024);
  assert.is(p.pfnToMfn(1023), 0xfffff);
  assert.is(p.pfnToMfn(1024), 0x100000);
  const s = new P2m(2048, 'shuffled', true, 9, true);
  let high = 0;
  for (let i = 0; i < 2048; i++) if (s.pfnToMfn(i) >= 0x100000) high++;
  assert.is(high, 1024);
});

test('make_pte/pte_val: a present entry\'s frame is translated, flags kept; non-present left alone', () => {
  for (const pae of [true, false]) {
    const b = createXenBackend({ pae, memBytes: 8 << 20, cpu: 'core2', pageOffset: 0xc0000000, seed: 3 }, { p2m: 'shuffled' });
    const p2m = b.domain.p2m;
    const pfn = 0x123;
    const mfn = p2m.pfnToMfn(pfn);
    assert.is.not(mfn, pfn, 'the shuffle moved this frame');
    const flags = 0x067n | (pae ? 1n << 63n : 0n);
    const v = (BigInt(pfn) << 12n) | flags;
    const m = b.make_pte(v);
    assert.is(m, (BigInt(mfn) << 12n) | flags);
    assert.is(b.pte_val(m), v);
    assert.is(b.pmd_val(b.make_pmd(v)), v);
    assert.is(b.pgd_val(b.make_pgd(v)), v);
    // A swap entry (not present) passes through untouched both ways.
    const swap = 0x12345678n & ~1n;
    assert.is(b.make_pte(swap), swap);
    assert.is(b.pte_val(swap), swap);
    // A pfn outside guest memory becomes the invalid frame (Xen then refuses it).
    const bad = b.make_pte((0x7ffffn << 12n) | 1n);
    assert.is(bad >> 12n, pae ? 0xffffffn : 0xfffffn);
    // Guest memory goes through the p2m too.
    b.mem.write32(pfn * 4096 + 8, 0xabcdef01);
    assert.is(b.domain.mmu.mem.read32(mfn * 4096 + 8), 0xabcdef01);
    assert.throws(() => b.mem.read32(b.mem.nrPages * 4096), RangeError);
  }
});

test.run();
