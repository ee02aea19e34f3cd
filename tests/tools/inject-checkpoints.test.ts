/**
 * Checkpointed inject sweeps (issue 12) give the same report as the
 * reference path, which boots and replays the workload for every injected
 * run: the same clean run, the same accounts, the same outcome, site, line,
 * leak and crash for every point, byte for byte, in both modes (allocation
 * failures, mmu_update refusals), on native and Xen, PAE and 2-level, for
 * all points and for a sample (--max-runs), and for a list of points out of
 * order. The checkpoints are bounded and sit before their points.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MAX_CHECKPOINTS, recordCheckpoints } from '../../tools/inject/checkpoint.js';
import { injectJson } from '../../tools/inject/summary.js';
import { injectSweep, type InjectOptions } from '../../tools/inject/sweep.js';
import { checkScript } from '../../tools/workload/check.js';
import { resolveConfig, type RunConfig } from '../../tools/workload/config.js';
import { Interpreter } from '../../tools/workload/interpreter.js';
import { parseScript } from '../../tools/workload/parser.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function load(file: string, over: Partial<RunConfig>): { script: ReturnType<typeof parseScript>; cfg: RunConfig } {
  const script = parseScript(file, readFileSync(ROOT + file, 'utf8'));
  const cfg = resolveConfig(file, script.machine, over);
  checkScript(script, cfg);
  return { script, cfg };
}

const CASES: { file: string; over: Partial<RunConfig>; o: InjectOptions }[] = [
  { file: 'tests/tools/fixtures/inject-fork.pvw', over: { backend: 'native', pae: true }, o: {} },
  { file: 'tests/tools/fixtures/inject-fork.pvw', over: { backend: 'xen', pae: true }, o: {} },
  { file: 'tests/tools/fixtures/inject-fork.pvw', over: { backend: 'xen', pae: false }, o: { maxRuns: 17 } },
  { file: 'tests/tools/fixtures/inject-cpa.pvw', over: { backend: 'native', pae: false }, o: {} },
  { file: 'tests/tools/fixtures/inject-vmalloc.pvw', over: { backend: 'xen', pae: true }, o: { maxRuns: 25 } },
  { file: 'tools/workloads/seed-release-pd.pvw', over: { backend: 'xen', pae: true }, o: { maxRuns: 20 } },
  { file: 'tools/workloads/fork-exit.pvw', over: { backend: 'native', pae: false }, o: { only: [40, 3, 17, 1] } },
  { file: 'tests/tools/fixtures/inject-fork.pvw', over: { backend: 'xen', pae: true }, o: { mode: 'mmu_update' } },
  { file: 'tests/tools/fixtures/inject-fork.pvw', over: { backend: 'xen', pae: false }, o: { mode: 'mmu_update' } },
  { file: 'tools/workloads/fork-exit.pvw', over: { backend: 'xen', pae: true }, o: { mode: 'mmu_update', maxRuns: 30, seed: 3, xenP2m: 'shuffled' } },
];

for (const { file, over, o } of CASES) {
  const what = `${file} ${over.backend} ${over.pae ? 'PAE' : '2-level'} ${JSON.stringify(o)}`;
  test(`checkpointed = booted afresh: ${what}`, () => {
    const { script, cfg } = load(file, over);
    const ref = injectSweep(script, cfg, { ...o, checkpoints: false });
    const got = injectSweep(script, cfg, { ...o, checkpoints: true });
    assert.ok(ref.runs > 0, 'the case sweeps something');
    assert.is(JSON.stringify(injectJson(got)), JSON.stringify(injectJson(ref)));
    assert.equal(got, ref);
  });
}

test('checkpoints: at most MAX_CHECKPOINTS (plus boot), each before the points it serves, fewer points made than k', () => {
  const { script, cfg } = load('tools/workloads/fork-exit.pvw', { backend: 'native', pae: true });
  const it = new Interpreter(script, cfg, { seed: 1 });
  const boot = it.snapshot();
  const a0 = it.kernel.allocations;
  const doneAfter = [0];
  while (it.advance()) doneAfter.push(it.kernel.allocations - a0);
  const total = doneAfter[doneAfter.length - 1]!;
  assert.ok(total > MAX_CHECKPOINTS * 2, `${total} allocations`);
  const ks = Array.from({ length: total }, (_, i) => i + 1);
  const cps = recordCheckpoints(boot, doneAfter, ks);
  assert.ok(cps.list.length <= MAX_CHECKPOINTS + 1, `${cps.list.length} checkpoints`);
  assert.ok(cps.list.length > MAX_CHECKPOINTS / 2, 'spread over the run');
  for (const k of ks) {
    const cp = cps.startFor(k);
    assert.ok(cp.done < k, `k=${k}: checkpoint with ${cp.done} made`);
  }
  // The checkpoint's machine has made exactly `done` allocations since boot.
  for (const cp of cps.list) {
    const r = cp.snapshot.restore();
    assert.is(r.kernel.allocations - a0, cp.done);
  }
  // A few wanted points make a few checkpoints.
  assert.ok(recordCheckpoints(boot, doneAfter, [1, total]).list.length <= 3);
});

test.run();
