/**
 * The project's SDM conformance suites (tests/vectors/README.md) run through
 * the vector runner and must match the expected results written from the SDM
 * by an independent reference walker.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseVectors } from '../../tools/vectors/format.js';
import { compareResults, runVectors } from '../../tools/vectors/run-vectors.js';

const dir = join(process.cwd(), 'tests/vectors');

for (const suite of ['sdm-suite', 'random-suite']) {
  test(`${suite}: every case matches the SDM-derived expectation`, () => {
    const file = join(dir, `${suite}.json`);
    const cases = parseVectors(file, JSON.parse(readFileSync(file, 'utf8')));
    assert.ok(cases.length > 500, `only ${cases.length} cases`);
    const results = runVectors(file, cases, 'core2');
    const expected = JSON.parse(readFileSync(join(dir, `${suite}.expected.json`), 'utf8'));
    const diffs = compareResults(results, expected);
    assert.equal(diffs.slice(0, 10), [], `${diffs.length} differences`);
    assert.is(results.cases.length, cases.length);
  });
}

test('the comparison notices a wrong result (the check can fail)', () => {
  const file = join(dir, 'sdm-suite.json');
  const cases = parseVectors(file, JSON.parse(readFileSync(file, 'utf8'))).slice(0, 20);
  const results = runVectors(file, cases, 'core2');
  const expected = JSON.parse(readFileSync(join(dir, 'sdm-suite.expected.json'), 'utf8'));
  const tampered = structuredClone(expected);
  const c = tampered.cases.find((x: { name: string }) => x.name === cases[3]!.name);
  c.steps[c.steps.length - 1] = { fault: 'PF', errorCode: 31, cr2: '0x1' };
  assert.ok(compareResults(results, tampered).length >= 1);
});

test('pvmmu vectors --expect passes on the SDM suite and writes results with --out', () => {
  const out = join(process.env['TMPDIR'] ?? '/tmp', `pvmmu-sdm-${process.pid}.json`);
  const r = spawnSync(process.execPath, [
    'dist/tools/cli.js', 'vectors', join(dir, 'sdm-suite.json'),
    '--expect', join(dir, 'sdm-suite.expected.json'), '--out', out,
  ], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /\d+ cases, 0 differences/);
  const res = JSON.parse(readFileSync(out, 'utf8'));
  assert.is(res.format, 'x86-mmu-results/1');
  assert.ok(res.cases.every((c: { cycles: number }) => typeof c.cycles === 'number' && c.cycles >= 0));
});

test.run();
