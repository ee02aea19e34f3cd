/**
 * Golden cost baselines: the cycles and event counts of every measure (and
 * the totals) of every example workload, per configuration and backend, must
 * equal tests/golden/*.json. A difference fails with a readable diff
 * (workload, config, backend, measure, field: golden -> now, % change); to
 * accept an intended change run `npm run golden:update` and review
 * `git diff tests/golden`.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { diffGolden, formatChange, formatChanges, goldenOf, readGolden, serializeGolden, staleGoldenFiles } from '../../tools/regression/golden.js';
import { listWorkloads, runMatrix } from '../../tools/regression/matrix.js';

const HOW = 'if the change is intended: npm run golden:update, then review git diff tests/golden';
const workloads = listWorkloads();
const s = suite('golden cost baselines');

for (const w of workloads) {
  s(`${w}: cycles and events per measure match tests/golden`, () => {
    const golden = readGolden(w);
    assert.ok(golden !== null, `no golden file for ${w} (new workload?); ${HOW}`);
    const changes = diffGolden(golden, goldenOf(w, runMatrix(w)));
    if (changes.length > 0) {
      assert.unreachable(`${changes.length} figure(s) differ from the golden file:\n${formatChanges(changes)}\n(${HOW})`);
    }
  });
}

s('no golden file is left over from a workload that is gone', () => {
  assert.equal(staleGoldenFiles(workloads), [], HOW);
});

s('the figures are deterministic: a fresh run gives byte-identical golden content', () => {
  for (const w of ['cow.pvw', 'seed-release-pd.pvw']) {
    const a = serializeGolden(goldenOf(w, runMatrix(w)));
    const b = serializeGolden(goldenOf(w, runMatrix(w, { fresh: true })));
    assert.is(b, a, `${w}: two runs differ`);
  }
});

s('a change is reported readably: workload, config, backend, measure, field, golden -> now, % change', () => {
  const now = goldenOf('cow.pvw', runMatrix('cow.pvw'));
  const old = JSON.parse(serializeGolden(now)) as typeof now;
  old.configs['PAE 3G']!.xen.measures['child-write']!.cycles = 20000;
  old.configs['2-level 1G']!.native.total['faults.cow']! += 1;
  delete old.configs['PAE 2G'];
  const changes = diffGolden(old, now);
  const lines = changes.map(formatChange);
  const cyc = now.configs['PAE 3G']!.xen.measures['child-write']!.cycles;
  const pct = (((cyc - 20000) / 20000) * 100).toFixed(2);
  assert.ok(
    lines.includes(`cow.pvw  PAE 3G  xen  measure child-write  cycles: 20,000 -> ${cyc.toLocaleString('en-US')} (${cyc >= 20000 ? '+' : ''}${pct}%)`),
    lines.join('\n'),
  );
  const cow = now.configs['2-level 1G']!.native.total['faults.cow']!;
  assert.ok(lines.includes(`cow.pvw  2-level 1G  native  total  faults.cow: ${cow + 1} -> ${cow} (${(((cow - cow - 1) / (cow + 1)) * 100).toFixed(2)}%)`), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('cow.pvw  PAE 2G  -  (configuration)  present: no -> yes')), lines.join('\n'));
  assert.is(changes.length, 3);
});

s.run();
