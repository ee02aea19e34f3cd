/**
 * The hypercalls' observable details the other Xen tests leave open (issue
 * 14, the mutation score of hypervisor/xen/hypercalls.ts): the trace slices
 * each hypercall and trap reports to a listener (name, arguments, start and
 * length in cycles, `in: 'multicall'`), exact return codes (Xen returns
 * negative errnos), the refusal's operation and frame, multicall's
 * write-back, the batched charge, vm_assist's type check, guest_map_l1e's
 * misses, ptwr's alignment rule and the fault-injection countdown.
 */
import { suite } from '../harness.js';
import * as assert from 'uvu/assert';
import {
  checkXenInvariants,
  createXenBackend,
  EINVAL,
  ENOMEM,
  ENOSYS,
  MMU_MACHPHYS_UPDATE,
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L2_TABLE,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_UNPIN_TABLE,
  UVMF_INVLPG,
  UVMF_TLB_FLUSH,
  VMASST_CMD_ENABLE,
  XenBackend,
  type MulticallEntry,
} from '../../hypervisor/xen/index.js';
import type { BackendEvent } from '../../hypervisor/stats.js';
import { hex } from '../../emulator/hex.js';
import { alloc, checkedSuite, cfg, expectRefusal, hx, KERNPG_TABLE, makeWorld, mfn, mkpmd, mkpte, P, PAGE_KERNEL, PAGE_TABLE, pdep, pgdAlloc, state, UVA, type XW } from './xen-world.js';

const { s, world } = checkedSuite('xen hypercalls: traces, return codes, write-back, injection');

/** Run `fn` with a listener attached: the events, and the cycle clock before and after. */
function traced<T>(w: XW, fn: () => T): { events: BackendEvent[]; c0: number; c1: number; r: T } {
  const events: BackendEvent[] = [];
  w.b.stats.listener = (e) => events.push(e);
  const c0 = w.b.stats.cycles;
  try {
    const r = fn();
    return { events, c0, c1: w.b.stats.cycles, r };
  } finally {
    w.b.stats.listener = null;
  }
}

s('mmu_update: one slice (batch, done, rc, first mfn and ptr), no `in`; two plain writes take 4 type-count changes', () => {
  const w = world(true);
  const a = mfn(w, alloc(w));
  const b = mfn(w, alloc(w));
  const ft = w.b.domain.frames;
  const refs = ft.typeRefChanges;
  const t = traced(w, () =>
    w.b.hv.mmu_update([
      { ptr: a * 4096 + 8, val: 0x11n },
      { ptr: b * 4096 + 16, val: 0x22n },
    ]),
  );
  assert.equal(t.r, { rc: 0, done: 2 });
  assert.is(w.b.mem.read64(w.b.domain.p2m.mfnToPfn(b) * 4096 + 16), 0x22n, 'the second request was applied');
  // not_a_pt: get_page_type(writable) and put_page_type for each request.
  assert.is(ft.typeRefChanges - refs, 4);
  assert.equal(t.events, [
    { kind: 'hypercall', name: 'mmu_update', at: t.c0, cycles: t.c1 - t.c0, args: { batch: 2, done: 2, rc: 0, mfn: hex(a), ptr: hex(a * 4096 + 8) } },
  ]);
  assert.ok(t.c1 > t.c0);
  // An empty call: no request, so no mfn or ptr.
  const e = traced(w, () => w.b.hv.mmu_update([]));
  assert.equal(e.r, { rc: 0, done: 0 });
  assert.equal(e.events, [{ kind: 'hypercall', name: 'mmu_update', at: e.c0, cycles: e.c1 - e.c0, args: { batch: 0, done: 0, rc: 0 } }]);
  assert.is(e.c1 - e.c0, w.b.domain.costs.hypercall, 'an empty call is the round trip alone');
});

