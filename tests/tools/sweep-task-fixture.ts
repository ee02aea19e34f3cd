/**
 * A sweep-pool task for tests/tools/sweep.test.ts: item i returns i * init.k,
 * except item init.failAt, which throws (an InputError when init.input).
 */
import { InputError } from '../../tools/input-error.js';
import type { SweepTask, TaskRef } from '../../tools/sweep/pool.js';

export interface FixtureInit {
  k: number;
  failAt: number;
  input: boolean;
}

export const fixtureTask: SweepTask<FixtureInit, FixtureInit, number> = {
  setup: (init) => init,
  run: (ctx, i) => {
    if (i === ctx.failAt) {
      if (ctx.input) throw new InputError(`item ${i}: bad input`);
      throw new RangeError(`item ${i}: broken`);
    }
    return i * ctx.k;
  },
};

export const FIXTURE_TASK: TaskRef = { module: import.meta.url, name: 'fixtureTask' };
