/** The emulated hardware's public surface (the hypervisor backends build on this). */
export * from './paging-bits.js';
export { PhysMem, MAX_PFN, type Frame } from './phys-mem.js';
export { Cpu, type CrWriteResult } from './cpu.js';
export { Tlbs, TlbLevel, allowMask, type LruClock, TLBF_D, TLBF_G, TLBF_NX, TLBF_RW, TLBF_US } from './tlb.js';
export { Walker } from './walker.js';
export { Mmu, accessClass, faultCode, type MmuOptions, type ProbeResult } from './mmu.js';
export { PRESETS, PRESET_NAMES, DEFAULT_PRESET, getPreset, MmuCounters, type CpuPreset, type CycleFigures, type TlbArray } from './cost-model.js';
export type { TraceSink, MmuEvent, WalkEvent, FlushEvent, WalkEntryRead } from './trace.js';
