import { area } from './base.mjs';
// The emulator's permission and reserved-bit checks (the walker) and its TLB
// (fills, lookups, INVLPG, flushes) against tests/emulator. mmu.ts and cpu.ts
// are not in the standing run (time on a shared 2-core machine): add them
// with `--mutate` when there is time.
export default area('emulator', ['emulator/walker.ts', 'emulator/tlb.ts'], 'emulator/');
