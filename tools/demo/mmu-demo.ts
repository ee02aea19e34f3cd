/**
 * The built-in MMU demonstration of `pvmmu demo`: PAE page tables built by
 * hand, accesses run on each CPU preset, translations, faults, TLB and cycles.
 */
import { Mmu } from '../../emulator/mmu.js';
import { CR0_PE, CR0_PG, CR0_WP, CR4_PAE, CR4_PGE, EFER_NXE, PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US } from '../../emulator/paging-bits.js';

export function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

export function runDemo(cpu: string) {
  const m = new Mmu({ cpu });
  const mem = m.mem;
  const log: string[] = [];
  mem.write64(0x1000 + 8 * 1, BigInt(0x2000 | PTE_P)); // PDPTE 1 covers 0x40000000..0x7fffffff
  mem.write64(0x2000, BigInt(0x3000 | PTE_P | PTE_RW | PTE_US));
  for (let i = 0; i < 64; i++) {
    const ro = i === 63 ? 0 : PTE_RW;
    mem.write64(0x3000 + 8 * i, 0x100000000n + BigInt(i * 4096) + BigInt(PTE_P | PTE_US | ro) | (1n << 63n));
  }
  m.writeEfer(EFER_NXE);
  m.writeCr4(CR4_PAE | CR4_PGE);
  m.writeCr0(CR0_PE | CR0_WP | CR0_PG);
  m.writeCr3(0x1000);
  for (let pass = 0; pass < 2; pass++) for (let i = 0; i < 64; i++) m.access(0x40000000 + i * 4096, 0, true);
  const pa = m.access(0x40000010, 1, true);
  log.push(`user write 0x40000010 -> pa 0x${pa.toString(16)}; PTE now 0x${mem.read64(0x3000).toString(16)} (A=${(mem.read32(0x3000) & PTE_A) !== 0}, D=${(mem.read32(0x3000) & PTE_D) !== 0})`);
  const f = m.access(0x4003f000, 1, true);
  log.push(`user write to read-only page 0x4003f000 -> #PF error code ${-1 - f} (P|W|U), CR2 0x${m.cpu.cr2.toString(16)}`);
  const x = m.access(0x40000000, 2, true);
  log.push(`user fetch from NX page 0x40000000 -> #PF error code ${-1 - x} (P|U|I/D)`);
  const c = m.counters;
  return { cpu, cycles: m.cycles, hits: c.tlbHits + c.l2TlbHits, misses: c.tlbMisses, walks: c.walks, faults: c.pageFaults, log };
}
