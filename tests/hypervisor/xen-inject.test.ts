/**
 * The mmu_update fault-injection point (XenHypercalls.failMmuUpdateAt, used
 * by `pvmmu inject --refuse-hypercall`): the k-th call fails after its first
 * request; what was applied stays applied and validated, the rest is not
 * applied, the refusal is counted, and Xen's invariants hold. Inside a
 * multicall the following entries still run (partial completion).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkXenInvariants, ENOMEM, type MulticallEntry } from '../../hypervisor/xen/index.js';
import { makeWorld, mfn, mkpte, PAGE_KERNEL, pdep, ptep, kva, userMm, USER_RW, UVA, type XW } from './xen-world.js';

const RULE = 'Injected mmu_update failure (out of memory) at request … of …';

function entry(w: XW, gpa: number): bigint {
  return w.pae ? w.b.mem.read64(gpa) : BigInt(w.b.mem.read32(gpa) >>> 0);
}

for (const pae of [true, false]) {
  const label = pae ? 'PAE' : '2-level';

  test(`${label}: the k-th mmu_update call applies its first request, refuses the rest`, () => {
    const w = makeWorld(pae);
    const { pt } = userMm(w);
    const va2 = UVA + 4096;
    const va3 = UVA + 8192;
    const v2 = mkpte(w, w.D0 + 9, USER_RW);
    const v3 = mkpte(w, w.D0 + 10, USER_RW);
    const ma = (va: number): number => mfn(w, pt) * 4096 + ptep(w, 0, va);
    const hv = w.b.hv;
    const refusals = w.b.stats.refusals[RULE] ?? 0;
    hv.failMmuUpdateAt(2);
    // Call 1: not the injected one.
    const ok = hv.mmu_update([{ ptr: ma(va2), val: v2 }]);
    assert.is(ok.rc, 0);
    assert.is(hv.injectedMmuUpdate, null);
    // Call 2: two requests; the first is applied, the second refused.
    const r = hv.mmu_update([
      { ptr: ma(va3), val: v3 },
      { ptr: ma(UVA + 3 * 4096), val: mkpte(w, w.D0 + 11, USER_RW) },
    ]);
    assert.is(r.rc, -ENOMEM);
    assert.is(r.done, 1);
    assert.ok(r.refusal);
    assert.is(r.refusal!.rule, RULE);
    assert.match(r.refusal!.reason, /at request 1 of 2: 1 done/);
    assert.equal(hv.injectedMmuUpdate, { k: 2, done: 1, of: 2, inMulticall: false });
    assert.is(entry(w, ptep(w, pt, va3)), v3, 'the first request was applied');
    assert.is(entry(w, ptep(w, pt, UVA + 3 * 4096)), 0n, 'the second was not');
    assert.is(w.b.stats.refusals[RULE], refusals + 1);
    // The applied update holds a type reference like any other: invariants clean.
    assert.equal(checkXenInvariants(w.b), []);
    // One shot: the next call goes through.
    assert.is(hv.mmu_update([{ ptr: ma(UVA + 3 * 4096), val: mkpte(w, w.D0 + 11, USER_RW) }]).rc, 0);
    assert.equal(checkXenInvariants(w.b), []);
    assert.is(w.b.access(UVA + 8192, 0, true).ok, true, 'the applied mapping works after a TLB flush');
  });

  test(`${label}: a one-request call fails outright; inside a multicall later entries still run`, () => {
    const w = makeWorld(pae);
    const hv = w.b.hv;
    const d0 = ptep(w, w.kpt, kva(w, w.D0 + 40));
    const d1 = ptep(w, w.kpt, kva(w, w.D0 + 41));
    const kptMa = (gpa: number): number => mfn(w, w.kpt) * 4096 + (gpa % 4096);
    const before = entry(w, d0);
    hv.failMmuUpdateAt(1);
    const one = hv.mmu_update([{ ptr: kptMa(d0), val: mkpte(w, w.D0 + 40, PAGE_KERNEL) }]);
    assert.is(one.rc, -ENOMEM);
    assert.is(one.done, 0);
    assert.is(entry(w, d0), before, 'nothing applied');
    hv.failMmuUpdateAt(1);
    const entries: MulticallEntry[] = [
      { op: 'mmu_update' as const, reqs: [{ ptr: kptMa(d0), val: mkpte(w, w.D0 + 40, PAGE_KERNEL) }] },
      { op: 'mmu_update' as const, reqs: [{ ptr: kptMa(d1), val: mkpte(w, w.D0 + 41, PAGE_KERNEL) }] },
    ];
    const rcs = hv.multicall(entries);
    assert.equal(rcs, [-ENOMEM, 0]);
    assert.is(entries[0]!.refusal?.rule, RULE);
    assert.equal(hv.injectedMmuUpdate, { k: 1, done: 0, of: 1, inMulticall: true });
    assert.is(entry(w, d0), before);
    assert.is(entry(w, d1), mkpte(w, w.D0 + 41, PAGE_KERNEL), 'the multicall went on after the failed entry');
    assert.equal(checkXenInvariants(w.b), []);
    // Disarmed: nothing fails.
    hv.failMmuUpdateAt(3);
    hv.failMmuUpdateAt(null);
    for (let i = 0; i < 4; i++) assert.is(hv.mmu_update([{ ptr: kptMa(d0), val: mkpte(w, w.D0 + 40, PAGE_KERNEL) }]).rc, 0);
    assert.throws(() => hv.failMmuUpdateAt(0), /positive integer/);
  });

  test(`${label}: through the guest-side port the refusal is thrown (Linux BUGs), Xen's state stays consistent`, () => {
    const w = makeWorld(pae);
    const u = userMm(w);
    w.b.hv.failMmuUpdateAt(1);
    // set_pmd is always an mmu_update (2.6.23 xen_set_pmd).
    const pmdp = pdep(w, u.pgd, u.pmds, UVA);
    const old = entry(w, pmdp);
    assert.throws(
      () => w.b.set_pmd(pmdp, 0n),
      (e: Error) => /Injected mmu_update failure/.test(e.message),
    );
    assert.is(entry(w, pmdp), old);
    assert.ok(old !== 0n);
    assert.equal(checkXenInvariants(w.b), []);
  });
}

test.run();
