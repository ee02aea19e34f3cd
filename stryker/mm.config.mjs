import { area } from './base.mjs';
// The guest's page-fault handling (memory.ts: do_anonymous_page and
// do_wp_page, lines 82-130) against tests/guest-kernel (every backend, both
// paging modes; about 6 s a run under load, so the standing run is this range;
// widen it with --mutate guest-kernel/mm/memory.ts,guest-kernel/mm/fault.ts).
export default area('mm', ['guest-kernel/mm/memory.ts:82-130'], 'guest-kernel/');
