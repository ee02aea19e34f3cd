/**
 * The shadow-paging engine on its own (through the VMI and lguest backends
 * that own it): the reverse maps drop exactly the shadow entries built from a
 * changed guest entry, a PDPTE change drops the PAE shadow of that root, a
 * guest large page is shadowed as one, a guest entry naming a frame outside
 * guest memory is refused, lguest's recycled slot keeps its kernel part, and
 * the invariant check catches a shadow wider than the guest's tables.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ACCESS_READ, ACCESS_WRITE, PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US } from '../../emulator/paging-bits.js';
import { createLguestBackend } from '../../hypervisor/lguest/index.js';
import type { MachineConfig } from '../../hypervisor/paravirt-ops.js';
import { HypervisorRefusal } from '../../hypervisor/types.js';
import { createVmiBackend, type VmiBackend } from '../../hypervisor/vmi/index.js';

const P = BigInt(PTE_P);
const RW = BigInt(PTE_RW);
const US = BigInt(PTE_US);
const AD = BigInt(PTE_A | PTE_D);
const TABLE = P | RW | US | AD;
const cfg = (pae: boolean): MachineConfig => ({ pae, memBytes: 32 << 20, cpu: 'core2', pageOffset: 0xc0000000, seed: 5 });

/** PAE: pdpt at 0x1000 (slot 0 -> pmd pfn 2, slot 3 -> pmd pfn 3), pte page pfn 4 for 0x00400000 -> pfn 0x100. */
function pae(): VmiBackend {
  const b = createVmiBackend(cfg(true));
  b.alloc_pd(2);
  b.alloc_pd(3);
  b.set_pud(0x1000, (2n << 12n) | P);
  b.set_pud(0x1000 + 24, (3n << 12n) | P);
  b.alloc_pt(4);
  b.set_pmd(0x2000 + 8 * 2, (4n << 12n) | TABLE);
  b.set_pte(0x4000, (0x100n << 12n) | P | RW | US);
  b.write_cr3(0x1000);
  return b;
}

const s = suite('shadow engine');

s('PAE: a fill builds one shadow pte page; a changed pte drops only its shadow entry', () => {
  const b = pae();
  const e = b.monitor.engine;
  const pages0 = e.shadowPages;
  assert.ok(b.access(0x00400000, ACCESS_READ, true).ok);
  assert.is(e.shadowPages, pages0 + 1, 'one shadow pte page');
  b.set_pte(0x4000 + 8, (0x101n << 12n) | P | US); // a neighbour: nothing shadowed there
  assert.ok(b.access(0x00400000, ACCESS_READ, true).ok);
  assert.is(b.stats.traps['hidden_fault'], 1, 'the filled entry survived a neighbour change');
  b.set_pte(0x4000, (0x102n << 12n) | P | US);
  b.flush_tlb_single(0x00400000);
  const r = b.access(0x00400000, ACCESS_READ, true);
  assert.ok(r.ok && r.gpa === 0x102000);
  assert.is(b.stats.traps['hidden_fault'], 2);
  assert.equal(b.checkInvariants(), []);
});

s('PAE: a PDPTE change drops the shadow of that root (rebuilt at the next CR3 load)', () => {
  const b = pae();
  b.access(0x00400000, ACCESS_READ, true);
  b.write_cr3(0x1000);
  assert.is(b.stats.traps['shadow_switch_cached'], 1);
  b.set_pud(0x1000 + 8, (3n << 12n) | P);
  b.write_cr3(0x1000);
  assert.is(b.stats.traps['shadow_switch_built'], 2);
  assert.equal(b.checkInvariants(), []);
});

s('a guest large page is shadowed as a large page (VMI shows PSE)', () => {
  const b = createVmiBackend(cfg(false));
  b.pagetable_setup_start(0x1000);
  b.set_pmd(0x1000 + 4 * 0x300, (0x400n << 12n) | P | RW | AD | BigInt(PTE_PS));
  b.write_cr3(0x1000);
  const r = b.access(0xc0123456, ACCESS_WRITE, false);
  assert.ok(r.ok && r.gpa === 0x400000 + 0x123456);
  assert.is(b.monitor.engine.shadowPages, 1, 'no shadow pte page for a large page');
});

s('a guest entry naming a frame outside guest memory is refused', () => {
  const b = createLguestBackend(cfg(false));
  b.set_pmd(0x1000 + 4, (2n << 12n) | TABLE);
  b.set_pte(0x2000, (0x7ffffn << 12n) | P | US);
  b.write_cr3(0x1000);
  assert.throws(() => b.access(0x00400000, ACCESS_READ, true), (e: unknown) => e instanceof HypervisorRefusal && /bad page table entry/.test(e.message));
});

s('lguest: a guest PSE entry kills the guest (check_gpte)', () => {
  const b = createLguestBackend(cfg(false));
  b.set_pmd(0x1000 + 4 * 0x300, (0x400n << 12n) | P | RW | AD | BigInt(PTE_PS));
  b.write_cr3(0x1000);
  assert.throws(() => b.access(0xc0000000, ACCESS_READ, false), /_PAGE_PSE/);
});

s('lguest: a recycled slot keeps its kernel part and loses its user part', () => {
  const b = createLguestBackend(cfg(false));
  b.set_pmd(0x1000 + 4 * 0x300, (2n << 12n) | P | RW | AD);
  b.set_pte(0x2000, (0x150n << 12n) | P | RW | AD);
  b.set_pmd(0x1000 + 4, (3n << 12n) | TABLE);
  b.set_pte(0x3000, (0x160n << 12n) | P | RW | US | AD);
  b.write_cr3(0x1000);
  b.access(0xc0000000, ACCESS_READ, false);
  b.access(0x00400000, ACCESS_READ, true);
  const e = b.engine;
  const before = e.shadowPages;
  // Five other pgds with the same kernel entry: the engine holds at most four shadows.
  for (let i = 0; i < 5; i++) {
    const pgd = (0x20 + i) * 0x1000;
    b.mem.write32(pgd + 4 * 0x300, b.mem.read32(0x1000 + 4 * 0x300));
    b.write_cr3(pgd);
    assert.ok(b.access(0xc0000000, ACCESS_READ, false).ok);
  }
  assert.ok(e.shadows().length <= 4);
  assert.ok(e.shadowPages <= before + 4 * 2, 'bounded');
  assert.equal(b.checkInvariants(), []);
});

s('the invariant check catches a shadow entry wider than the guest entry', () => {
  const b = createLguestBackend(cfg(false));
  b.set_pmd(0x1000 + 4, (2n << 12n) | TABLE);
  b.set_pte(0x2000, (0x100n << 12n) | P | US);
  b.write_cr3(0x1000);
  b.access(0x00400000, ACCESS_READ, true);
  assert.equal(b.checkInvariants(), []);
  // Corrupt the shadow: make the entry writable behind the engine's back.
  const sh = b.engine.active!;
  const spt = sh.ptMfn[1]!;
  const m = b.mmu.mem;
  m.write32(spt * 4096, m.read32(spt * 4096) | PTE_RW);
  assert.match(b.checkInvariants().join('\n'), /writable in the shadow/);
});

s.run();
