import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Mmu } from '../../emulator/mmu.js';
import {
  PFEC_ID,
  PFEC_P,
  PFEC_RSVD,
  PFEC_U,
  PFEC_W,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_NX_HI,
  PTE_P,
  PTE_PS,
  PTE_RW,
  PTE_US,
} from '../../emulator/paging-bits.js';
import { TLBF_D, TLBF_G, TLBF_NX, TLBF_RW, TLBF_US } from '../../emulator/tlb.js';
import { paging2, pagingPae, Tables2, TablesPae, URW } from './tables.js';

// access classes: kind * 2 + user
const R_S = 0, R_U = 1, W_S = 2, W_U = 3, X_S = 4, X_U = 5;

function mmu2(pse = true, pge = false): { mmu: Mmu; t: Tables2 } {
  const mmu = new Mmu();
  const t = new Tables2(mmu.mem);
  paging2(mmu, { pse, pge });
  return { mmu, t };
}

function mmuPae(nxe = true, pge = false): { mmu: Mmu; t: TablesPae } {
  const mmu = new Mmu();
  const t = new TablesPae(mmu.mem);
  pagingPae(mmu, { nxe, pge });
  return { mmu, t };
}

// ---- 2-level ----
const two = suite('walker: 2-level paging (SDM 4.3)');

two('4 KiB page: PDE then PTE, frame from the PTE, flags combined', () => {
  const { mmu, t } = mmu2(true, true);
  t.map(0x00403000, 0xabcde, URW | PTE_G);
  const w = mmu.walker;
  assert.ok(w.walk(0x00403123, R_U, true));
  assert.is(w.pfn, 0xabcde);
  assert.is(w.basePfn, 0xabcde);
  assert.is(w.depth, 2);
  assert.is(w.largeShift, 0);
  assert.is(w.flags, TLBF_RW | TLBF_US | TLBF_G);
  assert.is(mmu.translate(0x00403123, R_U), 0xabcde123);
});

two('4 MiB page with CR4.PSE: PSE-36 address bits 35:32 from PDE bits 16:13', () => {
  const { mmu, t } = mmu2(true);
  t.setPde(0x80000000, 0x00c00000 | (0x5 << 13) | PTE_PS | URW);
  const w = mmu.walker;
  assert.ok(w.walk(0x80345678, R_U, true));
  assert.is(w.depth, 1);
  assert.is(w.largeShift, 22);
  assert.is(w.basePfn, 0x500c00);
  assert.is(w.pfn, 0x500c00 + 0x345);
  assert.is(mmu.translate(0x80345678, R_U), 0x5_00f4_5678);
  assert.is(mmu.probe(0x80345678, 0, true).pageSize, 4 << 20);
});

two('with CR4.PSE clear, PS in a PDE is ignored: the PDE points at a page table', () => {
  const { mmu, t } = mmu2(false);
  // PDE for 0x00400000 with PS set, pointing at frame 0x30 as a page table
  t.setPde(0x00400000, 0x30000 | PTE_PS | URW);
  mmu.mem.write32(0x30000 + 5 * 4, (0x77000 | URW) >>> 0);
  assert.is(mmu.translate(0x00405010, R_U), 0x77010);
  assert.is(mmu.walker.depth, 2);
  assert.is(mmu.walker.largeShift, 0);
});

two('4 MiB page: bits 21:17 reserved (MAXPHYADDR 36)', () => {
  for (let bit = 17; bit <= 21; bit++) {
    const { mmu, t } = mmu2(true);
    t.setPde(0x80000000, 0x00c00000 | (1 << bit) | PTE_PS | URW);
    const r = mmu.translate(0x80000000, W_U);
    assert.is(r, -1 - (PFEC_P | PFEC_RSVD | PFEC_W | PFEC_U), `bit ${bit}`);
  }
  // bits 16:13 are address bits, not reserved
  const { mmu, t } = mmu2(true);
  t.setPde(0x80000000, 0x00c00000 | (0xf << 13) | PTE_PS | URW);
  assert.ok(mmu.translate(0x80000000, R_U) >= 0);
});

// ---- PAE ----
const pae = suite('walker: PAE paging (SDM 4.4)');

pae('4 KiB page above 4 GiB: PDPTE register, PDE, PTE', () => {
  const { mmu, t } = mmuPae();
  t.map(0xc0201000, 0x912345, URW);
  assert.is(mmu.translate(0xc0201abc, R_U), 0x9_1234_5abc);
  assert.is(mmu.walker.depth, 2);
  const p = mmu.probe(0xc0201abc, 0, true);
  assert.equal(p.entries.map((e) => e.level), ['pdpte', 'pde', 'pte']);
  assert.is(p.entries[0]!.pa, 0x1000 + 3 * 8);
});