s('mmu_update failures: exact negative errnos, the failing request\'s mfn, op "mmu_update"', () => {
  const w = world(true);
  const a = mfn(w, alloc(w));
  const xen = w.b.domain.hole.holeL1;
  // A normal update of Xen's frame after one good request.
  let r = w.b.hv.mmu_update([
    { ptr: a * 4096, val: 1n },
    { ptr: xen * 4096 + 8, val: 0n },
  ]);
  assert.is(r.rc, -EINVAL);
  assert.is(r.done, 1);
  assert.is(r.refusal?.op, 'mmu_update');
  assert.is(r.refusal?.mfn, xen);
  assert.is(r.refusal?.reason, 'Could not get page for normal update');
  // MMU_MACHPHYS_UPDATE of a frame that is not the guest's.
  r = w.b.hv.mmu_update([{ ptr: xen * 4096 + MMU_MACHPHYS_UPDATE, val: 5n }]);
  assert.equal([r.rc, r.done, r.refusal?.mfn, r.refusal?.op], [-EINVAL, 0, xen, 'mmu_update']);
  // A command Xen 3.1 does not know (ptr & 7 == 2 under PAE): -ENOSYS.
  r = w.b.hv.mmu_update([{ ptr: a * 4096 + 2, val: 0n }]);
  assert.equal([r.rc, r.done, r.refusal?.reason, r.refusal?.mfn], [-ENOSYS, 0, 'Invalid page update command 2', a]);
  assert.is(w.b.mem.read64(w.b.domain.p2m.mfnToPfn(a) * 4096), 1n, 'nothing written by the bad command');
  // The trace of a failed call: the refusal instant, then the slice with the rc.
  const t = traced(w, () => w.b.hv.mmu_update([{ ptr: xen * 4096 + 4 * 8, val: 0n }]));
  assert.equal(t.events, [
    { kind: 'refusal', name: 'Could not get page for normal update', at: t.events[0]!.at },
    { kind: 'hypercall', name: 'mmu_update', at: t.c0, cycles: t.c1 - t.c0, args: { batch: 1, done: 0, rc: -EINVAL, mfn: hex(xen), ptr: hex(xen * 4096 + 32) } },
  ]);
});

s('mmu_update into a live L1: get/put_page_type around it (2 type-count changes), one entry read and written', () => {
  const w = world(true);
  const d = w.b.domain;
  const kpt = mfn(w, w.kpt);
  const idx = 0x100 + 3; // the kernel pte of D0+3, present RW
  const before = d.mmu.mem.read64(kpt * 4096 + 8 * idx);
  const refs = d.frames.typeRefChanges;
  const reads = d.rules.entriesRead;
  const writes = d.rules.entriesWritten;
  const r = w.b.hv.mmu_update([{ ptr: kpt * 4096 + 8 * idx, val: before }]);
  assert.equal(r, { rc: 0, done: 1 });
  assert.is(d.frames.typeRefChanges - refs, 2, 'same frame, same RW: no reference beyond the L1\'s own get/put');
  assert.is(d.rules.entriesRead - reads, 1);
  assert.is(d.rules.entriesWritten - writes, 1);
  assert.is(d.frames.countOf(kpt), 1, 'the L1 keeps its one reference');
});

