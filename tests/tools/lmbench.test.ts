/**
 * `pvmmu lmbench`: the table's shape (every row, native and Xen, µs at the
 * preset's clock, the ratio), --json's document (breakdowns summing to the
 * cycles), --backend one side only, and bad flags (exit 2, no stack trace).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PRESETS } from '../../emulator/cost-model.js';
import { LMBENCH_ROWS } from '../../tools/lmbench/lmbench.js';

const cli = join(process.cwd(), 'dist/tools/cli.js');
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

test('text: every row with native and Xen µs, cycles and the ratio', () => {
  const r = run(['lmbench', '--no-pae', '--cpu', 'p6']);
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0]!, /cpu p6 at 1000 MHz, 2-level/);
  assert.match(lines[1]!, /native µs.*native cycles.*xen µs.*xen cycles.*xen\/native/);
  for (const row of LMBENCH_ROWS) {
    const line = lines.find((l) => l.startsWith(row.label + ' '));
    assert.ok(line, `row ${row.label}`);
    assert.match(line!, /\d\.\d{2}x$/, `${row.label}: ratio`);
  }
});

test('--json: rows with cycles, µs at the clock, breakdowns summing to the cycles', () => {
  for (const pae of [true, false]) {
    const r = run(['lmbench', pae ? '--pae' : '--no-pae', '--json']);
    assert.is(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      cpu: string;
      clockMhz: number;
      pae: boolean;
      rows: { label: string; native: { cycles: number; us: number; breakdown: Record<string, number> }; xen: { cycles: number; us: number; breakdown: Record<string, number> }; ratio: number }[];
    };
    assert.is(doc.cpu, 'core2');
    assert.is(doc.clockMhz, PRESETS['core2']!.clockMhz);
    assert.is(doc.pae, pae);
    assert.equal(doc.rows.map((x) => x.label), LMBENCH_ROWS.map((x) => x.label));
    for (const row of doc.rows) {
      for (const side of [row.native, row.xen]) {
        assert.ok(side.cycles > 0);
        assert.ok(Math.abs(side.us - side.cycles / doc.clockMhz) < 0.001, `${row.label}: µs at the clock`);
        const sum = Object.values(side.breakdown).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - side.cycles) < 1, `${row.label}: breakdown ${sum} vs ${side.cycles}`);
      }
      assert.is(row.ratio, Math.round((row.xen.cycles / row.native.cycles) * 100) / 100);
      assert.ok(row.xen.cycles >= row.native.cycles, `${row.label}: Xen does no less work than native`);
    }
  }
});

test('--backend native: one side only', () => {
  const r = run(['lmbench', '--backend', 'native', '--json']);
  assert.is(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { rows: Record<string, unknown>[] };
  for (const row of doc.rows) {
    assert.ok('native' in row);
    assert.not.ok('xen' in row);
    assert.not.ok('ratio' in row);
  }
});

test('bad flags exit 2 with a message and no stack trace', () => {
  for (const args of [['--backend', 'kvm'], ['--cpu', 'pentium5'], ['--frobnicate'], ['extra-argument']]) {
    const r = run(['lmbench', ...args]);
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.length > 0, 'a message');
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
    assert.is(r.stdout, '');
  }
});

test('--backend lguest under PAE is refused naming the flag and the reason, not a workload file', () => {
  const r = run(['lmbench', '--backend', 'lguest']);
  assert.is(r.status, 2, r.stderr);
  assert.match(r.stderr, /^pvmmu: --backend lguest: .*2-level paging only.*--no-pae/);
  assert.not.match(r.stderr, /\.pvw/);
  assert.is(r.stdout, '');
});

test.run();
