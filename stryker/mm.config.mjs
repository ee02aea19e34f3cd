import { area } from './base.mjs';
// The guest's fault handling and page-table copy/zap (memory.ts) against
// tests/guest-kernel (every backend, both paging modes; about 6 s a run, so
// only this file is in the standing run).
export default area('mm', ['guest-kernel/mm/memory.ts'], 'guest-kernel/');
