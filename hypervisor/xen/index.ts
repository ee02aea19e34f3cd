/**
 * The Xen-like backend: a hypervisor model enforcing Xen 3.0/3.1's direct
 * paging rules (frame types and counts, validation, pinning, refusals with
 * Xen's reasons, the hypervisor hole, pseudo-physical memory) and the
 * guest-side ops of Linux 2.6.22's Xen port on top of it. See
 * docs/hypervisor.md.
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
