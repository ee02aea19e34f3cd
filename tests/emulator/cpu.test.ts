import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Mmu } from '../../emulator/mmu.js';
import {
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR4_PAE,
  CR4_PGE,
  CR4_PSE,
  EFER_NXE,
  PTE_D,
  PTE_G,
  PTE_P,
  PTE_RW,
  PTE_US,
} from '../../emulator/paging-bits.js';
import { paging2, pagingPae, Tables2, TablesPae, URW } from './tables.js';

const READ_U = 1;
const WRITE_S = 2;

// ---- PAE PDPTE registers ----
const pdpte = suite('cpu: PDPTE registers (SDM 4.4.1)');

pdpte('MOV to CR3 under PAE paging loads the four PDPTEs from the 32-byte aligned PDPT', () => {
  const mmu = new Mmu();
  new TablesPae(mmu.mem);
  pagingPae(mmu);
  for (let i = 0; i < 4; i++) assert.is(mmu.cpu.pdpteLo[i], ((2 + i) << 12) | PTE_P);
  // a second PDPT at 0x2fe0 (32-byte aligned, not page aligned), frames above 4 GiB
  for (let i = 0; i < 4; i++) {
    mmu.mem.write32(0x2fe0 + 8 * i, ((0x40 + i) << 12) | PTE_P);
    mmu.mem.write32(0x2fe0 + 8 * i + 4, 0x3);
  }
  assert.is(mmu.writeCr3(0x2fe0 | 0x18), 'ok');
  assert.is(mmu.cpu.cr3, 0x2ff8);
  for (let i = 0; i < 4; i++) {
    assert.is(mmu.cpu.pdpteLo[i], ((0x40 + i) << 12) | PTE_P);
    assert.is(mmu.cpu.pdpteHi[i], 3);
  }
  assert.is(mmu.cpu.pdpte(2), 0x3_0004_2001n);
});

pdpte('a present PDPTE with a reserved bit (1-2, 5-8, 36-63) is #GP: CR3 and the PDPTE registers unchanged', () => {
  const rsvdLo = [1, 2, 5, 6, 7, 8];
  const rsvdHi = [4, 5, 20, 30, 31]; // bits 36, 37, 52, 62, 63
  const cases: [number, number][] = [...rsvdLo.map((b) => [1 << b, 0] as [number, number]), ...rsvdHi.map((b) => [0, (1 << b) >>> 0] as [number, number])];
  for (const [lo, hi] of cases) {
    const mmu = new Mmu();
    new TablesPae(mmu.mem);
    pagingPae(mmu);
    const before = [...mmu.cpu.pdpteLo, ...mmu.cpu.pdpteHi];
    const flushes = mmu.counters.flushesNonGlobal;
    for (let i = 0; i < 4; i++) mmu.mem.write32(0x5000 + 8 * i, ((0x60 + i) << 12) | PTE_P);
    mmu.mem.write32(0x5000 + 16, (((0x62 << 12) | PTE_P | lo) >>> 0));
    mmu.mem.write32(0x5000 + 20, hi);
    assert.is(mmu.writeCr3(0x5000), 'GP', `lo ${lo.toString(16)} hi ${hi.toString(16)}`);
    assert.is(mmu.cpu.cr3, 0x1000);
    assert.equal([...mmu.cpu.pdpteLo, ...mmu.cpu.pdpteHi], before);
    assert.is(mmu.counters.gpFaults, 1);
    assert.is(mmu.counters.flushesNonGlobal, flushes, 'no flush on #GP');
  }
});

pdpte('reserved bits in a not-present PDPTE are ignored', () => {
  const mmu = new Mmu();
  new TablesPae(mmu.mem);
  pagingPae(mmu);
  mmu.mem.write32(0x1000 + 8, 0x1e6); // P=0, reserved bits set
  mmu.mem.write32(0x1000 + 12, 0xfffffff0);
  assert.is(mmu.writeCr3(0x1000), 'ok');
  assert.is(mmu.cpu.pdpteLo[1], 0x1e6);
});

