/** The shadow-paging engine shared by the VMI and lguest backends (see engine.ts, docs/shadow-paging.md). */
export { ShadowEngine, Shadow, type ShadowOptions } from './engine.js';
export { shadowCostTable, shadowCosts, type ShadowCosts, type ShadowCostRow } from './costs.js';
export { ShadowStats } from './stats.js';
export { ShadowGuestMemory } from './guest-memory.js';
