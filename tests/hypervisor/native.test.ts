/**
 * The native backend: the shared backend suite (PAE and 2-level), then what
 * only bare hardware does: large pages, stale TLB entries until a flush,
 * what each op costs (no hypercalls, a store one data-cache access), which counters
 * each flush moves, and the guest bugs it refuses.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PRESETS } from '../../emulator/cost-model.js';
import {
  ACCESS_FETCH,
  ACCESS_READ,
  ACCESS_WRITE,
  CR0_PG,
  CR0_WP,
  CR4_PAE,
  CR4_PGE,
  CR4_PSE,
  EFER_NXE,
  PFEC_ID,
  PFEC_P,
  PFEC_U,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_P,
  PTE_PS,
  PTE_RW,
  PTE_US,
} from '../../emulator/paging-bits.js';
import { createNativeBackend, NativeBackend } from '../../hypervisor/native.js';
import type { MachineConfig } from '../../hypervisor/paravirt-ops.js';
import { backendSuite } from './backend-suite.js';

backendSuite('native', createNativeBackend);

const P = BigInt(PTE_P);
const RW = BigInt(PTE_RW);
const US = BigInt(PTE_US);
const PS = BigInt(PTE_PS);
const G = BigInt(PTE_G);
const AD = BigInt(PTE_A | PTE_D);
const NX = 1n << 63n;
const TABLE = P | RW | US | AD;

const cfg = (pae: boolean): MachineConfig => ({ pae, memBytes: 32 << 20, cpu: 'core2', pageOffset: 0xc0000000 });

/**
 * A minimal address space: pgd at pfn 1 (PAE: pmds at pfns 2..5), a pte page
 * at pfn 6 for 0x00400000.., mapping user page 0x00400000 -> pfn 0x100 and a
 * global kernel page 0xc0000000 -> pfn 0x101 (pte page pfn 7).
 */
interface Tiny {
  b: NativeBackend;
  pae: boolean;
  ptep(va: number): number;
}

function tiny(pae: boolean): Tiny {
  const b = createNativeBackend(cfg(pae));
  const pgd = 0x1000;
  const esz = pae ? 8 : 4;
  const ptPages = new Map<number, number>(); // pde key -> pte page pfn
  let nextPt = 6;
  const pdeAddr = (va: number): number =>
    pae ? (2 + (va >>> 30)) * 4096 + 8 * ((va >>> 21) & 511) : pgd + 4 * (va >>> 22);
  if (pae) for (let i = 0; i < 4; i++) b.set_pud(pgd + 8 * i, b.make_pgd((BigInt(2 + i) << 12n) | P));
  const ptep = (va: number): number => {
    const key = pae ? va >>> 21 : va >>> 22;
    let pt = ptPages.get(key);
    if (pt === undefined) {
      pt = nextPt++;
      ptPages.set(key, pt);
      b.alloc_pt(pt);
      b.set_pmd(pdeAddr(va), (BigInt(pt) << 12n) | TABLE);
    }
    return pt * 4096 + esz * (pae ? (va >>> 12) & 511 : (va >>> 12) & 1023);
  };
  b.set_pte(ptep(0x00400000), (0x100n << 12n) | P | RW | US);
  b.set_pte(ptep(0xc0000000), (0x101n << 12n) | P | RW | AD | G);
  b.write_cr3(pgd);
  return { b, pae, ptep };
}

