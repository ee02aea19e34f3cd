import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { breakdownSum, CC_KERNEL, getPreset } from '../../emulator/cost-model.js';
import { faultCode, Mmu } from '../../emulator/mmu.js';
import {
  CR0_PE,
  CR0_PG,
  CR0_WP,
  PFEC_ID,
  PFEC_P,
  PFEC_U,
  PFEC_W,
  PTE_D,
  PTE_G,
  PTE_NX_HI,
  PTE_P,
  PTE_PS,
  PTE_RW,
  PTE_US,
} from '../../emulator/paging-bits.js';
import { paging2, pagingPae, prng, Tables2, TablesPae, URW } from './tables.js';

const R_S = 0, R_U = 1, W_S = 2, W_U = 3, X_U = 5;

// ---- the modelled TLB decides hits and misses ----
const geo = suite('mmu: TLB hits and misses follow the modelled geometry');

/** core2: DTLB0 16 entries 4-way (4 sets), DTLB1 256 entries 4-way (64 sets). */
function core2With(pages: number[]): Mmu {
  const mmu = new Mmu({ cpu: 'core2' });
  const t = new Tables2(mmu.mem);
  for (const vpn of pages) t.map(vpn << 12, 0x1000 + vpn);
  paging2(mmu);
  return mmu;
}

geo('17 pages in one set of both DTLB levels: LRU evicts each before it returns, every access walks', () => {
  const pages = Array.from({ length: 17 }, (_, k) => 0x400 + 64 * k); // same set mod 4 and mod 64
  const mmu = core2With(pages);
  for (let round = 0; round < 3; round++) {
    for (const vpn of pages) assert.is(mmu.translate(vpn << 12, R_U), (0x1000 + vpn) * 4096);
  }
  assert.is(mmu.counters.tlbMisses, 51);
  assert.is(mmu.counters.walks, 51);
  assert.is(mmu.counters.tlbHits, 0);
  assert.is(mmu.counters.l2TlbHits, 0);
});

geo('4 pages in one DTLB0 set all stay: after the first round every access hits', () => {
  const pages = [0x400, 0x440, 0x480, 0x4c0];
  const mmu = core2With(pages);
  for (let round = 0; round < 5; round++) for (const vpn of pages) mmu.translate(vpn << 12, R_U);
  assert.is(mmu.counters.tlbMisses, 4);
  assert.is(mmu.counters.tlbHits, 16);
});

geo('5 pages in one DTLB0 set, different DTLB1 sets: DTLB0 misses are DTLB1 hits', () => {
  const pages = [0x400, 0x404, 0x408, 0x40c, 0x410];
  const mmu = core2With(pages);
  for (let round = 0; round < 3; round++) for (const vpn of pages) mmu.translate(vpn << 12, R_U);
  assert.is(mmu.counters.tlbMisses, 5);
  assert.is(mmu.counters.l2TlbHits, 10);
  assert.is(mmu.counters.tlbHits, 0);
});

geo('the victim is the least recently used way, hits included', () => {
  const [a, b, c, d, e] = [0x400, 0x404, 0x408, 0x40c, 0x410];
  const mmu = core2With([a!, b!, c!, d!, e!]);
  for (const v of [a, b, c, d]) mmu.translate(v! << 12, R_U);
  mmu.translate(a! << 12, R_U); // a is now the most recent: b is LRU
  mmu.translate(e! << 12, R_U); // evicts b
  const dtlb = mmu.tlbs.dtlb;
  assert.is(dtlb.lookupSmall(b!), -1);
  for (const v of [a, c, d, e]) assert.ok(dtlb.lookupSmall(v!) >= 0, `page ${v!.toString(16)} kept`);
  const hits = mmu.counters.tlbHits;
  const l2 = mmu.counters.l2TlbHits;
  mmu.translate(a! << 12, R_U);
  assert.is(mmu.counters.tlbHits, hits + 1);
  mmu.translate(b! << 12, R_U);
  assert.is(mmu.counters.l2TlbHits, l2 + 1, 'b comes back from DTLB1');
  assert.is(dtlb.lookupSmall(c!), -1, 'and evicts c, now the LRU way');
});