pae('2 MiB page: frame bits 35:21 from the PDE', () => {
  const { mmu, t } = mmuPae();
  t.setPde(0x40600000, 0x1fe00000 | PTE_PS | URW, 0x7);
  assert.is(mmu.translate(0x406abcde, R_U), 0x7_1fea_bcde);
  assert.is(mmu.walker.depth, 1);
  assert.is(mmu.walker.largeShift, 21);
  assert.is(mmu.walker.basePfn, 0x71fe00);
  assert.is(mmu.probe(0x406abcde, 0, true).pageSize, 2 << 20);
});

pae('reserved bits: 36-62 in PDE and PTE, bit 63 without EFER.NXE, 20:13 in a 2 MiB PDE', () => {
  const code = (c: number): number => -1 - (PFEC_P | PFEC_RSVD | c);
  for (const bit of [4, 10, 30]) {
    const a = mmuPae();
    a.t.map(0x1000, 0x10, URW, 1 << bit); // PTE high word
    assert.is(a.mmu.translate(0x1000, R_U), code(PFEC_U), `PTE bit ${32 + bit}`);
    const b = mmuPae();
    b.t.map(0x1000, 0x10);
    b.mmu.mem.write32(b.t.pdeAddr(0x1000) + 4, 1 << bit); // PDE high word
    assert.is(b.mmu.translate(0x1000, W_S), code(PFEC_W), `PDE bit ${32 + bit}`);
  }
  const nx = mmuPae(false);
  nx.t.map(0x1000, 0x10, URW, PTE_NX_HI);
  assert.is(nx.mmu.translate(0x1000, R_S), code(0), 'XD is reserved while EFER.NXE = 0');
  const ok = mmuPae(true);
  ok.t.map(0x1000, 0x10, URW, PTE_NX_HI);
  assert.is(ok.mmu.translate(0x1000, R_S), 0x10000, 'and a permission bit with NXE');
  for (let bit = 13; bit <= 20; bit++) {
    const l = mmuPae();
    l.t.setPde(0x00200000, 0x00200000 | (1 << bit) | PTE_PS | URW);
    assert.is(l.mmu.translate(0x00200000, R_U), code(PFEC_U), `2 MiB PDE bit ${bit}`);
  }
  // bits 20:13 of a 4 KiB PTE or a non-PS PDE are address bits
  const a = mmuPae();
  a.t.map(0x1000, 0xfffff, URW);
  assert.is(a.mmu.translate(0x1000, R_U), 0xfffff000);
});

pae('combined U/S and R/W: every level must allow', () => {
  const { mmu, t } = mmuPae();
  t.map(0x1000, 0x10, URW, 0, PTE_P | PTE_RW); // PDE supervisor
  assert.is(mmu.translate(0x1000, R_U), -1 - (PFEC_P | PFEC_U));
  assert.is(mmu.translate(0x1000, W_S), 0x10000);
  t.map(0x200000, 0x20, URW, 0, PTE_P | PTE_US); // PDE read-only
  assert.is(mmu.translate(0x200000, W_U), -1 - (PFEC_P | PFEC_W | PFEC_U));
  assert.is(mmu.translate(0x200000, R_U), 0x20000);
});

pae('NX on fetches only, and I/D in the error code only with PAE and NXE', () => {
  const { mmu, t } = mmuPae(true);
  t.map(0x3000, 0x30, URW, PTE_NX_HI);
  assert.is(mmu.translate(0x3000, X_U), -1 - (PFEC_P | PFEC_U | PFEC_ID));
  assert.is(mmu.translate(0x3000, R_U), 0x30000);
  assert.is(mmu.translate(0x9000, X_S), -1 - PFEC_ID, 'not present, fetch');
  const n = mmu2();
  assert.is(n.mmu.translate(0x9000, X_S), -1 - 0, '2-level: no I/D bit');
});

pae('CR0.WP: supervisor writes to read-only pages fault only with WP set', () => {
  for (const wp of [true, false]) {
    const mmu = new Mmu();
    const t = new TablesPae(mmu.mem);
    t.map(0x1000, 0x10, PTE_P | PTE_US);
    pagingPae(mmu, { wp });
    const r = mmu.translate(0x1000, W_S);
    assert.is(r, wp ? -1 - (PFEC_P | PFEC_W) : 0x10000);
    assert.is(mmu.translate(0x1000, W_U), -1 - (PFEC_P | PFEC_W | PFEC_U), 'user writes always need R/W');
  }
});

// ---- order and side effects ----
const order = suite('walker: fault order and side effects (SDM 4.7, 4.8)');

order('not-present is reported before reserved bits, reserved bits before permissions', () => {
  const { mmu, t } = mmuPae();
  // PTE not present but with reserved bits: a plain not-present fault
  t.map(0x1000, 0x10, 0, 0x00100000);
  assert.is(mmu.translate(0x1000, W_U), -1 - (PFEC_W | PFEC_U));
  // present, reserved bit, and a permission violation (supervisor page, user access)
  t.map(0x2000, 0x20, PTE_P, 0x00100000);
  assert.is(mmu.translate(0x2000, W_U), -1 - (PFEC_P | PFEC_RSVD | PFEC_W | PFEC_U));
  // a reserved bit in the PDE stops the walk before the (not-present) PTE
  t.map(0x200000, 0x30, 0);
  mmu.mem.write32(t.pdeAddr(0x200000) + 4, 0x10);
  assert.is(mmu.translate(0x200000, R_S), -1 - (PFEC_P | PFEC_RSVD));
  assert.is(mmu.walker.depth, 1, 'the PTE was not read');
});

