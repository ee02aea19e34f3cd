/**
 * The regression matrix on the shadow-paging backends: every example
 * workload runs on every backend its configuration allows (VMI in every
 * configuration, lguest in 2-level ones), and what each backend shows of the
 * seed patch's bugs is what docs/seed-bugs.md says.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { listWorkloads, matrixBackends, runMatrix } from '../../tools/regression/matrix.js';

const s = suite('regression: every backend its configuration allows');

for (const w of listWorkloads()) {
  s(`${w}: native, xen and vmi in every configuration, lguest in every 2-level one`, () => {
    for (const r of runMatrix(w)) {
      const names = matrixBackends(r).map((b) => b.name);
      assert.equal(names, r.config.pae ? ['native', 'xen', 'vmi'] : ['native', 'xen', 'vmi', 'lguest'], `${w} ${r.config.label}`);
      for (const { name, run } of matrixBackends(r)) {
        assert.is(run.result.config.backend, name);
        assert.ok(run.result.guest.statements > 0 || run.result.failure !== null, `${w} ${r.config.label} ${name}: nothing ran`);
      }
    }
  });
}

s('the seed bugs Xen shows do not happen on VMI or lguest (shared kernel pmd, queued updates applied at every entry)', () => {
  for (const w of ['seed-release-pd.pvw', 'seed-pgd-list-race.pvw', 'seed-lazy-vmalloc-fault.pvw']) {
    for (const r of runMatrix(w)) {
      for (const { name, run } of matrixBackends(r)) {
        if (name !== 'vmi' && name !== 'lguest') continue;
        assert.is(run.result.failure, null, `${w} ${r.config.label} ${name}: ${run.result.failure?.message}`);
        assert.equal(run.backendInvariants, [], `${w} ${r.config.label} ${name}`);
        assert.equal(run.result.observations, r.native.result.observations, `${w} ${r.config.label} ${name}: as native`);
      }
    }
  }
});

s('lguest takes vmalloc faults where native and VMI have a global TLB entry: it strips _PAGE_GLOBAL and flushes on every exit', () => {
  const r = runMatrix('default.pvw').find((x) => x.config.label === '2-level 3G')!;
  const faults = (x: { result: { pageFaults: { vmalloc: number } } }): number => x.result.pageFaults.vmalloc;
  assert.is(faults(r.vmi), faults(r.native));
  assert.ok(faults(r.lguest!) > faults(r.native), `lguest ${faults(r.lguest!)} vs native ${faults(r.native)}`);
});

s.run();
