/**
 * The Xen backend: a model of Xen 3.1.0's direct paging (frame types and
 * counts, validation, pinning, refusals with Xen's reasons, the hypervisor
 * hole, pseudo-physical memory) and, on top of it, the guest port of Linux
 * 2.6.23's arch/i386/xen (enlighten.ts, mmu.ts, multicalls.ts,
 * direct-map.ts). See docs/hypervisor.md.
 */
import type { MachineConfig } from '../paravirt-ops.js';
import type { XenOptions } from './domain.js';
import { XenBackend } from './xen-backend.js';

export { XenBackend } from './xen-backend.js';
export { XenDomain, type XenOptions } from './domain.js';
export { XenHypercalls, type MmuUpdate, type MmuextOp, type MulticallEntry, type HypercallResult } from './hypercalls.js';
export { XenRefusal, R as XEN_REASONS } from './reasons.js';
export { checkXenInvariants } from './invariants.js';
export { xenCostTable, xenCosts, type XenCosts, type CostRow } from './costs.js';
export * from './abi.js';

/** The Xen backend for a config: identity p2m by default, pae_extended_cr3 on (as Linux's Xen port declares). */
export function createXenBackend(config: MachineConfig, opts: XenOptions = {}): XenBackend {
  return new XenBackend(config, opts);
}
