/**
 * The Xen backend's class, kept under its old module name for the tools and
 * tests that import it from here. The guest port is split as Linux 2.6.23's
 * arch/i386/xen is: enlighten.ts (the paravirt_ops table: control
 * registers, TLB, page-table page lifecycle, mm hooks, lazy mode), mmu.ts
 * (entry updates and values, the pin/unpin walk), multicalls.ts (batching)
 * and direct-map.ts (the direct map's protection).
 */
export { XenBackend } from './enlighten.js';
