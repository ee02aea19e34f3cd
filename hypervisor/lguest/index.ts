/** The lguest backend (Linux 2.6.23 drivers/lguest); see docs/lguest.md. */
export { LguestBackend, createLguestBackend, lguestUnsupported, LGUEST_PGDIRS, LGUEST_RESERVE_MEM, LHCALL_RING_SIZE } from './lguest-backend.js';
export { lguestCostTable, lguestCosts, type LguestCosts, type LguestCostRow } from './costs.js';
