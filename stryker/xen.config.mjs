import { area } from './base.mjs';
// Xen 3.1.0's page-table rules, frame table and hypercalls against
// tests/hypervisor/xen-*.
export default area('xen', ['hypervisor/xen/validate.ts', 'hypervisor/xen/frame-table.ts', 'hypervisor/xen/hypercalls.ts'], 'hypervisor/xen');
