import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Mmu } from '../../emulator/mmu.js';
import { CR4_PAE, CR4_PGE, PFEC_U, PTE_A, PTE_NX_HI } from '../../emulator/paging-bits.js';
import type { FlushEvent, MmuEvent, WalkEvent } from '../../emulator/trace.js';
import { pagingPae, Tables2, TablesPae, paging2, URW } from './tables.js';

const R_U = 1;

function recorder(): { events: MmuEvent[]; mmuEvent(e: MmuEvent): void } {
  const events: MmuEvent[] = [];
  return { events, mmuEvent: (e) => events.push(e) };
}

test('one walk event per miss, with every entry read (level, address, value) and the result', () => {
  const mmu = new Mmu();
  const t = new TablesPae(mmu.mem);
  t.map(0x40001000, 0x123456, URW, PTE_NX_HI);
  pagingPae(mmu);
  const sink = recorder();
  mmu.setTraceSink(sink);
  const c0 = mmu.cycles;
  const pa = mmu.translate(0x40001234, R_U);
  assert.is(pa, 0x1_2345_6234);
  assert.is(sink.events.length, 1);
  const e = sink.events[0] as WalkEvent;
  assert.is(e.type, 'walk');
  assert.is(e.va, 0x40001234);
  assert.is(e.access, 0);
  assert.is(e.user, true);
  assert.is(e.cr3, 0x1000);
  assert.is(e.pa, pa);
  assert.is(e.errorCode, undefined);
  assert.is(e.at, c0);
  assert.is(e.cycles, mmu.cycles - c0, 'the event carries the walk cost');
  assert.equal(e.entries.map((x) => x.level), ['pdpte', 'pde', 'pte']);
  assert.is(e.entries[0]!.pa, 0x1008);
  assert.is(e.entries[0]!.value, 0x3001n);
  assert.is(e.entries[1]!.pa, t.pdeAddr(0x40001000));
  assert.is(e.entries[1]!.value, BigInt(mmu.mem.read32(t.pdeAddr(0x40001000)) & ~PTE_A), 'the value as read, before A was set');
  assert.is(e.entries[2]!.pa, t.pteAddr(0x40001000));
  assert.is(e.entries[2]!.value, 0x80000000_00000000n | 0x1_23456_000n | BigInt(URW));
});

test('a faulting walk reports the error code and no address', () => {
  const mmu = new Mmu();
  const t = new Tables2(mmu.mem);
  t.map(0x1000, 0x11);
  paging2(mmu);
  const sink = recorder();
  mmu.setTraceSink(sink);
  assert.ok(mmu.translate(0x2000, R_U) < 0);
  const e = sink.events[0] as WalkEvent;
  assert.is(e.type, 'walk');
  assert.is(e.errorCode, PFEC_U);
  assert.is(e.pa, undefined);
  assert.equal(e.entries.map((x) => x.level), ['pde', 'pte']);
  assert.is(e.entries[1]!.value, 0n);
  assert.is(e.cycles, mmu.counters.walkCycles, 'entry reads plus the #PF delivery');
});

test('no event on a TLB hit', () => {
  const mmu = new Mmu();
  const t = new Tables2(mmu.mem);
  t.map(0x1000, 0x11);
  paging2(mmu);
  const sink = recorder();
  mmu.setTraceSink(sink);
  mmu.translate(0x1000, R_U);
  for (let i = 0; i < 10; i++) mmu.translate(0x1000 + i * 4, R_U);
  assert.is(mmu.counters.tlbHits, 10);
  assert.is(sink.events.length, 1);
});

test('one flush event per flush: CR3 (non-global), CR4 (full), INVLPG', () => {
  const mmu = new Mmu();
  new TablesPae(mmu.mem);
  pagingPae(mmu);
  const sink = recorder();
  mmu.setTraceSink(sink);
  const c0 = mmu.cycles;
  mmu.writeCr3(0x1000);
  mmu.writeCr4(CR4_PAE | CR4_PGE);
  mmu.invlpg(0x5000);
  const f = sink.events as FlushEvent[];
  assert.equal(f.map((e) => [e.type, e.kind]), [['flush', 'non-global'], ['flush', 'full'], ['flush', 'invlpg']]);
  assert.is(f[0]!.cycles, mmu.preset.cycles.cr3Write + mmu.preset.cycles.pdpteLoad);
  assert.is(f[0]!.at, c0);
  assert.is(f[1]!.cycles, mmu.preset.cycles.fullFlush + mmu.preset.cycles.pdpteLoad, 'PGE change under PAE reloads the PDPTEs');
  assert.is(f[2]!.va, 0x5000);
  assert.is(f[2]!.cycles, mmu.preset.cycles.invlpg);
  assert.is(f[2]!.at + f[2]!.cycles, mmu.cycles);
  // a #GP write changes nothing and reports nothing
  mmu.mem.write32(0x1000, mmu.mem.read32(0x1000) | 2);
  assert.is(mmu.writeCr3(0x1000), 'GP');
  assert.is(sink.events.length, 3);
});

test('detaching the sink stops events; tracing does not change the modelled outcome', () => {
  const run = (traced: boolean): [number[], string, number] => {
    const mmu = new Mmu();
    const t = new Tables2(mmu.mem);
    for (let p = 1; p < 40; p += 3) t.map(p * 4096, 0x100 + p);
    paging2(mmu);
    const sink = recorder();
    if (traced) mmu.setTraceSink(sink);
    const out: number[] = [];
    for (let i = 0; i < 200; i++) out.push(mmu.translate(((i * 7) % 40) * 4096 + i, i % 4));
    if (traced) {
      assert.ok(sink.events.length > 0);
      assert.is(mmu.traceSink, sink);
      mmu.setTraceSink(null);
      const n = sink.events.length;
      mmu.writeCr3(0x1000);
      mmu.translate(0x1000, R_U);
      mmu.invlpg(0x1000);
      assert.is(sink.events.length, n);
      assert.is(mmu.traceSink, null);
    } else {
      mmu.writeCr3(0x1000);
      mmu.translate(0x1000, R_U);
      mmu.invlpg(0x1000);
    }
    return [out, JSON.stringify(mmu.counters), mmu.cycles];
  };
  assert.equal(run(true), run(false));
});

test.run();
