/**
 * The VMI backend: the shared backend suite (PAE and 2-level) with the
 * monitor's invariants after every test, then what only VMI does: the ROM
 * calls each op makes, hidden faults the guest never sees, A/D written back,
 * shadows cached per pgd, lazy updates queued, the seed's unbalanced
 * release_pd as the monitor records it, and a pgd whose clone was never
 * announced leaving its kernel entries unshadowed.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ACCESS_READ, ACCESS_WRITE, PFEC_U, PFEC_W, PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US } from '../../emulator/paging-bits.js';
import type { MachineConfig, ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { createVmiBackend, VmiBackend } from '../../hypervisor/vmi/index.js';
import { backendSuite } from './backend-suite.js';

backendSuite('vmi', createVmiBackend, {
  check: (b) => assert.equal((b as VmiBackend).checkInvariants(), []),
});

const P = BigInt(PTE_P);
const RW = BigInt(PTE_RW);
const US = BigInt(PTE_US);
const TABLE = P | RW | US | BigInt(PTE_A | PTE_D);

const cfg = (pae: boolean): MachineConfig => ({ pae, memBytes: 32 << 20, cpu: 'core2', pageOffset: 0xc0000000, seed: 1 });

/** 2-level: swapper at pfn 1 (announced by pagetable_setup_start), pte page at pfn 2 mapping 0x00400000 -> pfn 0x100. */
function tiny2(): VmiBackend {
  const b = createVmiBackend(cfg(false));
  b.pagetable_setup_start(0x1000);
  b.alloc_pt(2);
  b.set_pmd(0x1000 + 4 * (0x00400000 >>> 22), (2n << 12n) | TABLE);
  b.set_pte(0x2000, (0x100n << 12n) | P | RW | US);
  b.write_cr3(0x1000);
  return b;
}

const s = suite('vmi: the monitor behind the ROM');

s('a first access is a hidden fault: the guest sees no fault, its pte gets A (and D on a write)', () => {
  const b = tiny2();
  const hidden0 = b.stats.traps['hidden_fault'] ?? 0;
  const r = b.access(0x00400010, ACCESS_READ, true);
  assert.ok(r.ok);
  if (r.ok) assert.is(r.gpa, 0x100010);
  assert.is((b.stats.traps['hidden_fault'] ?? 0) - hidden0, 1);
  assert.is(b.mem.read32(0x2000) & (PTE_A | PTE_D), PTE_A, 'A written back');
  // The shadow pte is read-only until the guest pte is dirty: the write is a second hidden fault.
  const w = b.access(0x00400010, ACCESS_WRITE, true);
  assert.ok(w.ok);
  assert.is((b.stats.traps['hidden_fault'] ?? 0) - hidden0, 2);
  assert.is(b.mem.read32(0x2000) & (PTE_A | PTE_D), PTE_A | PTE_D, 'D written back');
  // Now a hit: no more faults.
  b.access(0x00400014, ACCESS_WRITE, true);
  assert.is((b.stats.traps['hidden_fault'] ?? 0) - hidden0, 2);
  assert.is(b.stats.traps['reflected_fault'] ?? 0, 0);
  assert.equal(b.checkInvariants(), []);
});

s('a fault of the guest\'s own tables is reflected with its error code and CR2', () => {
  const b = tiny2();
  const r = b.access(0x00401000, ACCESS_WRITE, true);
  assert.not.ok(r.ok);
  if (!r.ok) assert.is(r.errorCode, PFEC_W | PFEC_U);
  assert.is(b.read_cr2(), 0x00401000);
  assert.is(b.stats.traps['reflected_fault'], 1);
});

s('each op is its ROM call', () => {
  const b = tiny2();
  const h = b.stats.hypercalls;
  assert.is(h['AllocatePage'], 2, 'swapper + pte page');
  assert.is(h['SetPxE'], 2);
  assert.is(h['SetCR3'], 1);
  b.flush_tlb_single(0x00400000);
  b.flush_tlb_user();
  b.release_pt(2);
  assert.is(h['InvalPage'], 1);
  assert.is(h['FlushTLB'], 1);
  assert.is(h['ReleasePage'], 1);
});

