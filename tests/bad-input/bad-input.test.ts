/**
 * The bad-input corpus (tests/bad-input/): malformed workload scripts, vector
 * files and flag combinations. Each must end with a clear message naming the
 * place, exit code 2, no stack trace, nothing on stdout, no output file
 * written, in bounded time and memory.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = process.cwd();
const cli = join(root, 'dist/tools/cli.js');
const corpus = join(root, 'tests/bad-input');
const tmp = mkdtempSync(join(tmpdir(), 'pvmmu-bad-'));

function refused(args: string[], where: RegExp, outFile?: string): void {
  const r = spawnSync(process.execPath, ['--max-old-space-size=512', cli, ...args], { encoding: 'utf8', timeout: 20_000 });
  assert.is(r.error, undefined, `did not finish in time: ${args.join(' ')}`);
  assert.is(r.status, 2, `exit ${r.status} for ${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, where);
  assert.not.match(r.stderr, /\n\s+at [\w.<]+ \(|internal error/, 'no stack trace');
  assert.is(r.stdout, '', 'nothing on stdout');
  if (outFile) assert.not.ok(existsSync(outFile), 'no output written');
}

const scripts: [string, RegExp][] = [
  ['truncated.pvw', /truncated\.pvw:4:25: expected 'read' or 'write', got 'wri'/],
  ['binary-garbage.pvw', /binary-garbage\.pvw:\d+:\d+: invalid character 0x[0-9a-f]{2}/],
  ['huge-repeat-number.pvw', /huge-repeat-number\.pvw:2:8: repeat count \d+ is too large/],
  ['enormous-repeat.pvw', /enormous-repeat\.pvw:2:1: the script would run \d+ statements \(limit \d+\)/],
  ['absurd-mem.pvw', /absurd-mem\.pvw:1:13: mem 99999G is too large/],
  ['tiny-mem.pvw', /tiny-mem\.pvw:1:13: mem=1048576 is outside 16M\.\.4G/],
  ['huge-length.pvw', /huge-length\.pvw:2:15: LEN 0x1000000000000 is too large/],
  ['deep-nesting.pvw', /deep-nesting\.pvw:33:1: blocks nested deeper than 32/],
  ['unknown-process.pvw', /unknown-process\.pvw:3:6: unknown process 'c'/],
  ['unknown-area.pvw', /unknown-area\.pvw:2:7: unknown area 'buff'/],
  ['wrong-type.pvw', /wrong-type\.pvw:2:8: bad number 'rw' for ADDR/],
  ['bad-name.pvw', /bad-name\.pvw:1:9: bad process name '9lives'/],
  ['machine-twice.pvw', /machine-twice\.pvw:2:1: 'machine' may appear only once/],
  ['expect-wrong-type.pvw', /expect-wrong-type\.pvw:2:22: bad number 'banana'/],
];

for (const [f, re] of scripts) {
  test(`script ${f} is refused (boot and compare, with --json and --trace)`, () => {
    const trace = join(tmp, `${f}.trace.json`);
    refused(['boot', join(corpus, 'scripts', f), '--json', '--trace', trace], re, trace);
    refused(['compare', join(corpus, 'scripts', f), '--json'], re);
  });
}

test('an oversized script is refused without reading it into the language', () => {
  const big = join(tmp, 'big.pvw');
  writeFileSync(big, 'process a\n' + '# padding\n'.repeat(500_000));
  refused(['boot', big], /big\.pvw: larger than \d+ bytes, the limit for a workload script/);
});

const vectors: [string, RegExp][] = [
  ['truncated.json', /truncated\.json:1:\d+: invalid JSON: unexpected end of file/],
  ['binary-garbage.json', /binary-garbage\.json:1:\d+: invalid JSON/],
  ['deep-nesting.json', /deep-nesting\.json: case 0: field 'cases\[0\]': expected an object/],
  ['wrong-type.json', /case 0 \(a\): field 'steps\[0\]\.user': expected true or false, got 1/],
  ['huge-number.json', /case 0 \(a\): field 'memory\[0\]\.u64\[0\]': 0x1\d+ does not fit in 64 bits/],
  ['unknown-op.json', /field 'steps\[0\]\.op': unknown op "teleport"/],
  ['cases-not-array.json', /top level: field 'cases': expected an array/],
  ['empty.json', /empty\.json:1:1: invalid JSON: unexpected end of file/],
];

for (const [f, re] of vectors) {
  test(`vector file ${f} is refused as a whole`, () => {
    const out = join(tmp, `${f}.results.json`);
    refused(['vectors', join(corpus, 'vectors', f), '--out', out], re, out);
  });
}

const ok = join(corpus, 'scripts', 'bom.pvw');
const flags: [string[], RegExp][] = [
  [['boot', ok, '--cpu', 'pentium9'], /'--cpu <preset>' argument 'pentium9' is invalid/],
  [['boot', ok, '--split', '5G'], /'--split <split>' argument '5G' is invalid/],
  [['boot', ok, '--backend', 'kvm'], /'--backend <name>' argument 'kvm' is invalid/],
  [['boot', ok, '--kernel', 'latest'], /'--kernel <variant>' argument 'latest' is invalid/],
  [['boot', ok, '--mem', '-1'], /--mem: bad size '-1'/],
  [['boot', ok, '--mem', '99999999999999999999999G'], /--mem: size .* is too large/],
  [['boot', ok, '--mem', '8G'], /--mem: mem=8589934592 is outside 16M\.\.4G/],
  [['boot', ok, '--seed', 'abc'], /--seed: expected a non-negative integer/],
  [['boot', ok, '--frobnicate'], /unknown option '--frobnicate'/],
  [['boot'], /missing required argument 'file'/],
  [['teleport'], /unknown command 'teleport'/],
  [['boot', join(tmp, 'missing.pvw')], /missing\.pvw: cannot read \(ENOENT\)/],
  [['boot', tmp], /cannot read \(EISDIR\)/],
  [['vectors', join(root, 'tests/vectors/sdm-suite.json'), '--out', join(tmp, 'no/such/dir.json')], /--out: cannot write/],
  [['boot', ok, '--trace', join(tmp, 'no/such/dir/t.json')], /--trace: cannot write/],
  [['report', join(tmp, 'missing.json')], /missing\.json: cannot read/],
];

for (const [args, re] of flags) test(`flags refused: ${args.slice(1).join(' ') || args[0]}`, () => refused(args, re));

test('a byte-order mark at the start of a script is accepted', () => {
  const r = spawnSync(process.execPath, [cli, 'boot', ok, '--json'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
});

test.run();