for (const pae of [true, false]) {
  const mode = pae ? 'PAE' : '2-level';
  const s = suite(`native (${mode}): bare hardware only`);

  s('identity: bare hardware, ring 0, shared kernel pmd, nothing reserved, large pages', () => {
    const b = createNativeBackend(cfg(pae));
    assert.is(b.name, 'bare hardware');
    assert.is(b.paravirtEnabled, false);
    assert.is(b.kernelRpl, 0);
    assert.is(b.sharedKernelPmd, true);
    assert.is(b.reservedTop, 0);
    assert.is(b.largePagesAllowed, true);
    assert.is(b.mem.nrPages, (32 << 20) / 4096);
    assert.equal(b.stats.hypercalls, {});
    assert.is(b.stats.pinned, 0);
  });

  s('paging is off until the first write_cr3, then on with the config\'s CR0/CR4/EFER', () => {
    const b = createNativeBackend(cfg(pae));
    assert.is(b.mmu.cpu.paging, false);
    const r = b.access(0x123456, ACCESS_WRITE, false);
    assert.equal(r, { ok: true, gpa: 0x123456 });
    if (pae) b.set_pud(0x1000 + 24, (2n << 12n) | P);
    b.write_cr3(0x1000);
    const cpu = b.mmu.cpu;
    assert.is(cpu.paging, true);
    assert.is((cpu.cr0 & (CR0_PG | CR0_WP)) >>> 0, (CR0_PG | CR0_WP) >>> 0);
    assert.is(cpu.cr4, ((pae ? CR4_PAE : 0) | CR4_PSE | CR4_PGE) >>> 0);
    assert.is(cpu.efer & EFER_NXE, pae ? EFER_NXE : 0);
    assert.is(cpu.cr3, 0x1000);
    if (pae) assert.is(cpu.pdpte(3), (2n << 12n) | P, 'PDPTEs loaded from the new pgd');
    assert.is(b.read_cr3(), 0x1000);
  });

  s('large pages: a PSE pde maps 4 MiB (2-level) / 2 MiB (PAE)', () => {
    const { b } = tiny(pae);
    const large = pae ? 2 << 20 : 4 << 20;
    const va = 0xc0800000; // large-page aligned in both modes
    const pfn = pae ? 0x600 : 0x800; // 2 MiB / 4 MiB aligned frame
    const pdeAddr = pae ? 5 * 4096 + 8 * ((va >>> 21) & 511) : 0x1000 + 4 * (va >>> 22);
    b.set_pmd(pdeAddr, b.make_pmd((BigInt(pfn) << 12n) | P | RW | AD | PS));
    const off = large - 8;
    assert.equal(b.access(va + off, ACCESS_READ, false), { ok: true, gpa: pfn * 4096 + off });
    const p = b.mmu.probe(va + 0x1234, ACCESS_READ, false);
    assert.is(p.pageSize, large);
    assert.is(p.pa, pfn * 4096 + 0x1234);
    const walks1 = b.stats.mmu.walksByDepth[1]!;
    b.flush_tlb_user();
    b.access(va, ACCESS_READ, false);
    assert.is(b.stats.mmu.walksByDepth[1]! - walks1, 1, 'a large-page walk reads one level below the root');
  });

  s('native set_pte is a plain store: no hypercalls, the cycles of one store, stale TLB until flushed', () => {
    const t = tiny(pae);
    const b = t.b;
    assert.equal(b.access(0x00400010, ACCESS_READ, true), { ok: true, gpa: 0x100010 });
    const cycles = b.stats.cycles;
    const counters = (): string => JSON.stringify({ ...b.stats.mmu, otherCycles: 0, ledger: 0 }); // only events: cycles are checked below
    const otherCounters = counters();
    b.set_pte(t.ptep(0x00400000), (0x102n << 12n) | P | RW | US);
    b.set_pte_atomic(t.ptep(0x00400000), (0x102n << 12n) | P | RW | US);
    b.alloc_pt(9);
    b.release_pt(9);
    b.pte_update({ pgd: 0x1000 }, 0x400000, t.ptep(0x00400000));
    b.activate_mm(null, { pgd: 0x1000 });
    b.set_lazy_mode('mmu');
    b.set_lazy_mode('none');
    const fig = PRESETS.core2!.cycles;
    assert.is(b.stats.cycles - cycles, fig.pteStore + (pae ? fig.adUpdate : fig.pteStore), 'a store and an atomic store; nops cost nothing');
    assert.is(counters(), otherCounters);
    assert.equal(b.stats.hypercalls, {});
    assert.equal(b.stats.traps, {});
    // Hardware: the TLB still holds the old translation.
    assert.equal(b.access(0x00400010, ACCESS_READ, true), { ok: true, gpa: 0x100010 }, 'stale TLB entry');
    // probe walks the tables in memory.
    assert.equal(b.probe(0x00400010, ACCESS_READ, true), { ok: true, gpa: 0x102010 });
    b.flush_tlb_single(0x00400000);
    assert.equal(b.access(0x00400010, ACCESS_READ, true), { ok: true, gpa: 0x102010 });
    if (pae) {
      assert.is(b.mem.read64(t.ptep(0x00400000)) & ~AD, (0x102n << 12n) | P | RW | US);
    } else {
      assert.is(b.mem.read32(t.ptep(0x00400000) + 4), 0, '2-level set_pte stores 4 bytes only');
    }
  });

  s('counters: flush_tlb_user reloads CR3 (globals survive), flush_tlb_kernel toggles PGE (all gone)', () => {
    const { b } = tiny(pae);
    const c = b.stats.mmu;
    b.access(0x00400000, ACCESS_READ, true);
    b.access(0xc0000000, ACCESS_READ, false);
    const hits = c.tlbHits;
    b.access(0x00400000, ACCESS_READ, true);
    b.access(0xc0000000, ACCESS_READ, false);
    assert.is(c.tlbHits - hits, 2, 'both cached');

    let misses = c.tlbMisses;
    const cr3Writes = c.cr3Writes;
    const walks = c.walks;
    b.flush_tlb_user();
    assert.is(c.cr3Writes - cr3Writes, 1);
    b.access(0x00400000, ACCESS_READ, true);
    b.access(0xc0000000, ACCESS_READ, false);
    assert.is(c.tlbMisses - misses, 1, 'only the non-global page missed');
    assert.is(c.walks - walks, 1);

    misses = c.tlbMisses;
    const full = c.flushesFull;
    const cyc = b.stats.cycles;
    b.flush_tlb_kernel();
    assert.is(c.flushesFull - full, 2, 'PGE off and on again: two CR4 writes');
    const cy = PRESETS.core2!.cycles;
    const expected = 2 * cy.fullFlush + cy.cr3Write + (pae ? 3 * cy.pdpteLoad : 0);
    assert.is(b.stats.cycles - cyc, expected, '__flush_tlb_global cycles');
    b.access(0x00400000, ACCESS_READ, true);
    b.access(0xc0000000, ACCESS_READ, false);
    assert.is(c.tlbMisses - misses, 2, 'global page flushed too');

    const inv = c.invlpgs;
    b.flush_tlb_single(0xc0000000);
    assert.is(c.invlpgs - inv, 1);
    misses = c.tlbMisses;
    b.access(0xc0000000, ACCESS_READ, false);
    b.access(0x00400000, ACCESS_READ, true);
    assert.is(c.tlbMisses - misses, 1, 'INVLPG dropped just that page');
  });

  s('a #PF is charged by the MMU and reported with CR2', () => {
    const { b } = tiny(pae);
    const pf = b.stats.mmu.pageFaults;
    const cyc = b.stats.cycles;
    const r = b.access(0xc0000000, ACCESS_READ, true);
    assert.equal(r, { ok: false, errorCode: PFEC_P | PFEC_U, cr2: 0xc0000000 });
    assert.is(b.read_cr2(), 0xc0000000);
    assert.is(b.stats.mmu.pageFaults - pf, 1);
    assert.ok(b.stats.cycles - cyc >= PRESETS.core2!.cycles.pageFault);
    // probe reports the same without charging or touching CR2
    b.access(0x00400000, ACCESS_READ, true);
    const before = b.stats.cycles;
    assert.equal(b.probe(0xc0000000, ACCESS_READ, true), { ok: false, errorCode: PFEC_P | PFEC_U, cr2: 0xc0000000 });
    assert.is(b.stats.cycles, before);
    assert.is(b.read_cr2(), 0xc0000000);
  });

  s('guest memory: frames 0..nrPages-1 only', () => {
    const b = createNativeBackend(cfg(pae));
    const last = (b.mem.nrPages - 1) * 4096;
    b.mem.write64(last + 4088, 0x1122334455667788n);
    assert.is(b.mem.read64(last + 4088), 0x1122334455667788n);
    assert.is(b.mmu.mem.read32(last + 4088), 0x55667788, 'the same machine memory');
    assert.throws(() => b.mem.read32(last + 4096), RangeError);
    assert.throws(() => b.mem.write64(last + 4092, 1n), RangeError);
    assert.throws(() => b.mem.write32(-4, 1), RangeError);
    assert.throws(() => b.mem.zeroPage(b.mem.nrPages), RangeError);
    assert.throws(() => b.set_pte(last + 4096, 1n), RangeError);
  });

  s.run();
}

