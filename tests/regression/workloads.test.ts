/**
 * The regression suite: every example workload in tools/workloads/ runs
 * under `compare` semantics (tools/regression/matrix.ts) on the native and
 * the Xen backend, in PAE and 2-level paging and every split it supports;
 * what the guest observes must be identical and both backends' invariant
 * checkers clean -- except where tests/regression/expected-outcomes.json
 * declares the divergence (the pre-patch kernel on Xen, seed bugs), and
 * there the declared outcome must happen exactly.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configsFor, listWorkloads, loadScript, runMatrix, WORKLOADS_DIR } from '../../tools/regression/matrix.js';
import { linesOf, loadExpectedOutcomes, ruleFor, verdict } from './outcomes.js';

const workloads = listWorkloads();
const expected = loadExpectedOutcomes();

const lib = suite('regression: the workload library');

lib('the library has the workloads the docs and npm start rely on', () => {
  for (const w of [
    'default.pvw',
    'fork-exit.pvw',
    'fork-exec.pvw',
    'context-switch.pvw',
    'page-fault.pvw',
    'mmap-munmap.pvw',
    'cow.pvw',
    'vmalloc-churn.pvw',
    'change-page-attr.pvw',
    'split-1g.pvw',
    'split-2g.pvw',
    'prepatch-on-xen.pvw',
    'seed-pgd-list-race.pvw',
    'seed-release-pd.pvw',
    'seed-vmalloc-sync-stride.pvw',
    'seed-lazy-vmalloc-fault.pvw',
  ]) {
    assert.ok(workloads.includes(w), `${w} is missing from tools/workloads/`);
  }
});

lib('every workload teaches: a header naming it, what to look at, and how to run it', () => {
  for (const w of workloads) {
    const text = readFileSync(join(WORKLOADS_DIR, w), 'utf8');
    assert.ok(text.startsWith(`# ${w} -- `), `${w}: the first line should be "# ${w} -- what it is"`);
    const header = text.split('\n').filter((l) => l.startsWith('#')).join('\n');
    assert.match(header, /# Run:\n#   (pvmmu|npm start)/, `${w}: a "Run:" section with the command`);
    assert.ok(/What (it shows|the language can show)|The bug:/.test(header), `${w}: says what it shows`);
    assert.ok(/What to look at|What the language can show/.test(header), `${w}: says what to look at in the output`);
  }
});

lib('the matrix: both paging modes and all splits, unless the machine line pins them', () => {
  assert.equal(
    configsFor(loadScript('fork-exit.pvw')).map((c) => c.label),
    ['PAE 3G', 'PAE 2G', 'PAE 1G', '2-level 3G', '2-level 2G', '2-level 1G'],
  );
  assert.equal(configsFor(loadScript('split-1g.pvw')).map((c) => c.label), ['PAE 1G', '2-level 1G']);
  assert.equal(configsFor(loadScript('split-2g.pvw')).map((c) => c.label), ['PAE 2G', '2-level 2G']);
});

lib('expected-outcomes.json names existing workloads, and every rule applies somewhere', () => {
  for (const [w, rules] of Object.entries(expected)) {
    assert.ok(workloads.includes(w), `expected-outcomes.json: no workload ${w}`);
    const configs = configsFor(loadScript(w));
    rules.forEach((r, i) => {
      assert.ok(
        configs.some((c) => ruleFor(rules, c) === r),
        `expected-outcomes.json: ${w} rule ${i} (${JSON.stringify(r.when)}) matches no configuration`,
      );
      for (const b of [r.native, r.xen]) {
        if (b.at !== undefined) assert.is(linesOf(w, b.at).length, 1, `${w}: 'at' "${b.at}" must name exactly one line`);
        if (b.message !== undefined) new RegExp(b.message); // throws on a bad pattern
      }
    });
  }
});

lib('the verdict can fail: a wrong expectation or an undeclared divergence is reported', () => {
  const runs = runMatrix('prepatch-on-xen.pvw');
  const pae = runs.find((r) => r.config.label === 'PAE 3G')!;
  // Without its declaration the refusal is a divergence.
  assert.ok(verdict(pae, undefined).length > 0, 'undeclared divergence passes');
  const rules = expected['prepatch-on-xen.pvw']!;
  assert.equal(verdict(pae, rules), []);
  const wrong = (patch: object) => rules.map((r) => ({ ...r, xen: { ...r.xen, ...patch } }));
  assert.ok(verdict(pae, wrong({ outcome: 'completed' })).length > 0, 'expected completed, was refused');
  assert.ok(verdict(pae, wrong({ outcome: 'bug' })).length > 0, 'wrong failure kind');
  assert.ok(verdict(pae, wrong({ at: 'fork init child' })).length > 0, 'wrong line');
  assert.ok(verdict(pae, wrong({ message: 'PAE L3 3rd slot is shared' })).length > 0, 'wrong reason');
  // A completing workload declared to be refused fails too.
  const fork = runMatrix('fork-exit.pvw')[0]!;
  assert.ok(verdict(fork, [{ when: {}, native: { outcome: 'completed' }, xen: { outcome: 'refusal' } }]).length > 0);
});

lib.run();

const reg = suite('regression: native vs Xen, every workload and configuration');

for (const w of workloads) {
  reg(`${w}: identical guest results, clean invariants (or the declared outcome) in every configuration`, () => {
    const runs = runMatrix(w);
    assert.ok(runs.length >= 2, `${w}: at least PAE and 2-level`);
    const problems: string[] = [];
    for (const r of runs) {
      const rule = ruleFor(expected[w], r.config);
      for (const p of verdict(r, expected[w])) problems.push(`${r.config.label}${rule ? ' (declared)' : ''}: ${p}`);
      // A run that completes must have done something the other side could compare.
      if (!r.native.result.failure && !r.xen.result.failure) {
        assert.ok(r.native.result.guest.statements > 0, `${w} ${r.config.label}: no statement ran`);
      }
    }
    assert.ok(problems.length === 0, `${w}:\n  ${problems.slice(0, 20).join('\n  ')}`);
  });
}

reg('declared outcomes really happen: prepatch is refused by Xen under PAE only; seed bug 2 is reported by the guest\'s own check under Xen PAE only [item 1]', () => {
  for (const r of runMatrix('prepatch-on-xen.pvw')) {
    assert.is(r.native.result.failure, null, `prepatch ${r.config.label}: native completes`);
    if (r.config.pae) assert.is(r.xen.result.failure?.kind, 'refusal', `prepatch ${r.config.label}: Xen refuses`);
    else assert.is(r.xen.result.failure, null, `prepatch ${r.config.label}: Xen completes in 2-level paging`);
  }
  for (const r of runMatrix('seed-release-pd.pvw')) {
    assert.is(r.native.result.failure, null, `seed-release-pd ${r.config.label}: native completes`);
    assert.is(r.xen.result.failure, null, `seed-release-pd ${r.config.label}: Xen refuses nothing (release_pd is a nop)`);
    const unbalanced = r.xen.result.invariants.some((v) => /unbalanced paravirt_release_pd/.test(v));
    assert.is(unbalanced, r.config.pae, `seed-release-pd ${r.config.label}: the guest's check reports it under PAE only`);
  }
});

reg('the examples show what their comments say (vmalloc faults under Xen, COW copies, segv expects)', () => {
  const at = (w: string, label: string) => runMatrix(w).find((r) => r.config.label === label)!;
  const ev = (r: { result: { measures: Record<string, { events: Record<string, number> }> } }, m: string, e: string) =>
    r.result.measures[m]?.events[e] ?? 0;
  // vmalloc-churn: 12 processes x 3 new pmd ranges under Xen PAE, none natively.
  const vc = at('vmalloc-churn.pvw', 'PAE 3G');
  assert.is(ev(vc.native, 'kread-all', 'faults.vmalloc'), 0);
  assert.is(ev(vc.xen, 'kread-all', 'faults.vmalloc'), 3 * 12);
  // seed-vmalloc-sync-stride: two faults per process (a, b) in the first access under Xen PAE, none in the second.
  const st = at('seed-vmalloc-sync-stride.pvw', 'PAE 3G');
  assert.is(ev(st.xen, 'first-access', 'faults.vmalloc'), 4);
  assert.is(ev(st.xen, 'second-access', 'faults.vmalloc'), 0);
  // cow: one copy per child-write run, on both backends.
  for (const r of runMatrix('cow.pvw')) {
    for (const b of [r.native, r.xen]) assert.is(ev(b, 'child-write', 'faults.cow'), 4, `${r.config.label}`);
    // The reuse path (issue 14 gap 6): one write-protect fault per run, and
    // its flush_tlb_page (under Xen an INVLPG_LOCAL), no copy.
    for (const b of [r.native, r.xen]) assert.is(ev(b, 'reuse', 'faults.cow'), 4, `${r.config.label} reuse`);
    assert.is(ev(r.xen, 'reuse', 'hypercalls.mmuext_op:INVLPG_LOCAL'), 4, `${r.config.label} reuse flush`);
  }
  // change-page-attr: under Xen each changed pte is a trapped, emulated write (1 page, then 4 pages).
  for (const r of runMatrix('change-page-attr.pvw')) {
    assert.is(ev(r.xen, 'split', 'traps.ptwr_emulate'), 3, `${r.config.label}: 3 runs x 1 pte`);
    assert.is(ev(r.xen, 'more-ro', 'traps.ptwr_emulate'), 12, `${r.config.label}: 3 runs x 4 ptes`);
    assert.is(ev(r.native, 'split', 'traps.ptwr_emulate'), 0);
  }
  // split-1g: the user access to 0x40000000 is a SIGSEGV the script expects, on both backends.
  for (const r of runMatrix('split-1g.pvw')) {
    for (const b of [r.native, r.xen]) assert.ok(b.result.observations.some((o) => /read init 0x40000000 -> segv/.test(o)), r.config.label);
  }
});

reg.run();