geo('p6 has one TLB level: a conflict miss walks', () => {
  const mmu = new Mmu({ cpu: 'p6' }); // DTLB 64 entries, 4-way: 16 sets
  const t = new Tables2(mmu.mem);
  const pages = [0x400, 0x410, 0x420, 0x430, 0x440];
  for (const vpn of pages) t.map(vpn << 12, vpn);
  paging2(mmu);
  for (let round = 0; round < 2; round++) for (const vpn of pages) mmu.translate(vpn << 12, R_S);
  assert.is(mmu.counters.tlbMisses, 10);
  assert.is(mmu.counters.l2TlbHits, 0);
});

geo('instruction fetches use the ITLB; a data access does not hit it', () => {
  const mmu = core2With([0x400]);
  mmu.translate(0x400000, X_U);
  assert.ok(mmu.tlbs.itlb.lookupSmall(0x400) >= 0);
  assert.is(mmu.tlbs.dtlb.lookupSmall(0x400), -1);
  assert.is(mmu.tlbs.l2.lookupSmall(0x400), -1, 'core2 DTLB1 is data-only');
  mmu.translate(0x400000, R_U);
  assert.is(mmu.counters.tlbMisses, 2);
  mmu.translate(0x400000, X_U);
  mmu.translate(0x400000, R_U);
  assert.is(mmu.counters.tlbHits, 2);
});

// ---- dirty bits, faults, INVLPG ----
const fx = suite('mmu: dirty-after-read, #PF, INVLPG');

fx('the first write after a read walks again and sets D; later writes hit', () => {
  const mmu = new Mmu();
  const t = new TablesPae(mmu.mem);
  t.map(0x7000, 0x77);
  pagingPae(mmu);
  mmu.translate(0x7000, R_U);
  assert.is(mmu.mem.read32(t.pteAddr(0x7000)) & PTE_D, 0);
  assert.is(mmu.translate(0x7004, W_U), 0x77004);
  assert.is(mmu.counters.tlbMisses, 2);
  assert.is(mmu.mem.read32(t.pteAddr(0x7000)) & PTE_D, PTE_D);
  mmu.translate(0x7008, W_U);
  mmu.translate(0x700c, R_U);
  assert.is(mmu.counters.tlbMisses, 2);
  assert.is(mmu.counters.tlbHits, 2);
});

fx('a stale TLB entry is used until a #PF on the address invalidates it (SDM 4.10.4.1)', () => {
  const mmu = new Mmu();
  const t = new Tables2(mmu.mem);
  t.map(0x3000, 0x33);
  paging2(mmu);
  assert.is(mmu.translate(0x3000, R_U), 0x33000);
  mmu.mem.write32(t.pteAddr(0x3000), 0); // not present now, no INVLPG
  assert.is(mmu.translate(0x3010, R_U), 0x33010, 'the TLB still holds the translation');
  // a write needs D, so it walks, finds the PTE not present and faults
  assert.is(mmu.translate(0x3010, W_U), -1 - (PFEC_W | PFEC_U));
  assert.is(mmu.tlbs.valid, 0, 'the fault dropped the entries for the address');
  assert.is(mmu.translate(0x3010, R_U), -1 - PFEC_U, 'so the next read walks and faults');
});

fx('INVLPG drops the translation in every level; the next access sees the new PTE', () => {
  const mmu = new Mmu();
  const t = new Tables2(mmu.mem);
  t.map(0x3000, 0x33, URW | PTE_G);
  paging2(mmu, { pge: true });
  mmu.translate(0x3000, R_U);
  t.map(0x3000, 0x44, URW | PTE_G);
  assert.is(mmu.translate(0x3000, R_U), 0x33000);
  const c0 = mmu.cycles;
  mmu.invlpg(0x3fff);
  assert.is(mmu.cycles - c0, mmu.preset.cycles.invlpg);
  assert.is(mmu.counters.invlpgs, 1);
  assert.is(mmu.tlbs.valid, 0, 'global entries too');
  assert.is(mmu.translate(0x3000, R_U), 0x44000);
});