s('set_pte_at drops the shadow entry: the new mapping is used after the flush', () => {
  const b = tiny2();
  b.access(0x00400000, ACCESS_READ, true);
  b.set_pte_at({ pgd: 0x1000 }, 0x00400000, 0x2000, (0x200n << 12n) | P | RW | US);
  b.flush_tlb_single(0x00400000);
  const r = b.access(0x00400000, ACCESS_READ, true);
  assert.ok(r.ok && r.gpa === 0x200000);
  assert.equal(b.checkInvariants(), []);
});

s('lazy MMU mode queues the shadow side; leaving it applies the queue', () => {
  const b = tiny2();
  b.access(0x00400000, ACCESS_READ, true);
  b.set_lazy_mode('mmu');
  b.set_pte_at({ pgd: 0x1000 }, 0x00400000, 0x2000, 0n);
  assert.is(b.stats.hypercalls['SetPxE (queued)'], 1);
  b.set_lazy_mode('none');
  b.flush_tlb_single(0x00400000);
  const r = b.access(0x00400000, ACCESS_READ, true);
  assert.not.ok(r.ok);
  assert.equal(b.checkInvariants(), []);
});

s('CR3 switches reuse a cached shadow', () => {
  const b = tiny2();
  // a second pgd cloned from swapper
  b.mem.write32(0x3000 + 4 * 0x300, b.mem.read32(0x1000 + 4 * 0x300));
  b.alloc_pd_clone(3, 1, 768, 256);
  b.write_cr3(0x3000);
  b.write_cr3(0x1000);
  b.write_cr3(0x3000);
  assert.is(b.stats.traps['shadow_switch_built'], 2);
  assert.is(b.stats.traps['shadow_switch_cached'], 2);
});

s("the seed's unbalanced release_pd: recorded by the monitor and reported", () => {
  const b = createVmiBackend(cfg(true));
  // A PAE pgd page is never announced (only its pmds are); the seed's pgd_dtor releases it anyway.
  b.release_pd(7);
  const v = b.checkInvariants();
  assert.is(v.length, 1);
  assert.match(v[0]!, /release_page\(L2\) of pfn 0x7 that was never allocated as a page table/);
  assert.is(b.stats.traps['unbalanced_release_page'], 1);
});

s('a pgd whose alloc_pd_clone never came: its kernel entries stay unshadowed (the kernel faults there)', () => {
  const b = tiny2();
  // Kernel mapping in swapper: 0xc0000000 -> pfn 0x150 through pte page 4.
  b.alloc_pt(4);
  b.set_pmd(0x1000 + 4 * 0x300, (4n << 12n) | (P | RW) | BigInt(PTE_A | PTE_D));
  b.set_pte(0x4000, (0x150n << 12n) | P | RW);
  assert.ok(b.access(0xc0000000, ACCESS_READ, false).ok, 'swapper maps it');
  // pgd_ctor copies the kernel entries, but the announcement is missing.
  b.mem.write32(0x5000 + 4 * 0x300, b.mem.read32(0x1000 + 4 * 0x300));
  b.write_cr3(0x5000);
  const r = b.access(0xc0000000, ACCESS_READ, false);
  assert.not.ok(r.ok, 'unshadowed');
  assert.ok((b.stats.traps['unshadowed_entry'] ?? 0) >= 1);
  // With the announcement, the same copy is shadowed.
  b.write_cr3(0x1000);
  b.mem.write32(0x6000 + 4 * 0x300, b.mem.read32(0x1000 + 4 * 0x300));
  b.alloc_pd_clone(6, 1, 768, 256);
  b.write_cr3(0x6000);
  assert.ok(b.access(0xc0000000, ACCESS_READ, false).ok);
});

s('probe is the guest\'s view and changes nothing', () => {
  const b = tiny2();
  const r = b.probe(0x00400004, ACCESS_READ, true);
  assert.ok(r.ok && r.gpa === 0x100004);
  assert.is(b.mem.read32(0x2000) & PTE_A, 0);
  assert.is(b.stats.traps['hidden_fault'] ?? 0, 0);
});

s.run();

export type { ParavirtOps };
