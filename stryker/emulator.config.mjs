import { area } from './base.mjs';
// The emulator: the walker (permission and reserved-bit checks, A/D updates),
// the TLB (fills, lookups, INVLPG, flushes), the MMU (translate, #PF delivery,
// counters), the CPU (control registers, PDPTE loads) and physical memory,
// against tests/emulator. cost-model.ts (tables of figures) and the
// formatters are not mutated.
export default area('emulator', ['emulator/walker.ts', 'emulator/tlb.ts', 'emulator/mmu.ts', 'emulator/cpu.ts', 'emulator/phys-mem.ts'], 'emulator/');
