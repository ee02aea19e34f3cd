/**
 * The Xen backend against the shared backend suite (PAE and 2-level): a page
 * table built through the interface translates the same as on bare hardware.
 * Run with identity and shuffled p2m (and machine frames above 4 GiB under
 * PAE with the pae_extended_cr3 assist), the invariant checker after every
 * test.
 */
import { checkXenInvariants, createXenBackend, XenBackend } from '../../hypervisor/xen/index.js';
import type { ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { backendSuite } from './backend-suite.js';

const check = (b: ParavirtOps): void => {
  const v = checkXenInvariants(b as XenBackend);
  if (v.length > 0) throw new Error(`Xen invariants violated:\n  ${v.join('\n  ')}`);
};

backendSuite('xen identity p2m', (cfg) => createXenBackend(cfg), { check });
backendSuite('xen shuffled p2m', (cfg) => createXenBackend(cfg, { p2m: 'shuffled' }), { check });
backendSuite('xen shuffled p2m above 4 GiB', (cfg) => createXenBackend(cfg, { p2m: 'shuffled', above4g: true }), {
  check,
  modes: ['pae'],
});