s('mmuext_op: the slice names every command (unknown ones as cmdN), the first op\'s mfn or va, no `in`', () => {
  const w = world(true);
  const hv = w.b.hv;
  let t = traced(w, () => hv.mmuext_op([{ cmd: MMUEXT_TLB_FLUSH_LOCAL }, { cmd: MMUEXT_INVLPG_LOCAL, linearAddr: UVA }]));
  assert.equal(t.r, { rc: 0, done: 2 });
  assert.equal(t.events, [
    { kind: 'hypercall', name: 'mmuext_op', at: t.c0, cycles: t.c1 - t.c0, args: { batch: 2, done: 2, rc: 0, cmd: 'TLB_FLUSH_LOCAL,INVLPG_LOCAL' } },
  ]);
  t = traced(w, () => hv.mmuext_op([{ cmd: MMUEXT_INVLPG_LOCAL, linearAddr: UVA }]));
  assert.equal(t.events[0]!.args, { batch: 1, done: 1, rc: 0, cmd: 'INVLPG_LOCAL', va: hex(UVA) });
  const pt = alloc(w);
  const ptm = mfn(w, pt);
  t = traced(w, () => hv.mmuext_op([{ cmd: MMUEXT_PIN_L1_TABLE, mfn: ptm }, { cmd: MMUEXT_UNPIN_TABLE, mfn: ptm }]));
  assert.equal(t.events, [
    { kind: 'hypercall', name: 'mmuext_op', at: t.c0, cycles: t.c1 - t.c0, args: { batch: 2, done: 2, rc: 0, cmd: 'PIN_L1_TABLE,UNPIN_TABLE', mfn: hex(ptm) } },
  ]);
  t = traced(w, () => hv.mmuext_op([]));
  assert.equal(t.events[0]!.args, { batch: 0, done: 0, rc: 0, cmd: '' });
  // An unknown command: -ENOSYS, counted and refused under its number.
  const n = w.b.stats.hypercalls['mmuext_op:cmd99'] ?? 0;
  t = traced(w, () => hv.mmuext_op([{ cmd: 99 }]));
  assert.equal(t.r.rc, -ENOSYS);
  assert.is(t.r.refusal?.op, 'mmuext_op cmd99');
  assert.is(w.b.stats.hypercalls['mmuext_op:cmd99'], n + 1);
  assert.equal(t.events.at(-1)!.args, { batch: 1, done: 0, rc: -ENOSYS, cmd: 'cmd99' });
});

s('mmuext_op refusals: PIN and UNPIN of a frame that is not the guest\'s, a PIN naming no frame; exact -EINVAL', () => {
  const w = world(true);
  const hv = w.b.hv;
  const xen = w.b.domain.hole.holeL1;
  const before = state(w);
  let r = hv.mmuext_op([{ cmd: MMUEXT_PIN_L1_TABLE, mfn: xen }]);
  assert.is(r.rc, -EINVAL);
  assert.equal(r.refusal?.log, [`Could not get page ref for pfn ${hx(xen)}`, `Error while pinning mfn ${hx(xen)}`]);
  assert.is(r.refusal?.op, 'mmuext_op PIN_L1_TABLE');
  assert.is(r.refusal?.mfn, xen);
  assert.not.ok(w.b.domain.frames.has(xen), 'Xen\'s frame is never typed');
  r = hv.mmuext_op([{ cmd: MMUEXT_UNPIN_TABLE, mfn: xen }]);
  assert.is(r.rc, -EINVAL);
  assert.equal(r.refusal?.log, [`Mfn ${hx(xen)} bad domain (dom=xen)`]);
  // No mfn at all: not a frame of the guest, nothing pinned.
  const pins = w.b.stats.pinned;
  r = hv.mmuext_op([{ cmd: MMUEXT_PIN_L2_TABLE }]);
  assert.is(r.rc, -EINVAL);
  assert.is(w.b.stats.pinned, pins);
  assert.is(state(w), before);
});