fx('#PF: CR2 holds the address, the result encodes the error code', () => {
  const mmu = new Mmu();
  const t = new TablesPae(mmu.mem);
  t.map(0x1000, 0x10, PTE_P | PTE_US, PTE_NX_HI);
  pagingPae(mmu);
  const cases: [number, number, number][] = [
    [0x5123, R_U, PFEC_U],
    [0x5124, W_S, PFEC_W],
    [0x1abc, W_U, PFEC_P | PFEC_W | PFEC_U],
    [0x1abd, X_U, PFEC_P | PFEC_U | PFEC_ID],
    [0xfffff001, R_S, 0],
  ];
  for (const [va, acc, code] of cases) {
    const r = mmu.translate(va, acc);
    assert.ok(r < 0);
    assert.is(faultCode(r), code, `va ${va.toString(16)}`);
    assert.is(mmu.cpu.cr2, va >>> 0);
  }
  assert.is(mmu.counters.pageFaults, cases.length);
  assert.is(mmu.access(0x1abc, 0, true), 0x10abc);
  assert.is(mmu.read32(0x1abc, true), 0);
  assert.is(mmu.write32(0x1abc, 5, true), false);
  assert.is(mmu.fetch32(0x1abc, false), undefined);
});

fx('32-bit accesses through the MMU reach physical memory', () => {
  const mmu = new Mmu();
  const t = new TablesPae(mmu.mem);
  t.map(0x2000, 0x123456); // above 4 GiB
  pagingPae(mmu);
  assert.is(mmu.write32(0x2ff0, 0xdeadbeef, true), true);
  assert.is(mmu.mem.read32(0x1_2345_6ff0), 0xdeadbeef);
  assert.is(mmu.read32(0x2ff0, false), 0xdeadbeef);
});

// ---- cycles ----
const cyc = suite('mmu: cycles are the sum of the preset figures');

cyc('a known sequence costs exactly what the core2 table says', () => {
  const mmu = new Mmu({ cpu: 'core2' });
  const c = getPreset('core2').cycles;
  const t = new Tables2(mmu.mem);
  const P = [0x00400000, 0x00404000, 0x00408000, 0x0040c000, 0x00410000]; // one DTLB0 set
  for (const va of P) t.map(va, va >>> 12);
  const NP = 0x00420000; // in the same page table, not present
  paging2(mmu);
  const c0 = mmu.cycles;
  const k0 = { ...mmu.counters, walksByDepth: [...mmu.counters.walksByDepth] };
  // Walk-entry cache lines (64 bytes): the PDE line, and PTE lines 0 (P0-P3),
  // 1 (P4), 2 (NP), which map to different lines of the 64-line cache.
  mmu.translate(P[0]!, R_U); // walk: 2 lines cold, A on PDE and PTE
  mmu.translate(P[0]!, R_U); // hit
  mmu.translate(P[0]!, W_U); // clean entry: walk, both lines cached, D on PTE
  mmu.translate(P[0]!, W_U); // hit
  for (const va of P.slice(1, 4)) mmu.translate(va, R_U); // walks, cached, A on PTE
  mmu.translate(P[4]!, R_U); // walk: PDE cached, PTE line 1 cold, A; evicts P0 from DTLB0
  mmu.translate(P[0]!, R_U); // DTLB1 hit
  mmu.translate(NP, R_U); // walk: PDE cached, PTE line 2 cold, #PF
  mmu.invlpg(P[0]!);
  mmu.translate(P[0]!, R_U); // walk, both cached
  mmu.writeCr3(0x1000);
  mmu.translate(P[2]!, R_U); // walk, both cached
  const nMem = 4;
  const nCached = 14;
  const nAd = 7;
  const nHits = 2;
  const expected =
    nMem * c.walkEntryMemory + nCached * c.walkEntryCached + nAd * c.adUpdate + nHits * c.tlbHit +
    c.l2TlbHit + c.pageFault + c.invlpg + c.cr3Write;
  const k = mmu.counters;
  assert.is(k.walkCacheMisses - k0.walkCacheMisses, nMem);
  assert.is(k.walkCacheHits - k0.walkCacheHits, nCached);
  assert.is(k.adUpdates - k0.adUpdates, nAd);
  assert.is(k.tlbHits - k0.tlbHits, nHits);
  assert.is(k.l2TlbHits - k0.l2TlbHits, 1);
  assert.is(k.tlbMisses - k0.tlbMisses, 9);
  assert.is(k.pageFaults - k0.pageFaults, 1);
  assert.is(mmu.cycles - c0, expected);
  assert.ok(expected > 0);
});

