/**
 * The per-component cycle breakdown (issue 9): every cycle the machine or a
 * backend charges goes to exactly one component, so each breakdown sums
 * exactly to its cycles: the run's total, the boot's, and every measure's,
 * on both backends, every CPU preset, PAE and 2-level; and the JSON
 * documents of `boot` carry it as `measures.LABEL.breakdown`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { breakdownSum, COST_COMPONENTS, PRESET_NAMES } from '../../emulator/cost-model.js';
import { bootJson } from '../../tools/workload/summary.js';
import { compareJson, compareRuns, compareText } from '../../tools/workload/compare.js';
import { parseScript } from '../../tools/workload/parser.js';
import { checkScript } from '../../tools/workload/check.js';
import { DEFAULT_CONFIG, type RunConfig } from '../../tools/workload/config.js';
import { runWorkload } from '../../tools/workload/interpreter.js';

const SCRIPT = `machine mem=32M
process init
mmap init 0x08048000 64K rw
touch init 0x08048000 64K write
repeat 2 {
  measure fork+exit {
    fork init child
    touch child 0x08048000 8K write
    exit child
  }
}
measure mmap {
  mmap init 0x20000000 1M rw
  touch init 0x20000000 16K write
  munmap init 0x20000000 1M
}
vmalloc a 16K
kwrite a 0 7
measure kread {
  kread a 0 expect 7
}
`;

for (const cpu of PRESET_NAMES) {
  for (const pae of [true, false]) {
    for (const backend of ['native', 'xen'] as const) {
      test(`breakdown sums to cycles: ${cpu} ${pae ? 'PAE' : '2-level'} ${backend}`, () => {
        const script = parseScript('t.pvw', SCRIPT);
        const cfg: RunConfig = { ...DEFAULT_CONFIG, mem: 32 << 20, cpu, pae, backend };
        checkScript(script, cfg);
        const r = runWorkload(script, cfg);
        assert.is(r.failure, null);
        assert.ok(r.cycles > 0);
        assert.is(breakdownSum(r.breakdown), r.cycles, 'run total');
        assert.is(breakdownSum(r.bootBreakdown), r.bootCycles, 'boot');
        for (const c of COST_COMPONENTS) assert.ok(r.breakdown[c] >= 0 && Number.isInteger(r.breakdown[c]), c);
        assert.equal(Object.keys(r.measures).sort(), ['fork+exit', 'kread', 'mmap']);
        for (const [label, m] of Object.entries(r.measures)) {
          assert.is(breakdownSum(m.breakdown), m.cycles, label);
        }
        // The JSON document: measures.LABEL.breakdown, non-zero components in display order.
        const doc = JSON.parse(JSON.stringify(bootJson(r))) as {
          cycles: number;
          breakdown: Record<string, number>;
          measures: Record<string, { cycles: number; breakdown: Record<string, number> }>;
        };
        assert.is(Object.values(doc.breakdown).reduce((a, b) => a + b, 0), doc.cycles);
        for (const [label, m] of Object.entries(doc.measures)) {
          const keys = Object.keys(m.breakdown);
          assert.equal(keys, COST_COMPONENTS.filter((c) => keys.includes(c)), `${label}: display order`);
          assert.ok(Object.values(m.breakdown).every((v) => v !== 0), `${label}: zero components omitted`);
          assert.is(Object.values(m.breakdown).reduce((a, b) => a + b, 0), m.cycles, label);
        }
        if (backend === 'native') {
          for (const c of ['hypercall', 'trap', 'bounce', 'validation'] as const) assert.is(r.breakdown[c], 0, `native has no ${c}`);
        } else {
          assert.ok(r.breakdown.hypercall > 0 && r.breakdown.validation > 0, 'Xen charges hypercalls and validation');
        }
      });
    }
  }
}

for (const pae of [true, false]) {
  test(`compare ${pae ? 'PAE' : '2-level'}: --json breakdowns per backend sum to each measure's cycles; the text shows them side by side, no boot ratio`, () => {
    const script = parseScript('t.pvw', SCRIPT);
    const cfg: RunConfig = { ...DEFAULT_CONFIG, mem: 32 << 20, pae };
    checkScript(script, cfg);
    const native = runWorkload(script, { ...cfg, backend: 'native' });
    const xen = runWorkload(script, { ...cfg, backend: 'xen' });
    const c = { workload: 't.pvw', equivalent: true, divergences: compareRuns(native, xen), native, xen };
    const doc = JSON.parse(JSON.stringify(compareJson([c]))) as {
      workloads: { native: { measures: Record<string, { cycles: number; breakdown: Record<string, number> }> }; xen: { measures: Record<string, { cycles: number; breakdown: Record<string, number> }> } }[];
    };
    for (const side of [doc.workloads[0]!.native, doc.workloads[0]!.xen]) {
      for (const [label, m] of Object.entries(side.measures)) assert.is(Object.values(m.breakdown).reduce((a, b) => a + b, 0), m.cycles, label);
    }
    const text = compareText(c);
    assert.match(text, /cycles\/run by component\s+fork\+exit native\s+fork\+exit xen/);
    assert.match(text, /\n\(boot\)\s+1\s+[\d,]+\s+[\d,]+\s+-\n/);
    assert.match(text, /\nvalidation\s/);
  });
}

test.run();