s('multicall: inner slices marked `in: multicall` and back to back, then the multicall slice; entries written back exactly', () => {
  const w = world(true);
  const d = w.b.domain;
  const a = mfn(w, alloc(w));
  const entries: MulticallEntry[] = [
    { op: 'mmu_update', reqs: [{ ptr: a * 4096, val: 7n }] },
    { op: 'mmuext_op', ops: [{ cmd: MMUEXT_TLB_FLUSH_LOCAL }] },
    { op: 'update_va_mapping', va: d.hole.start, val: 0n, flags: 0 },
    { op: 'vm_assist', cmd: VMASST_CMD_ENABLE, type: 9 },
    { op: 'vm_assist', cmd: VMASST_CMD_ENABLE, type: 1 },
  ];
  const calls = { ...w.b.stats.hypercalls };
  const t = traced(w, () => w.b.hv.multicall(entries));
  assert.equal(t.r, [0, 0, -EINVAL, -EINVAL, 0]);
  assert.equal(entries[0], { op: 'mmu_update', reqs: [{ ptr: a * 4096, val: 7n }], result: 0 }, 'no refusal key on success');
  assert.equal(entries[1], { op: 'mmuext_op', ops: [{ cmd: MMUEXT_TLB_FLUSH_LOCAL }], result: 0 });
  assert.equal(entries[2], { op: 'update_va_mapping', va: d.hole.start, val: 0n, flags: 0, result: -EINVAL }, 'no L1: no refusal');
  assert.is(entries[3]!.result, -EINVAL);
  assert.is(entries[3]!.refusal?.op, 'vm_assist');
  assert.equal(entries[4], { op: 'vm_assist', cmd: VMASST_CMD_ENABLE, type: 1, result: 0 });
  assert.ok(d.assists.has(1), 'the vm_assist entry ran as vm_assist');
  const ev = t.events.filter((e) => e.kind === 'hypercall');
  assert.equal(
    ev.map((e) => [e.name, e.args]),
    [
      ['mmu_update', { batch: 1, done: 1, rc: 0, mfn: hex(a), ptr: hex(a * 4096), in: 'multicall' }],
      ['mmuext_op', { batch: 1, done: 1, rc: 0, cmd: 'TLB_FLUSH_LOCAL', in: 'multicall' }],
      ['update_va_mapping', { va: hex(d.hole.start), val: '0x0', flags: 0, rc: -EINVAL, in: 'multicall' }],
      ['multicall', { batch: 5, calls: 'mmu_update,mmuext_op,update_va_mapping,vm_assist,vm_assist', failed: 2 }],
    ],
  );
  const co = d.costs;
  assert.is(ev[0]!.at, t.c0 + co.hypercall, 'the multicall\'s one round trip, then the first entry');
  assert.is(ev[1]!.at, ev[0]!.at + ev[0]!.cycles!);
  assert.is(ev[2]!.at, ev[1]!.at + ev[1]!.cycles!);
  assert.is(ev[2]!.cycles, co.multicallEntry, 'an update_va_mapping finding no L1 is its dispatch alone');
  assert.equal([ev[3]!.at, ev[3]!.cycles], [t.c0, t.c1 - t.c0]);
  // The two vm_assists: one dispatch each, nothing else.
  assert.is(t.c1, ev[2]!.at + ev[2]!.cycles! + 2 * co.multicallEntry);
  assert.is(w.b.stats.hypercalls.multicall, (calls.multicall ?? 0) + 1);
  assert.is(w.b.stats.hypercalls.vm_assist, (calls.vm_assist ?? 0) + 2);
  assert.is(w.b.stats.hypercalls.update_va_mapping, (calls.update_va_mapping ?? 0) + 1);
  assert.ok(co.hypercall !== co.multicallEntry, 'the two charges differ (else the checks above prove less)');
});

s('vm_assist: a direct call is one round trip; types below 0, not integers or above 3 are -EINVAL, unknown commands -ENOSYS', () => {
  const w = world(false);
  const hv = w.b.hv;
  const c0 = w.b.stats.cycles;
  const n = w.b.stats.hypercalls.vm_assist ?? 0;
  assert.equal(hv.vm_assist(VMASST_CMD_ENABLE, 3), { rc: 0, done: 1 });
  assert.is(w.b.stats.cycles - c0, w.b.domain.costs.hypercall);
  assert.is(w.b.stats.hypercalls.vm_assist, n + 1);
  for (const type of [-1, 1.5, 4, 2 ** 32]) {
    const r = hv.vm_assist(VMASST_CMD_ENABLE, type);
    assert.is(r.rc, -EINVAL, `type ${type}`);
    assert.is(r.done, 0);
    assert.is(r.refusal?.op, 'vm_assist');
    assert.is(r.refusal?.reason, `(no log line) vm_assist: type ${type} above MAX_VMASST_TYPE (3)`);
  }
  const r = hv.vm_assist(5, 0);
  assert.equal([r.rc, r.refusal?.op, r.refusal?.reason], [-ENOSYS, 'vm_assist', '(no log line) vm_assist: unknown command 5']);
});