pdpte('PDPTE changes in memory are not seen until CR3 is written again', () => {
  const mmu = new Mmu();
  const t = new TablesPae(mmu.mem);
  t.map(0x00001000, 0x111);
  pagingPae(mmu);
  assert.is(mmu.probePa(0x1000, READ_U), 0x111000);
  // point PDPTE 0 at a directory that maps the page elsewhere
  mmu.mem.write32(0x9000, (0xa000 | URW) >>> 0); // PD at pfn 9: PDE 0 -> PT at pfn 0xa
  mmu.mem.write32(0xa000 + 8, (0x222000 | URW) >>> 0);
  mmu.mem.write32(0x1000, 0x9000 | PTE_P);
  assert.is(mmu.probePa(0x1000, READ_U), 0x111000, 'the PDPTE register still points at the old PD');
  assert.is(mmu.translate(0x1000, READ_U), 0x111000);
  assert.is(mmu.writeCr3(0x1000), 'ok');
  assert.is(mmu.probePa(0x1000, READ_U), 0x222000);
  assert.is(mmu.translate(0x1000, READ_U), 0x222000, 'CR3 write flushed the old translation');
});

pdpte('turning on PAE paging loads the PDPTEs, with the same #GP rule', () => {
  const mmu = new Mmu();
  new TablesPae(mmu.mem);
  mmu.writeCr4(CR4_PAE);
  assert.is(mmu.writeCr3(0x1000), 'ok', 'no PDPTE load while paging is off');
  mmu.mem.write32(0x1000, mmu.mem.read32(0x1000) | 0x20); // bit 5 reserved
  assert.is(mmu.writeCr0(CR0_PE | CR0_PG), 'GP');
  assert.is(mmu.cpu.paging, false);
  assert.is(mmu.cpu.cr0, 0);
  mmu.mem.write32(0x1000, mmu.mem.read32(0x1000) & ~0x20);
  assert.is(mmu.writeCr0(CR0_PE | CR0_PG), 'ok');
  assert.is(mmu.cpu.pdpteLo[0], 0x2000 | PTE_P);
});

// ---- CR0 ----
const cr0 = suite('cpu: CR0');

cr0('CR0.PG without CR0.PE is #GP and changes nothing', () => {
  const mmu = new Mmu();
  assert.is(mmu.writeCr0(CR0_PG), 'GP');
  assert.is(mmu.cpu.cr0, 0);
  assert.is(mmu.cpu.paging, false);
  assert.is(mmu.counters.gpFaults, 1);
  assert.is(mmu.writeCr0(CR0_PE), 'ok');
  assert.is(mmu.writeCr0((CR0_PG | CR0_WP) >>> 0), 'GP', 'clearing PE with PG set');
  assert.is(mmu.cpu.cr0, CR0_PE);
});

cr0('a CR0.WP change re-derives cached permissions without flushing', () => {
  const mmu = new Mmu();
  const t = new Tables2(mmu.mem);
  t.map(0x5000, 0x77, PTE_P | PTE_US | PTE_D); // read-only, dirty
  paging2(mmu, { wp: true });
  assert.is(mmu.translate(0x5000, 0), 0x77000); // supervisor read fills the TLB
  const valid = mmu.tlbs.valid;
  const full = mmu.counters.flushesFull;
  const misses = mmu.counters.tlbMisses;
  assert.ok(mmu.translate(0x5000, WRITE_S) < 0, 'WP=1: supervisor write to a read-only page faults');
  assert.is(mmu.translate(0x5000, 0), 0x77000, 'refilled after the #PF dropped it');
  const valid2 = mmu.tlbs.valid;
  mmu.writeCr0(CR0_PE | CR0_PG); // WP off
  assert.is(mmu.counters.flushesFull, full, 'no flush');
  assert.is(mmu.tlbs.valid, valid2);
  assert.is(valid2, valid);
  const m2 = mmu.counters.tlbMisses;
  assert.is(mmu.translate(0x5000, WRITE_S), 0x77000, 'WP=0: the write completes');
  assert.is(mmu.counters.tlbMisses, m2, 'on the cached entry, without a walk');
  assert.ok(misses < m2);
});

// ---- CR4 and CR3 flushes ----
const fl = suite('cpu: flushes on CR3/CR4 writes (SDM 4.10.4.1)');

// Pages at 0x10001000 and 0x10002000: their PDE is not among the first four
// words of the page directory, so the PD also reads as a valid (empty) PDPT
// when a test turns PAE on with the same CR3.
const G_VA = 0x10001000;
const NG_VA = 0x10002000;

