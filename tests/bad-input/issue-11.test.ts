/**
 * The bad-input cases of issue 11 ("no crash, no silent wrong answer"):
 * each ends with one clear line naming the place, exit 2, no stack trace,
 * nothing on stdout, no output file left behind, in bounded time and memory
 * — or, for what Chrome's trace format allows, is accepted.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = process.cwd();
const cli = join(root, 'dist/tools/cli.js');
const corpus = join(root, 'tests/bad-input');
const tmp = mkdtempSync(join(tmpdir(), 'pvmmu-i11-'));
const W = join(root, 'tools/workloads/fork-exit.pvw');
const S = (f: string): string => join(corpus, 'scripts', f);
const T = (f: string): string => join(corpus, 'traces', f);

function pvmmu(args: string[], timeout = 30_000) {
  return spawnSync(process.execPath, ['--max-old-space-size=256', cli, ...args], { encoding: 'utf8', timeout });
}

function refused(args: string[], where: RegExp, noFiles: string[] = []): void {
  const r = pvmmu(args);
  assert.is(r.error, undefined, `did not finish in time: ${args.join(' ')}`);
  assert.is(r.status, 2, `exit ${r.status} for ${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, where);
  assert.match(r.stderr, /^pvmmu: /, 'one error style');
  assert.not.match(r.stderr, /\n\s+at [\w.<]+ \(|internal error/, 'no stack trace');
  assert.is(r.stdout, '', 'nothing on stdout');
  for (const f of noFiles) assert.not.ok(existsSync(f), `${f} was not left behind`);
  assert.equal(readdirSync(tmp).filter((f) => f.endsWith('.partial')), [], 'no temporary file left');
}

// ---- crashes ----

test('4G under Xen is refused up front naming the limit, and no trace is left', () => {
  const t = join(tmp, 't4g.json');
  refused(['boot', W, '--mem', '4G', '--backend', 'xen', '--trace', t], /--mem: mem=4096M is too large for the Xen model .* at most 4095M/, [t]);
  refused(['boot', S('xen-4g.pvw'), '--trace', t], /xen-4g\.pvw:2:13: mem=4096M is too large for the Xen model \(backend=xen from .*xen-4g\.pvw:2:24\)/, [t]);
  refused(['compare', W, '--mem', '4G'], /compare runs it under Xen/);
  refused(['inject', W, '--mem', '4G', '--backend', 'xen'], /at most 4095M/);
});

test('4G under Xen runs with --above-4g (PAE), and 4095M runs as it is', () => {
  for (const extra of [['--mem', '4G', '--above-4g'], ['--mem', '4095M']]) {
    const r = pvmmu(['boot', W, '--backend', 'xen', ...extra]);
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok: run completed, invariants clean/);
  }
  refused(['boot', W, '--backend', 'xen', '--above-4g', '--no-pae'], /--above-4g: machine frames above 4 GiB need PAE/);
});

test('kread past the end of its area blames the extent, not the alignment', () => {
  refused(['boot', S('kread-past-area.pvw')], /kread-past-area\.pvw:3:1: kread OFFSET 0xffe: the 4-byte access 0xffe\.\.0x1001 runs past the end of area 'v'/);
});

test('size limits are enforced while reading (/dev/zero, /dev/urandom, a line-less file)', () => {
  for (const dev of ['/dev/zero', '/dev/urandom']) {
    if (!existsSync(dev)) continue;
    refused(['boot', dev], new RegExp(`${dev}: larger than \\d+ bytes, the limit for a workload script`));
    refused(['compare', dev], /the limit for a workload script/);
    refused(['vectors', dev], /the limit for a vector file/);
    refused(['report', dev, '-o', join(tmp, 'r.html')], /not a trace|larger than/, [join(tmp, 'r.html')]);
  }
  const big = join(tmp, 'lineless.pvw');
  writeFileSync(big, 'x'.repeat(5 << 20));
  refused(['boot', big], /lineless\.pvw: larger than 4194304 bytes/);
  const bigEvent = join(tmp, 'big-event.json');
  writeFileSync(bigEvent, `{"traceEvents":[{"name":"${'x'.repeat(2 << 20)}","ph":"i","ts":1}]}`);
  refused(['report', bigEvent, '-o', join(tmp, 'r.html')], /big-event\.json:1:17: event larger than 1048576 bytes/);
});

test('compare holds a bounded amount of script at once (many large files are refused)', () => {
  const f = join(tmp, 'pad.pvw');
  writeFileSync(f, '#'.repeat(4_000_000) + '\nprocess a\n');
  refused(['compare', ...Array.from({ length: 20 }, () => f)], /pad\.pvw: the workloads given so far add up to more than 67108864 bytes/);
});

test('memory per vector case is bounded (distinct pages written)', () => {
  const f = join(tmp, 'many-pages.json');
  const steps = Array.from({ length: 20_000 }, (_, i) => ({ op: 'poke', pa: '0x' + (0x100000 + i * 4096).toString(16), u32: '0x1' }));
  writeFileSync(f, JSON.stringify({ format: 'x86-mmu-vectors/1', cases: [{ name: 'many', steps }] }));
  refused(['vectors', f], /case 0 \(many\): field 'steps\[16384\]': the case writes more than 16384 distinct pages/);
});

test('trace write errors: /dev/full, a directory, an unwritable place', () => {
  if (existsSync('/dev/full')) refused(['boot', W, '--trace', '/dev/full'], /--trace: cannot write \/dev\/full \(ENOSPC\)/);
  refused(['boot', W, '--trace', tmp], /--trace: .* is a directory/);
  refused(['compare', W, '--trace', tmp], /--trace: .* is a directory/);
  const ro = join(tmp, 'ro');
  writeFileSync(join(tmp, 'ro-file'), '');
  if (process.getuid?.() !== 0) {
    chmodSync(join(tmp, 'ro-file'), 0o444);
    refused(['boot', W, '--trace', join(tmp, 'ro-file')], /--trace: cannot write/);
  }
  refused(['boot', W, '--trace', join(ro, 'no', 't.json')], /--trace: cannot write .* \(ENOENT\)/);
});

test('Ctrl-C mid-run closes the trace at the interruption and says so (exit 130)', async () => {
  const w = join(tmp, 'long.pvw');
  writeFileSync(w, 'process a\nmmap a 0x10000000 1G rw\nrepeat 40 {\n  touch a 0x10000000 1G write\n}\n');
  const t = join(tmp, 'long.json');
  const child = spawn(process.execPath, [cli, 'boot', w, '--mem', '2G', '--trace', t], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  await new Promise((r) => setTimeout(r, 2500));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.is(code, 130, err);
  assert.match(err, /interrupted \(Ctrl-C or a signal\)/);
  assert.match(err, /--trace: the trace .*long\.json was closed at the interruption/);
  const doc = JSON.parse(readFileSync(t, 'utf8')) as { traceEvents: { name: string }[] };
  assert.ok(doc.traceEvents.some((e) => e.name === 'run interrupted'), 'the trace says where it stopped');
});

// ---- silently wrong ----

test('compare --trace with several workloads is refused, not silently ignored', () => {
  refused(['compare', W, W, '--trace', join(tmp, 'p.json')], /--trace: one workload at a time \(got 2\)/);
});

test('an output that is an input is refused', () => {
  refused(['boot', W, '--trace', W], /--trace: .* is an input of this command/);
  const tr = join(tmp, 'in.json');
  writeFileSync(tr, '{"traceEvents":[]}');
  refused(['report', tr, '-o', tr], /-o: .* is an input of this command/);
  assert.is(readFileSync(tr, 'utf8'), '{"traceEvents":[]}', 'the input is untouched');
  const v = join(root, 'tests/vectors/sdm-suite.json');
  refused(['vectors', v, '-o', v], /--out: .* is an input of this command/);
});

test('a measure nested in one of the same label is refused', () => {
  refused(['boot', S('nested-measure.pvw')], /nested-measure\.pvw:3:3: measure 'x' inside a measure 'x' block \(line 2\)/);
});

test('vectors --expect validates the expected file', () => {
  const v = join(root, 'tests/vectors/sdm-suite.json');
  const empty = join(tmp, 'empty-object.json');
  writeFileSync(empty, '{}');
  refused(['vectors', v, '--expect', v], /field 'format': expected "x86-mmu-results\/1", got "x86-mmu-vectors\/1" \(this is a vector file/);
  refused(['vectors', v, '--expect', empty], /empty-object\.json: top level: field 'format'/);
  refused(['vectors', v, '--expect', T('ok-pretty.json')], /field 'format'/);
});

test('vectors --expect: an expected case the vector file lacks is a difference, not a silent pass', () => {
  const v = join(tmp, 'one-case.json');
  writeFileSync(v, JSON.stringify({ format: 'x86-mmu-vectors/1', cases: [{ name: 'a', steps: [] }] }));
  const e = join(tmp, 'two-expected.json');
  writeFileSync(e, JSON.stringify({ format: 'x86-mmu-results/1', cases: [{ name: 'a', steps: [], memory: [] }, { name: 'b', steps: [], memory: [] }] }));
  const r = pvmmu(['vectors', v, '--expect', e]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /b: expected, but the vector file has no such case\n1 case, 1 difference\n$/);
});

test('vectors --expect says "1 difference"', () => {
  const v = join(root, 'tests/vectors/sdm-suite.json');
  const exp = JSON.parse(readFileSync(join(root, 'tests/vectors/sdm-suite.expected.json'), 'utf8'));
  exp.cases[0].steps[0] = { pa: '0x1' };
  const f = join(tmp, 'one-off.json');
  writeFileSync(f, JSON.stringify(exp));
  const r = pvmmu(['vectors', v, '--expect', f]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /614 cases, 1 difference\n$/);
});

for (const [f, re] of [
  ['string-ts.json', /string-ts\.json:2:1: "ts" must be a number, got "1"/],
  ['negative-dur.json', /negative-dur\.json:2:1: "dur" must not be negative/],
  ['huge-dur.json', /huge-dur\.json:2:1: "dur" 1e\+308 is beyond 2\^53/],
  ['trailing-comma.json', /trailing-comma\.json:3:1: trailing comma before \]/],
  ['trailing-comma-in-event.json', /trailing-comma-in-event\.json:2:1: invalid JSON in this event/],
  ['truncated.json', /truncated\.json:\d+:\d+: truncated trace/],
  ['no-ph.json', /no-ph\.json:2:1: event without a "ph" string/],
] as [string, RegExp][]) {
  test(`report refuses what Chrome's format does not allow: ${f}`, () => {
    const out = join(tmp, `${f}.html`);
    refused(['report', T(f), '-o', out], re, [out]);
  });
}

test("report accepts what Chrome's format allows (jq ., one line, empty, array without ])", () => {
  const trace = join(tmp, 'fork.json');
  assert.is(pvmmu(['boot', W, '--backend', 'xen', '--trace', trace]).status, 0);
  const doc = JSON.parse(readFileSync(trace, 'utf8'));
  const pretty = join(tmp, 'pretty.json');
  writeFileSync(pretty, JSON.stringify(doc, null, 2));
  const oneLine = join(tmp, 'one-line.json');
  writeFileSync(oneLine, JSON.stringify(doc));
  for (const f of [pretty, oneLine, T('ok-empty.json'), T('ok-array-no-bracket.json'), T('ok-pretty.json')]) {
    const out = join(tmp, 'ok.html');
    const r = pvmmu(['report', f, '-o', out]);
    assert.is(r.status, 0, `${f}: ${r.stderr}`);
    assert.not.match(readFileSync(out, 'utf8'), /∞|NaN|Infinity/);
  }
  const a = pvmmu(['report', pretty, '-o', join(tmp, 'a.html')]);
  const b = pvmmu(['report', oneLine, '-o', join(tmp, 'b.html')]);
  assert.is(a.status, 0);
  assert.is(b.status, 0);
  const strip = (s: string) => s.replace(/<code>[^<]*(pretty|one-line)\.json<\/code>/g, '');
  assert.is(strip(readFileSync(join(tmp, 'a.html'), 'utf8')), strip(readFileSync(join(tmp, 'b.html'), 'utf8')), 'the layout of the JSON does not change the report');
});

test('a script whose work is unbounded is refused (pages, not statements)', () => {
  refused(['boot', S('endless-touch.pvw')], /endless-touch\.pvw:3:1: the script would walk about \d+ pages in all \(touch.*limit 50000000/);
  // Few statements and a small touch, but every fork and exit walks a 1 GiB mapping.
  refused(['boot', S('endless-fork.pvw'), '--mem', '2G'], /endless-fork\.pvw:6:1: the script would walk about \d+ pages in all/);
});

// ---- consistency ----

test('flags: --pae with --no-pae, --mem 256 (did you mean 256M), 256m accepted', () => {
  refused(['boot', W, '--pae', '--no-pae'], /--pae and --no-pae contradict each other/);
  refused(['boot', W, '--mem', '256'], /--mem: mem=256 is outside 16M\.\.4G \(a number without a suffix is bytes: did you mean 256M\?\)/);
  refused(['boot', S('mem-without-suffix.pvw')], /mem-without-suffix\.pvw:1:13: mem=256 is outside .* did you mean 256M\?/);
  const r = pvmmu(['boot', W, '--mem', '256m', '--json']);
  assert.is(r.status, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).config.mem, 256 << 20);
  refused(['inject', W, '--trace', join(tmp, 'i.json')], /unknown option '--trace'/);
  refused(['boot', W, '--seed', '0'], /--seed: 0 is not a seed/);
});

// ---- the next bugs of the same classes, found by feeding every command edge values ----

test('an empty output name is refused before anything runs (it used to run, then fail at the rename)', () => {
  refused(['boot', W, '--trace', ''], /--trace: empty file name/);
  refused(['compare', W, '--trace', ''], /--trace: empty file name/);
  refused(['report', T('ok-empty.json'), '-o', ''], /-o: empty file name/);
});

test('a Xen-only flag on a native run is refused, not silently ignored (--above-4g)', () => {
  refused(['boot', W, '--above-4g'], /--above-4g: only the Xen backend/);
  refused(['inject', W, '--above-4g'], /--above-4g: only the Xen backend/);
  const r = pvmmu(['compare', W, '--seed', '3']);
  assert.is(r.status, 0, 'compare runs Xen too, so --seed applies there');
});

test('a JSON file with a byte-order mark is accepted, as a script with one is', () => {
  const f = join(tmp, 'bom.json');
  writeFileSync(f, '\ufeff{"format":"x86-mmu-vectors/1","cases":[]}');
  const r = pvmmu(['vectors', f]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /x86-mmu-results\/1/);
});

test('report warns when the two traces are not runs of the same thing', () => {
  const a = join(tmp, 'wa.json');
  const b = join(tmp, 'wb.json');
  assert.is(pvmmu(['boot', W, '--trace', a]).status, 0);
  assert.is(pvmmu(['boot', W, '--backend', 'xen', '--no-pae', '--trace', b]).status, 0);
  const out = join(tmp, 'warn.html');
  assert.is(pvmmu(['report', a, b, '-o', out]).status, 0);
  assert.match(readFileSync(out, 'utf8'), /not runs of the same thing:<\/b> they differ in <code>paging<\/code>/);
});

test('plain pvmmu: usage on stderr, exit 2', () => {
  const r = pvmmu([]);
  assert.is(r.status, 2);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /Usage: pvmmu/);
});

test.run();