s('update_va_mapping: slice without `in`; flags flush the TLB or one entry; exact -EINVAL, refusal only when an L1 refused', () => {
  const w = world(true);
  const b = w.b;
  const c = b.stats.mmu;
  const kv = (w.pageOffset + (w.D0 + 4) * 4096) >>> 0;
  const val = mkpte(w, w.D0 + 4, PAGE_KERNEL);
  let cr3 = c.cr3Writes;
  let inv = c.invlpgs;
  let t = traced(w, () => b.hv.update_va_mapping(kv, val, UVMF_TLB_FLUSH));
  assert.equal(t.r, { rc: 0, done: 1 });
  assert.equal(t.events, [
    { kind: 'hypercall', name: 'update_va_mapping', at: t.c0, cycles: t.c1 - t.c0, args: { va: hex(kv), val: hex(val), flags: UVMF_TLB_FLUSH, rc: 0 } },
  ]);
  assert.equal([c.cr3Writes - cr3, c.invlpgs - inv], [1, 0], 'UVMF_TLB_FLUSH: the local TLB');
  cr3 = c.cr3Writes;
  assert.is(b.hv.update_va_mapping(kv, val, UVMF_INVLPG).rc, 0);
  assert.equal([c.cr3Writes - cr3, c.invlpgs - inv], [0, 1], 'UVMF_INVLPG: one entry');
  inv = c.invlpgs;
  assert.is(b.hv.update_va_mapping(kv, val, 0).rc, 0);
  assert.equal([c.cr3Writes - cr3, c.invlpgs - inv], [0, 0], 'no flag: no flush');
  // A refused entry (Bad L1 flags): -EINVAL with the refusal, on the L1.
  const refused = b.hv.update_va_mapping(kv, val | (1n << 7n), 0);
  assert.is(refused.rc, -EINVAL);
  assert.is(refused.refusal?.op, 'update_va_mapping');
  assert.is(refused.refusal?.mfn, mfn(w, w.kpt));
  // No L1 maps the address: -EINVAL without a refusal, nothing changed, even with a flush flag.
  const before = state(w);
  const refusals = { ...b.stats.refusals };
  assert.equal(b.hv.update_va_mapping(UVA, mkpte(w, w.D0, PAGE_KERNEL), 0), { rc: -EINVAL, done: 0 }, 'no L2 entry for the address');
  assert.equal(b.hv.update_va_mapping(b.domain.hole.start, 0n, 0), { rc: -EINVAL, done: 0 }, 'in the hole');
  assert.equal(b.hv.update_va_mapping(0xffffffff, 0n, 0), { rc: -EINVAL, done: 0 }, 'top of the hole');
  assert.is(state(w), before);
  assert.equal(b.stats.refusals, refusals);
});

