import { area } from './base.mjs';
// The guest's page-fault handling (memory.ts: handle_mm_fault, do_anonymous_page,
// do_wp_page, lines 69-150) against tests/guest-kernel (every backend, both
// paging modes; about 6 s a run under load, so the standing run is this range;
// widen it with --mutate guest-kernel/mm/memory.ts,guest-kernel/mm/fault.ts).
export default area('mm', ['guest-kernel/mm/memory.ts:69-150'], 'guest-kernel/');
