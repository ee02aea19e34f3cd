import { area } from './base.mjs';
// The emulator's permission, reserved-bit, TLB and flush logic against tests/emulator.
export default area('emulator', ['emulator/walker.ts', 'emulator/tlb.ts', 'emulator/mmu.ts', 'emulator/cpu.ts'], 'emulator/');
