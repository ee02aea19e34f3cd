/** The VMI backend (VMware's Virtual Machine Interface, Linux 2.6.21 arch/i386/kernel/vmi.c); see docs/vmi.md. */
export { VmiBackend, createVmiBackend, VMI_RESERVED_TOP } from './vmi-backend.js';
export { VmiMonitor, type UnbalancedRelease } from './rom.js';
export { vmiCostTable, vmiCosts, type VmiCosts, type VmiCostRow } from './costs.js';
