import { area } from './base.mjs';
// Xen's page-table rules and frame table against tests/hypervisor/xen-*
// (hypercalls.ts: add it with `--mutate` when there is time).
export default area('xen', ['hypervisor/xen/validate.ts', 'hypervisor/xen/frame-table.ts'], 'hypervisor/xen');
