/**
 * A sweep-pool task for tests/tools/sweep.test.ts: item i returns i * init.k,
 * except item init.failAt, which throws (an InputError when init.input);
 * setup throws when init.setupFails.
 */
import { InputError } from '../../tools/input-error.js';
import type { SweepTask, TaskRef } from '../../tools/sweep/pool.js';

export interface FixtureInit {
  k: number;
  failAt: number;
  input: boolean;
  /** setup throws (a worker that cannot build its context). */
  setupFails?: boolean;
  /** Each item takes this long (a busy wait). */
  itemMs?: number;
}

export const fixtureTask: SweepTask<FixtureInit, FixtureInit, number> = {
  setup: (init) => {
    if (init.setupFails === true) throw new RangeError('setup: cannot build the context');
    return init;
  },
  run: (ctx, i) => {
    const until = Date.now() + (ctx.itemMs ?? 0);
    while (Date.now() < until);
    if (i === ctx.failAt) {
      if (ctx.input) throw new InputError(`item ${i}: bad input`);
      throw new RangeError(`item ${i}: broken`);
    }
    return i * ctx.k;
  },
};

export const FIXTURE_TASK: TaskRef = { module: import.meta.url, name: 'fixtureTask' };