order('accessed bits on every entry used, dirty on the leaf for writes only', () => {
  for (const mode of ['2', 'pae'] as const) {
    const { mmu, t } = mode === '2' ? mmu2() : mmuPae();
    t.map(0x5000, 0x50);
    const pde = (): number => mmu.mem.read32(t.pdeAddr(0x5000));
    const pte = (): number => mmu.mem.read32(t.pteAddr(0x5000));
    assert.is(pde() & (PTE_A | PTE_D), 0);
    mmu.translate(0x5000, R_U);
    assert.is(pde() & (PTE_A | PTE_D), PTE_A, mode);
    assert.is(pte() & (PTE_A | PTE_D), PTE_A, mode);
    assert.is(mmu.counters.adUpdates, 2);
    mmu.translate(0x5000, W_U);
    assert.is(pte() & (PTE_A | PTE_D), PTE_A | PTE_D, mode);
    assert.is(pde() & PTE_D, 0, 'never D on a non-leaf entry');
    assert.is(mmu.counters.adUpdates, 3);
  }
  // large pages: the PDE is the leaf
  const { mmu, t } = mmu2();
  t.setPde(0x00800000, 0x00800000 | PTE_PS | URW);
  mmu.translate(0x00812345, W_S);
  assert.is(mmu.mem.read32(t.pdeAddr(0x00800000)) & (PTE_A | PTE_D), PTE_A | PTE_D);
  const p = mmuPae();
  p.t.setPde(0x00200000, 0x00400000 | PTE_PS | URW);
  p.mmu.translate(0x00212345, R_S);
  assert.is(p.mmu.mem.read32(p.t.pdeAddr(0x00200000)) & (PTE_A | PTE_D), PTE_A);
  const flags = p.mmu.walker.flags;
  assert.is(flags & TLBF_D, 0);
});

order('a faulting walk sets nothing: no A on the entries read, no D', () => {
  const { mmu, t } = mmuPae();
  t.map(0x1000, 0x10, PTE_P | PTE_US); // read-only
  const before = [mmu.mem.read32(t.pdeAddr(0x1000)), mmu.mem.read32(t.pteAddr(0x1000))];
  assert.ok(mmu.translate(0x1000, W_U) < 0);
  assert.equal([mmu.mem.read32(t.pdeAddr(0x1000)), mmu.mem.read32(t.pteAddr(0x1000))], before);
  t.map(0x2000, 0x20, PTE_P, 0x10); // reserved bit
  const b2 = mmu.mem.read32(t.pteAddr(0x2000));
  assert.ok(mmu.translate(0x2000, R_S) < 0);
  assert.is(mmu.mem.read32(t.pteAddr(0x2000)), b2);
  assert.is(mmu.counters.adUpdates, 0);
});

order('a probe walk sets nothing and charges nothing', () => {
  const { mmu, t } = mmuPae();
  t.map(0x1000, 0x10);
  const mem0 = [mmu.mem.read32(t.pdeAddr(0x1000)), mmu.mem.read32(t.pteAddr(0x1000))];
  const counters = JSON.stringify(mmu.counters);
  const cycles = mmu.cycles;
  const w = mmu.walker;
  assert.ok(w.walk(0x1000, W_U, false));
  assert.is(w.cycles, 0);
  assert.is(w.flags & TLBF_D, 0, 'the probe reports the entry as it is');
  assert.is(mmu.probe(0x1000, 1, true).pa, 0x10000);
  assert.is(mmu.probePa(0x1000, W_U), 0x10000);
  assert.is(mmu.probePa(0x9000, W_U), -1 - (PFEC_W | PFEC_U));
  assert.equal([mmu.mem.read32(t.pdeAddr(0x1000)), mmu.mem.read32(t.pteAddr(0x1000))], mem0);
  assert.is(JSON.stringify(mmu.counters), counters);
  assert.is(mmu.cycles, cycles);
  assert.is(mmu.cpu.cr2, 0, 'a probe fault does not set CR2');
  assert.is(mmu.tlbs.valid, 0, 'nor fill the TLB');
});

order('flags of a PAE translation: NX ORed, R/W and U/S ANDed over levels', () => {
  const { mmu, t } = mmuPae();
  t.map(0x1000, 0x10, PTE_P | PTE_US, PTE_NX_HI, PTE_P | PTE_RW | PTE_US);
  assert.ok(mmu.walker.walk(0x1000, R_U, true));
  assert.is(mmu.walker.flags, TLBF_US | TLBF_NX);
});

two.run();
pae.run();
order.run();