s('update_va_mapping finds no L1: no base yet, an absent L3 slot (PAE), an absent L2 entry (2-level); an L1 at mfn 0 is found', () => {
  // No base pointer yet.
  const fresh = createXenBackend(cfg(true));
  const reads = fresh.domain.rules.entriesRead;
  assert.equal(fresh.hv.update_va_mapping(0x1000, 0n, 0), { rc: -EINVAL, done: 0 });
  assert.is(fresh.domain.rules.entriesRead, reads, 'no table to read');
  assert.equal(checkXenInvariants(fresh), []);
  // PAE: a pgd whose L3 slot 0 is empty, pinned and loaded.
  const w = world(true);
  const { pgd } = pgdAlloc(w);
  w.b.mem.write64(pgd * 4096, 0n);
  // Guest frame 0 (mfn 0) holds what would be UVA's pmd entry: an absent L3 slot is not a pointer to frame 0.
  const decoy = alloc(w);
  w.b.mem.write64(8 * ((UVA >>> 21) & 511), mkpmd(w, decoy, KERNPG_TABLE));
  const mm = { pgd: pgd * 4096 };
  w.b.activate_mm(w.initMm, mm);
  w.b.write_cr3(pgd * 4096);
  const before = state(w);
  assert.equal(w.b.hv.update_va_mapping(UVA, mkpte(w, w.D0, PAGE_KERNEL), 0), { rc: -EINVAL, done: 0 });
  assert.is(state(w), before);
  // 2-level: no L2 entry for UVA in swapper's pgd; then an L1 in guest frame 0 (mfn 0 in the identity layout).
  const v = world(false);
  const vb = state(v);
  assert.equal(v.b.hv.update_va_mapping(UVA, mkpte(v, v.D0, PAGE_KERNEL), 0), { rc: -EINVAL, done: 0 });
  assert.is(state(v), vb);
  assert.is(mfn(v, 0), 0);
  v.b.mem.zeroPage(0);
  v.b.alloc_pt(0);
  v.b.set_pmd(pdep(v, v.base, [], UVA), mkpmd(v, 0, PAGE_TABLE));
  const pte = mkpte(v, v.D0 + 2, P | 4n);
  assert.equal(v.b.hv.update_va_mapping(UVA, pte, 0), { rc: 0, done: 1 });
  assert.is(v.b.mem.read32(4 * ((UVA >>> 12) & 1023)), Number(pte));
});

s('iret: counted and traced as a hypercall of one round trip', () => {
  const w = world(false);
  const n = w.b.stats.hypercalls.iret ?? 0;
  const t = traced(w, () => w.b.hv.iret());
  assert.equal(t.events, [{ kind: 'hypercall', name: 'iret', at: t.c0, cycles: w.b.domain.costs.hypercall, args: {} }]);
  assert.is(w.b.stats.hypercalls.iret, n + 1);
});

s('ptwr: a trap slice (mfn, offset, bytes, value, va), also when refused; only naturally aligned stores within one entry', () => {
  const w = world(true);
  const hv = w.b.hv;
  const kpt = mfn(w, w.kpt);
  const va = 0xc0000000 + 300 * 4096; // the address whose pte the store writes (any address: it is only reported)
  const val = mkpte(w, w.D0 + 20, P);
  const t = traced(w, () => hv.ptwr(kpt, 8 * 300, 8, val, va));
  assert.is(w.b.mem.read64(w.kpt * 4096 + 8 * 300), val);
  assert.equal(t.events, [
    { kind: 'trap', name: 'ptwr_emulate', at: t.c0, cycles: t.c1 - t.c0, args: { mfn: hex(kpt), offset: hex(2400), bytes: 8, value: hex(val), va: hex(va) } },
  ]);
  const before = state(w);
  // Not naturally aligned: a 4-byte store at offset 2 of an entry; an 8-byte store at offset 4.
  const t2 = traced(w, () => expectRefusal(() => hv.ptwr(kpt, 8 * 301 + 2, 4, 0x1234n, va), `Bad ptwr access (cr2=${hx(va)}, addr=${hx(va)}, bytes=4)`));
  assert.is(t2.r.op, 'ptwr_emulated_update');
  assert.is(t2.r.mfn, kpt);
  assert.equal(t2.events.map((e) => [e.kind, e.name]), [['refusal', 'Bad ptwr access (cr2=…, addr=…, bytes=…)'], ['trap', 'ptwr_emulate']]);
  assert.equal(t2.events[1]!.args, { mfn: hex(kpt), offset: hex(8 * 301 + 2), bytes: 4, value: '0x1234', va: hex(va) });
  expectRefusal(() => hv.ptwr(kpt, 8 * 301 + 4, 8, val, va), `Bad ptwr access (cr2=${hx(va)}, addr=${hx(va)}, bytes=8)`);
  // A store Xen cannot validate: refused under the same op.
  const bad = expectRefusal(() => hv.ptwr(kpt, 8 * 301, 8, val | (1n << 8n), va), 'Bad L1 flags 100');
  assert.is(bad.op, 'ptwr_emulated_update');
  assert.equal(bad.log.at(-1), 'ptwr_emulate: could not get_page_from_l1e()');
  assert.is(state(w), before);
  // 2-level: an entry is 4 bytes; an 8-byte store is refused (Xen: cmpxchg8b is unhandleable on 2-level).
  const v = world(false);
  const vkpt = mfn(v, v.kpt);
  const vb = state(v);
  const r = expectRefusal(() => v.b.hv.ptwr(vkpt, 4 * 600, 8, BigInt(mkpte(v, v.D0 + 20, P)), va), /./);
  assert.is(r.op, 'ptwr_emulated_update');
  assert.is(r.mfn, vkpt);
  assert.is(state(v), vb);
});

