/**
 * The lguest backend: the shared backend suite (2-level only: lguest of 2.6.23
 * has no PAE) with the host's invariants after every test, then what only
 * lguest does: hypercalls per op, the async ring in lazy mode, the four cached
 * shadows, a world switch (a TLB flush) on every exit, and the refusal of PAE.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ACCESS_READ, ACCESS_WRITE, PFEC_U, PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US } from '../../emulator/paging-bits.js';
import type { MachineConfig } from '../../hypervisor/paravirt-ops.js';
import { createLguestBackend, LguestBackend, lguestUnsupported, LHCALL_RING_SIZE } from '../../hypervisor/lguest/index.js';
import { backendSuite } from './backend-suite.js';

backendSuite('lguest', createLguestBackend, {
  modes: ['2level'],
  check: (b) => assert.equal((b as LguestBackend).checkInvariants(), []),
});

const P = BigInt(PTE_P);
const RW = BigInt(PTE_RW);
const US = BigInt(PTE_US);
const TABLE = P | RW | US | BigInt(PTE_A | PTE_D);
const cfg = (pae = false): MachineConfig => ({ pae, memBytes: 32 << 20, cpu: 'core2', pageOffset: 0xc0000000, seed: 1 });

function tiny(): LguestBackend {
  const b = createLguestBackend(cfg());
  b.set_pmd(0x1000 + 4 * 1, (2n << 12n) | TABLE);
  b.set_pte(0x2000, (0x100n << 12n) | P | RW | US);
  b.write_cr3(0x1000);
  return b;
}

const s = suite('lguest: the host behind the hypercalls');

s('PAE is refused with the reason', () => {
  assert.match(lguestUnsupported({ pae: true }) ?? '', /2-level paging only/);
  assert.is(lguestUnsupported({ pae: false }), null);
  assert.throws(() => createLguestBackend(cfg(true)), /2-level paging only/);
});

s('hidden faults fill the shadow; A and D are written back; every exit flushes the TLB', () => {
  const b = tiny();
  const cr3w = b.stats.mmu.cr3Writes;
  const r = b.access(0x00400008, ACCESS_READ, true);
  assert.ok(r.ok && r.gpa === 0x100008);
  assert.is(b.stats.traps['hidden_fault'], 1);
  assert.is(b.mem.read32(0x2000) & (PTE_A | PTE_D), PTE_A);
  assert.ok(b.stats.mmu.cr3Writes > cr3w, 'the return into the guest reloads CR3');
  b.access(0x00400008, ACCESS_WRITE, true);
  assert.is(b.mem.read32(0x2000) & (PTE_A | PTE_D), PTE_A | PTE_D);
  assert.equal(b.checkInvariants(), []);
});

s('ops are their hypercalls: set_pte_at -> SET_PTE, set_pmd -> SET_PMD, write_cr3 -> NEW_PGTABLE, flushes -> FLUSH_TLB / SET_PTE 0', () => {
  const b = tiny();
  const h = b.stats.hypercalls;
  assert.is(h['LHCALL_SET_PMD'], 1);
  assert.is(h['LHCALL_NEW_PGTABLE'], 1);
  assert.is(h['LHCALL_FLUSH_TLB'] ?? 0, 0, 'set_pte before the first CR3: no hypercall');
  b.set_pte_at({ pgd: 0x1000 }, 0x00401000, 0x2004, (0x101n << 12n) | P | US);
  b.flush_tlb_single(0x00401000);
  b.flush_tlb_user();
  b.set_pte(0x2008, 0n);
  assert.is(h['LHCALL_SET_PTE'], 2);
  assert.is(h['LHCALL_FLUSH_TLB'], 2);
});

s('lazy mode: calls go into the ring, one FLUSH_ASYNC issues them', () => {
  const b = tiny();
  b.access(0x00400000, ACCESS_READ, true);
  b.set_lazy_mode('mmu');
  b.set_pte_at({ pgd: 0x1000 }, 0x00400000, 0x2000, 0n);
  b.flush_tlb_single(0x00400000);
  assert.is(b.stats.hypercalls['LHCALL_SET_PTE (async)'], 2);
  b.set_lazy_mode('none');
  assert.is(b.stats.hypercalls['LHCALL_FLUSH_ASYNC'], 1);
  const r = b.access(0x00400000, ACCESS_READ, true);
  assert.not.ok(r.ok);
  if (!r.ok) assert.is(r.errorCode, PFEC_U);
  assert.equal(b.checkInvariants(), []);
});

s('a full ring makes the call synchronous', () => {
  const b = tiny();
  b.set_lazy_mode('mmu');
  for (let i = 0; i < LHCALL_RING_SIZE + 1; i++) b.flush_tlb_user();
  assert.is(b.stats.hypercalls['LHCALL_FLUSH_TLB (async)'], LHCALL_RING_SIZE);
  assert.is(b.stats.hypercalls['LHCALL_FLUSH_TLB'], 1);
  b.set_lazy_mode('none');
});

s('at most four shadows are cached; a fifth pgd recycles one (kernel part kept, user part flushed)', () => {
  const b = tiny();
  for (let i = 0; i < 6; i++) {
    const pgd = (0x10 + i) * 0x1000;
    b.write_cr3(pgd);
  }
  assert.ok(b.engine.shadows().length <= 4);
  assert.equal(b.checkInvariants(), []);
});

s.run();
