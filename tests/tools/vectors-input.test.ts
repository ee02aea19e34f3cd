/**
 * Malformed vector files are refused as a whole with a message naming the
 * case and field, exit code 2, no stack trace, and no output file written.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cli = join(process.cwd(), 'dist/tools/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'pvmmu-vec-'));

function run(args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
}

function vec(cases: unknown[]): string {
  const f = join(dir, `v${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, JSON.stringify({ format: 'x86-mmu-vectors/1', cases }));
  return f;
}

const good = {
  name: 'ok',
  cpu: { cr0: '0x80000001' },
  memory: [{ pa: '0x1000', u32: ['0x2007'] }, { pa: '0x2000', u32: ['0x3007'] }],
  steps: [{ op: 'cr3', value: '0x1000' }, { op: 'access', va: '0x0', kind: 'read', user: true }],
};

test('a valid file runs and reports per step', () => {
  const r = run(['vectors', vec([good])]);
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.is(out.format, 'x86-mmu-results/1');
  assert.equal(out.cases[0].steps, [{ ok: true }, { pa: '0x3000' }]);
  assert.equal(out.cases[0].memory[0], { pa: '0x1000', u32: ['0x2027'] });
});

const bad: [string, unknown, RegExp][] = [
  ['unknown op', { ...good, steps: [{ op: 'jump', va: '0x0' }] }, /case 0 \(ok\): field 'steps\[0\]\.op': unknown op "jump"/],
  ['decimal va', { ...good, steps: [{ op: 'access', va: 12, kind: 'read' }] }, /field 'steps\[0\]\.va': expected a hex string/],
  ['va too big', { ...good, steps: [{ op: 'invlpg', va: '0x100000000' }] }, /field 'steps\[0\]\.va': 0x100000000 does not fit in 32 bits/],
  ['pa beyond 36 bits', { ...good, memory: [{ pa: '0x1000000000', u32: ['0x1'] }] }, /field 'memory\[0\]\.pa'/],
  ['bad kind', { ...good, steps: [{ op: 'access', va: '0x0', kind: 'exec' }] }, /field 'steps\[0\]\.kind'/],
  ['user not bool', { ...good, steps: [{ op: 'access', va: '0x0', kind: 'read', user: 'yes' }] }, /field 'steps\[0\]\.user'/],
  ['both widths', { ...good, memory: [{ pa: '0x0', u32: ['0x1'], u64: ['0x1'] }] }, /field 'memory\[0\]': needs exactly one/],
  ['u32 word too wide', { ...good, memory: [{ pa: '0x0', u32: ['0x100000000'] }] }, /field 'memory\[0\]\.u32\[0\]'/],
  ['missing name', { cpu: {}, steps: [] }, /case 0: field 'name'/],
  ['unknown field', { ...good, extra: 1 }, /field 'extra': unknown field/],
  ['cpu GP', { ...good, cpu: { cr0: '0x80000000' } }, /field 'cpu\.cr0': raises #GP/],
];

for (const [what, c, re] of bad) {
  test(`refused: ${what}`, () => {
    const out = join(dir, `out-${what.replace(/\W/g, '_')}.json`);
    const r = run(["vectors", vec([c]), "--out", out]);
    assert.is(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.not.match(r.stderr, /\n\s+at /); // no stack trace
    assert.not.ok(existsSync(out), 'no output written');
  });
}

test('a bad case after good ones refuses the whole file', () => {
  const out = join(dir, 'whole.json');
  const r = run(['vectors', vec([good, { ...good, name: 'two', steps: [{ op: 'poke', pa: '0x0' }] }]), '--out', out]);
  assert.is(r.status, 2);
  assert.match(r.stderr, /case 1 \(two\): field 'steps\[0\]': poke needs exactly one/);
  assert.not.ok(existsSync(out));
});

test('JSON syntax errors name line and column', () => {
  const f = join(dir, 'syntax.json');
  writeFileSync(f, '{\n  "format": "x86-mmu-vectors/1",\n  "cases": [ , ]\n}\n');
  const r = run(['vectors', f]);
  assert.is(r.status, 2);
  assert.match(r.stderr, /syntax\.json:3:\d+: invalid JSON/);
});

test('truncated and binary files are refused', () => {
  const t = join(dir, 'trunc.json');
  writeFileSync(t, '{"format": "x86-mmu-vectors/1", "cases": [{"name": "a"');
  assert.is(run(['vectors', t]).status, 2);
  const b = join(dir, 'bin.json');
  writeFileSync(b, Buffer.from([0, 1, 2, 255, 254, 10, 13]));
  const r = run(['vectors', b]);
  assert.is(r.status, 2);
  assert.match(r.stderr, /bin\.json:\d+:\d+: invalid JSON/);
});

test('wrong format tag and unknown flags are usage errors (exit 2)', () => {
  const f = join(dir, 'fmt.json');
  writeFileSync(f, JSON.stringify({ format: 'x86-mmu-vectors/2', cases: [] }));
  const r = run(['vectors', f]);
  assert.is(r.status, 2);
  assert.match(r.stderr, /field 'format'/);
  assert.is(run(['vectors', f, '--bogus']).status, 2);
  assert.is(run(['vectors', f, '--cpu', 'pentium9']).status, 2);
});

test.run();