s('failMmuUpdateAt: the k-th call fails at its second request (a one-request call outright) with -ENOMEM; once', () => {
  const w = world(true);
  const hv = w.b.hv;
  const a = mfn(w, alloc(w));
  const b = mfn(w, alloc(w));
  const c = mfn(w, alloc(w));
  const word = (m: number): bigint => w.b.domain.mmu.mem.read64(m * 4096);
  hv.failMmuUpdateAt(1);
  let r = hv.mmu_update([{ ptr: a * 4096, val: 1n }]);
  assert.equal([r.rc, r.done, r.refusal?.op, r.refusal?.mfn], [-ENOMEM, 0, 'mmu_update', a]);
  assert.is(word(a), 0n, 'not applied');
  assert.equal(hv.injectedMmuUpdate, { k: 1, done: 0, of: 1, inMulticall: false });
  assert.equal(hv.mmu_update([{ ptr: a * 4096, val: 2n }]), { rc: 0, done: 1 }, 'once');
  hv.failMmuUpdateAt(2);
  assert.equal(hv.mmu_update([{ ptr: a * 4096, val: 3n }, { ptr: b * 4096, val: 3n }]), { rc: 0, done: 2 }, 'the first call goes through');
  assert.is(hv.injectedMmuUpdate, null);
  r = hv.mmu_update([{ ptr: a * 4096, val: 4n }, { ptr: b * 4096 + 8, val: 4n }, { ptr: c * 4096, val: 4n }]);
  assert.equal([r.rc, r.done, r.refusal?.mfn], [-ENOMEM, 1, b]);
  assert.is(r.refusal?.reason, 'Injected mmu_update failure (out of memory) at request 1 of 3: 1 done, the rest not applied');
  assert.equal([word(a), word(b), word(c)], [4n, 3n, 0n]);
  assert.equal(hv.injectedMmuUpdate, { k: 2, done: 1, of: 3, inMulticall: false });
  assert.equal(hv.mmu_update([{ ptr: a * 4096, val: 5n }, { ptr: b * 4096, val: 5n }]), { rc: 0, done: 2 });
  // In a multicall, and disarmed by null.
  hv.failMmuUpdateAt(1);
  const entries: MulticallEntry[] = [{ op: 'mmu_update', reqs: [{ ptr: a * 4096, val: 6n }, { ptr: b * 4096, val: 6n }] }];
  assert.equal(hv.multicall(entries), [-ENOMEM]);
  assert.equal(hv.injectedMmuUpdate, { k: 1, done: 1, of: 2, inMulticall: true });
  hv.failMmuUpdateAt(1);
  hv.failMmuUpdateAt(null);
  assert.equal(hv.mmu_update([{ ptr: a * 4096, val: 7n }, { ptr: b * 4096, val: 7n }]), { rc: 0, done: 2 });
  assert.throws(() => hv.failMmuUpdateAt(0), /k must be a positive integer/);
  assert.throws(() => hv.failMmuUpdateAt(1.5), /k must be a positive integer/);
});

s.run();