function twoPages(pge: boolean): Mmu {
  const mmu = new Mmu();
  const t = new Tables2(mmu.mem);
  t.map(G_VA, 0x11, URW | PTE_G);
  t.map(NG_VA, 0x22, URW);
  paging2(mmu, { pge });
  mmu.translate(G_VA, READ_U);
  mmu.translate(NG_VA, READ_U);
  return mmu;
}

fl('a CR3 write flushes non-global entries and keeps global ones', () => {
  const mmu = twoPages(true);
  const valid = mmu.tlbs.dtlb.valid;
  assert.is(mmu.writeCr3(0x1000), 'ok');
  assert.is(mmu.counters.cr3Writes, 2);
  assert.is(mmu.counters.flushesNonGlobal, 2);
  assert.is(mmu.tlbs.dtlb.valid, valid - 1);
  assert.ok(mmu.tlbs.dtlb.lookupSmall(G_VA >>> 12) >= 0, 'global page kept');
  assert.is(mmu.tlbs.dtlb.lookupSmall(NG_VA >>> 12), -1);
  const misses = mmu.counters.tlbMisses;
  mmu.translate(G_VA, READ_U);
  assert.is(mmu.counters.tlbMisses, misses, 'global page still hits');
  mmu.translate(NG_VA, READ_U);
  assert.is(mmu.counters.tlbMisses, misses + 1);
});

fl('G is ignored without CR4.PGE', () => {
  const mmu = twoPages(false);
  mmu.writeCr3(0x1000);
  assert.is(mmu.tlbs.valid, 0);
});

for (const [name, bit] of [['PGE', CR4_PGE], ['PAE', CR4_PAE], ['PSE', CR4_PSE]] as const) {
  fl(`changing CR4.${name} flushes everything, global entries too`, () => {
    const mmu = twoPages(true);
    assert.ok(mmu.tlbs.valid > 0);
    const full = mmu.counters.flushesFull;
    assert.is(mmu.writeCr4(mmu.cpu.cr4 ^ bit), 'ok');
    assert.is(mmu.tlbs.valid, 0);
    assert.is(mmu.counters.flushesFull, full + 1);
  });
}

fl('a CR4 write that changes none of PAE/PGE/PSE does not flush', () => {
  const mmu = twoPages(true);
  const valid = mmu.tlbs.valid;
  const full = mmu.counters.flushesFull;
  assert.is(mmu.writeCr4(mmu.cpu.cr4 | (1 << 9)), 'ok'); // OSFXSR, not modelled
  assert.is(mmu.tlbs.valid, valid);
  assert.is(mmu.counters.flushesFull, full);
});

fl('turning paging off flushes everything', () => {
  const mmu = twoPages(true);
  mmu.writeCr0(CR0_PE | CR0_WP);
  assert.is(mmu.tlbs.valid, 0);
  assert.is(mmu.translate(0x2345, READ_U), 0x2345, 'no paging: linear = physical');
});

fl('EFER.NXE changes re-derive permissions without flushing', () => {
  const mmu = new Mmu();
  const t = new TablesPae(mmu.mem);
  t.map(0x3000, 0x33, URW, 0x80000000); // XD
  pagingPae(mmu, { nxe: true });
  const FETCH_U = 5;
  assert.is(mmu.translate(0x3000, READ_U), 0x33000);
  assert.ok(mmu.translate(0x3000, FETCH_U) < 0, 'XD page: fetch faults');
  mmu.translate(0x3000, READ_U);
  const valid = mmu.tlbs.valid;
  mmu.writeEfer(0);
  assert.is(mmu.cpu.efer, 0);
  assert.is(mmu.tlbs.valid, valid);
  const s = mmu.tlbs.dtlb.lookupSmall(3);
  assert.ok(((mmu.tlbs.dtlb.allow[s]! >> FETCH_U) & 1) === 1, 'XD no longer counts in the cached entry');
  mmu.writeEfer(EFER_NXE);
  assert.ok(((mmu.tlbs.dtlb.allow[s]! >> FETCH_U) & 1) === 0);
});

pdpte.run();
cr0.run();
fl.run();