const paeOnly = suite('native (PAE only)');

paeOnly('write_cr3 of a pgd with a reserved PDPTE bit is a guest bug: #GP, thrown, CR3 kept', () => {
  const { b } = tiny(true);
  b.set_pud(0x3000, (7n << 12n) | P | RW); // RW is reserved in a PDPTE
  const gp = b.stats.mmu.gpFaults;
  assert.throws(() => b.write_cr3(0x3000), /#GP/);
  assert.is(b.stats.mmu.gpFaults - gp, 1);
  assert.is(b.read_cr3(), 0x1000);
});

paeOnly('a pgd entry change is seen only after CR3 is reloaded (PDPTE registers, AP-317080 8.1)', () => {
  const { b } = tiny(true);
  assert.equal(b.probe(0x40000000, ACCESS_READ, false), { ok: false, errorCode: 0, cr2: 0x40000000 });
  // Point slot 1 at pmd page 3 with a pte page mapping 0x40000000 -> pfn 0x103.
  b.set_pmd(3 * 4096, (20n << 12n) | TABLE);
  b.set_pte(20 * 4096, (0x103n << 12n) | P | RW);
  assert.ok(b.access(0x40000000, ACCESS_READ, false).ok, 'slot 1 was already present (pmd 3)');
  b.set_pud(0x1000 + 8, (21n << 12n) | P); // an empty pmd page
  assert.ok(b.probe(0x40000000, ACCESS_READ, false).ok, 'PDPTE register still points at the old pmd');
  b.flush_tlb_user();
  assert.equal(b.probe(0x40000000, ACCESS_READ, false), { ok: false, errorCode: 0, cr2: 0x40000000 });
});

paeOnly('NX: a fetch from an XD page faults with P|ID (EFER.NXE is on)', () => {
  const t = tiny(true);
  t.b.set_pte(t.ptep(0x00401000), (0x104n << 12n) | P | RW | US | NX);
  assert.ok(t.b.access(0x00401000, ACCESS_READ, true).ok);
  assert.equal(t.b.access(0x00401000, ACCESS_FETCH, true), {
    ok: false,
    errorCode: PFEC_P | PFEC_U | PFEC_ID,
    cr2: 0x00401000,
  });
});

paeOnly.run();

const two = suite('native (2-level only)');

two('a 2-level entry is 32 bits: a wider value is refused', () => {
  const t = tiny(false);
  assert.throws(() => t.b.set_pte(t.ptep(0x00400000), 1n << 32n), RangeError);
});

two('write_cr3 requires a page-aligned page directory', () => {
  const { b } = tiny(false);
  assert.throws(() => b.write_cr3(0x1020), /aligned/);
  assert.is(b.read_cr3(), 0x1000);
});

two.run();