cyc('CR writes: CR3 reload (plus the PDPTE load under PAE) and full flushes', () => {
  for (const name of ['p6', 'core2', 'nehalem']) {
    const c = getPreset(name).cycles;
    const mmu = new Mmu({ cpu: name });
    new TablesPae(mmu.mem);
    pagingPae(mmu); // EFER, CR4 (full flush), CR3 (no PDPTE load: paging off), CR0 (full flush + PDPTE load)
    assert.is(mmu.cycles, 2 * c.fullFlush + c.cr3Write + c.pdpteLoad, name);
    const c0 = mmu.cycles;
    mmu.writeCr3(0x1000);
    assert.is(mmu.cycles - c0, c.cr3Write + c.pdpteLoad, name);
    const c1 = mmu.cycles;
    mmu.writeCr0(CR0_PE | CR0_PG); // WP change only: no flush, no cost
    assert.is(mmu.cycles, c1);
    mmu.charge(123, CC_KERNEL);
    assert.is(mmu.cycles, c1 + 123);
    // The ledger: flushes and PDPTE loads to `flush`, the charge to `kernel`, summing to cycles.
    const b = mmu.breakdown;
    assert.is(b.kernel, 123, name);
    assert.is(b.flush, c1, name);
    assert.is(breakdownSum(b), mmu.cycles, name);
  }
});

// ---- the host-side cache is invisible ----
const host = suite('mmu: the host-side cache never changes a modelled outcome');

interface Outcome {
  results: number[];
  counters: string;
  cycles: number;
  tlb: string;
  tables: number[];
}

/**
 * A random but fixed sequence of accesses over a mix of mappings, with CR3
 * reloads, INVLPG and CR0.WP toggles (the tables themselves never change, so
 * every access must agree with a probe made just before it).
 */
