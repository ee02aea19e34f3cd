/**
 * The workload benchmarks' own logic (tools/bench/workloads.ts), not their
 * speed: the least-squares fit, and a small scale run whose vmalloc_sync_all
 * curve must be exactly one mmu_update per pgd and a straight line.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { linearFit, scaleRun } from '../../tools/bench/workloads.js';

test('linearFit: an exact line, and a noisy one', () => {
  const f = linearFit([1, 2, 4, 6], [13, 23, 43, 63]);
  assert.ok(Math.abs(f.slope - 10) < 1e-9, `slope ${f.slope}`);
  assert.ok(Math.abs(f.intercept - 3) < 1e-9, `intercept ${f.intercept}`);
  assert.ok(Math.abs(f.r2 - 1) < 1e-12);
  const g = linearFit([1, 2, 3, 4], [1, 4, 2, 5]);
  assert.ok(g.r2 > 0 && g.r2 < 0.9, `r2 ${g.r2}`);
});

test('scaleRun (60 processes): one pmd entry synced into every pgd, cycles linear in pgds', () => {
  const r = scaleRun(60, [15, 30, 60]);
  assert.equal(r.processes, 60);
  assert.equal(
    r.curve.map((p) => [p.processes, p.pgds, p.mmuUpdates]),
    [
      [15, 16, 16],
      [30, 31, 31],
      [60, 61, 61],
    ],
  );
  const perPgd = r.curve.map((p) => p.cycles / p.pgds);
  assert.ok(perPgd.every((c) => c === perPgd[0] && c > 0), `cycles per pgd ${perPgd.join(', ')}`);
  assert.ok(r.linear && r.fit.r2 > 0.999, `r2 ${r.fit.r2}`);
  assert.ok(r.memory.rssBytes > 0 && r.memory.framesTouched > 0);
});

test.run();
