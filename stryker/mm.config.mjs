import { area } from './base.mjs';
// The guest's memory management against tests/guest-kernel (every backend, both paging modes).
export default area('mm', ['guest-kernel/mm/memory.ts', 'guest-kernel/mm/fault.ts', 'guest-kernel/mm/pageattr.ts'], 'guest-kernel/');