function runSequence(hostCacheBits: number, mode: 'pae' | '2', cpu: string, seed: number): Outcome {
  const mmu = new Mmu({ cpu, hostCacheBits });
  const vas: number[] = [];
  const tableFrames: number[] = [];
  const r = prng(seed);
  if (mode === 'pae') {
    const t = new TablesPae(mmu.mem);
    const kinds = [URW, URW | PTE_G, PTE_P | PTE_US, PTE_P | PTE_RW, PTE_P, 0, URW | PTE_D];
    for (let i = 0; i < 96; i++) {
      const va = (((r() % 4) << 30) | ((r() % 8) << 21) | ((r() % 512) << 12)) >>> 0;
      t.map(va, 0x100000 + (r() % 0x10000), kinds[r() % kinds.length]!, r() % 3 === 0 ? PTE_NX_HI : 0);
      vas.push(va);
    }
    t.setPde(0x7fe00000, 0x00600000 | PTE_PS | URW, 0x2); // 2 MiB page
    for (let i = 0; i < 8; i++) vas.push(0x7fe00000 + (r() % 512) * 4096);
    pagingPae(mmu, { pge: true, nxe: true });
    for (let p = 1; p < 0x30; p++) tableFrames.push(p);
  } else {
    const t = new Tables2(mmu.mem);
    const kinds = [URW, URW | PTE_G, PTE_P | PTE_US, PTE_P | PTE_RW, PTE_P, 0];
    for (let i = 0; i < 96; i++) {
      const va = (((r() % 16) << 22) | ((r() % 1024) << 12)) >>> 0;
      t.map(va, 0x100 + (r() % 0x10000), kinds[r() % kinds.length]!);
      vas.push(va);
    }
    t.setPde(0xc0000000, 0x00c00000 | (1 << 13) | PTE_PS | URW | PTE_G); // 4 MiB page above 4 GiB
    for (let i = 0; i < 8; i++) vas.push(0xc0000000 + (r() % 1024) * 4096);
    paging2(mmu, { pge: true });
    for (let p = 1; p < 0x30; p++) tableFrames.push(p);
  }
  const results: number[] = [];
  for (let i = 0; i < 4000; i++) {
    const op = r() % 100;
    if (op < 94) {
      // mostly a small hot set, so host-cache entries get reused and conflict
      const va = ((op < 70 ? vas[r() % 12]! : vas[r() % vas.length]!) + (r() % 4096)) >>> 0;
      const acc = r() % 6;
      const want = mmu.probePa(va, acc);
      const got = mmu.translate(va, acc);
      if (got !== want) throw new Error(`hostCacheBits ${hostCacheBits}: access ${i} 0x${va.toString(16)}/${acc}: ${got} != probe ${want}`);
      results.push(got);
    } else if (op < 96) {
      mmu.writeCr3(0x1000);
    } else if (op < 98) {
      mmu.invlpg(vas[r() % vas.length]!);
    } else {
      mmu.writeCr0((CR0_PE | CR0_PG | (mmu.cpu.wp ? 0 : CR0_WP)) >>> 0);
    }
  }
  const tlbs = mmu.tlbs;
  const tlb = [tlbs.itlb, tlbs.dtlb, tlbs.l2]
    .map((l) => {
      const live = Array.from({ length: l.size }, (_, s) => s).filter((s) => l.tag[s] !== -1);
      const order = [...live].sort((x, y) => l.stamp[x]! - l.stamp[y]!);
      return live.map((s) => `${s}:${l.tag[s]}:${l.pfn[s]}:${l.flags[s]}:${l.allow[s]}`).join(',') + '|' + order.join(',');
    })
    .join('\n');
  const tables: number[] = [];
  for (const p of tableFrames) for (let w = 0; w < 1024; w++) tables.push(mmu.mem.word(p, w));
  return { results, counters: JSON.stringify(mmu.counters), cycles: mmu.cycles, tlb, tables };
}

for (const [mode, cpu, seed] of [['pae', 'core2', 7], ['2', 'nehalem', 11], ['pae', 'p6', 13]] as const) {
  host(`${mode === 'pae' ? 'PAE' : '2-level'} on ${cpu}: identical results, counters, cycles, TLB and tables for host cache sizes 2^0..2^12`, () => {
    const ref = runSequence(12, mode, cpu, seed);
    assert.ok(ref.results.some((x) => x < 0) && ref.results.some((x) => x >= 0), 'the sequence has faults and successes');
    const k = JSON.parse(ref.counters) as { tlbHits: number; tlbMisses: number; l2TlbHits: number };
    assert.ok(k.tlbHits > 1000 && k.tlbMisses > 100, `a mix of hits and misses (${k.tlbHits}/${k.tlbMisses})`);
    for (let bits = 0; bits < 12; bits++) {
      const o = runSequence(bits, mode, cpu, seed);
      assert.equal(o.results, ref.results, `results, hostCacheBits ${bits}`);
      assert.is(o.counters, ref.counters, `counters, hostCacheBits ${bits}`);
      assert.is(o.cycles, ref.cycles);
      assert.is(o.tlb, ref.tlb, `TLB contents and LRU order, hostCacheBits ${bits}`);
      assert.equal(o.tables, ref.tables, 'A/D bits in the tables');
    }
  });
}

host('hostCacheBits outside 0..16 is refused', () => {
  assert.throws(() => new Mmu({ hostCacheBits: 17 }), /hostCacheBits/);
  assert.throws(() => new Mmu({ hostCacheBits: -1 }), /hostCacheBits/);
});

geo.run();
fx.run();
cyc.run();
host.run();
