/**
 * The `boot` and `compare` contracts of cli.md: --json shapes, exit codes
 * (0 ok, 1 the run failed, 2 bad input), runtime failures naming the line,
 * flags overriding the machine line.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cli = join(process.cwd(), 'dist/tools/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'pvmmu-cli-'));
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
function file(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

const forkExit = file(
  'fork.pvw',
  `machine pae=on split=3G mem=256M
process init
mmap init 0x08048000 256K rw
touch init 0x08048000 256K write
repeat 5 {
  measure fork+exit {
    fork init child
    touch child 0x08048000 16K write
    exit child
  }
}
vmalloc buf 64K
kwrite buf 0 0xdeadbeef
switch init
kread buf 0 expect 0xdeadbeef
`,
);

for (const backend of ['native', 'xen']) {
  test(`boot --json has cli.md's fields (${backend})`, () => {
    const r = run(['boot', forkExit, '--backend', backend, '--json']);
    assert.is(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.is(j.workload, forkExit);
    assert.equal(j.config, { backend, pae: true, split: '3G', mem: 268435456, cpu: 'core2', kernel: 'patched' });
    assert.type(j.cycles, 'number');
    for (const k of ['hits', 'misses', 'flushes']) assert.type(j.tlb[k], 'number');
    assert.type(j.walks.count, 'number');
    assert.type(j.walks.cycles, 'number');
    for (const k of ['user', 'cow', 'vmalloc', 'segv']) assert.type(j.pageFaults[k], 'number');
    for (const k of ['mmu_update', 'mmuext_op', 'multicall']) assert.type(j.hypercalls[k], 'number');
    const m = j.measures['fork+exit'];
    assert.is(m.runs, 5);
    assert.ok(m.cycles > 0);
    assert.ok(Math.abs(m.perRun - m.cycles / 5) < 0.01);
    assert.is(j.guest.pgdsAlive, 1);
    assert.ok(j.guest.framesUsed > 0);
    assert.is(j.pageFaults.cow, 20, 'four COW faults per child');
    if (backend === 'native') assert.is(j.hypercalls.mmu_update + j.hypercalls.mmuext_op + j.hypercalls.multicall, 0);
    else assert.ok(j.hypercalls.mmuext_op > 0);
  });
}

test('flags override the machine line', () => {
  const r = run(['boot', forkExit, '--no-pae', '--split', '2G', '--mem', '128M', '--cpu', 'nehalem', '--json']);
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).config, { backend: 'native', pae: false, split: '2G', mem: 128 << 20, cpu: 'nehalem', kernel: 'patched' });
});

test('a failed expect stops the run with exit 1 naming the line', () => {
  const f = file('expect.pvw', 'process a\nmmap a 0x1000 4K rw\nwrite a 0x1000 5\nread a 0x1000 expect 6\nread a 0x1000\n');
  const r = run(['boot', f]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /expect\.pvw:4:1: read a 0x1000: expected 0x6, read 0x5/);
  assert.not.match(r.stderr, /\n\s+at /);
});

test('SIGSEGV without expect fails; with expect segv the process survives', () => {
  const ok = file('segv.pvw', 'process a\nread a 0xc0000000 expect segv\nmmap a 0x1000 4K r\nwrite a 0x1000 1 expect segv\nread a 0x1000 expect 0\n');
  assert.is(run(['boot', ok]).status, 0);
  const bad = file('segv2.pvw', 'process a\nread a 0xc0000000\n');
  const r = run(['boot', bad]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /segv2\.pvw:2:1: read a 0xc0000000: SIGSEGV/);
});

test('the pre-patch kernel is refused by Xen with its reason, naming the statement', () => {
  const f = file('pre.pvw', 'machine kernel=prepatch backend=xen\nprocess init\n');
  const r = run(['boot', f]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /pre\.pvw:2:1: process: hypervisor refused: .*pgd not at offset 0 of its own frame/);
  assert.is(run(['boot', f, '--backend', 'native']).status, 0);
});

test('compare: equivalent workloads exit 0 with the Xen/native ratio; --json shape', () => {
  const r = run(['compare', forkExit]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /fork\+exit\s+5\s+[\d,.]+\s+[\d,.]+\s+[\d.]+x/);
  assert.match(r.stdout, /equivalent/);
  const j = JSON.parse(run(['compare', forkExit, '--json']).stdout);
  assert.is(j.workloads.length, 1);
  const w = j.workloads[0];
  assert.is(w.equivalent, true);
  assert.equal(w.divergences, []);
  assert.is(w.native.config.backend, 'native');
  assert.is(w.xen.config.backend, 'xen');
  assert.ok(w.xen.measures['fork+exit'].perRun > w.native.measures['fork+exit'].perRun);
});

test('compare: a divergence (pre-patch refused on Xen only) exits 1', () => {
  const f = file('pre2.pvw', 'machine kernel=prepatch\nprocess init\nmmap init 0x1000 4K rw\nwrite init 0x1000 5\n');
  const r = run(['compare', f, '--json']);
  assert.is(r.status, 1);
  const w = JSON.parse(r.stdout).workloads[0];
  assert.is(w.equivalent, false);
  assert.ok(w.divergences.some((d: string) => /xen .*refused/.test(d)));
});

test('bad input: exit 2 before anything runs, no stack trace', () => {
  const f = file('bad.pvw', 'process a\nfork a b\nfrobnicate\n');
  for (const cmd of ['boot', 'compare']) {
    const r = run([cmd, f, '--json']);
    assert.is(r.status, 2);
    assert.is(r.stdout, '', 'nothing printed on stdout');
    assert.match(r.stderr, /bad\.pvw:3:1: unknown statement 'frobnicate'/);
  }
  assert.is(run(['boot', forkExit, '--split', '4G']).status, 2);
  assert.is(run(['boot', forkExit, '--mem', 'lots']).status, 2);
  assert.is(run(['boot', forkExit, '--mem', '64G']).status, 2);
  assert.is(run(['boot', forkExit, '--seed', '-1']).status, 2);
  assert.is(run(['boot', join(dir, 'nope.pvw')]).status, 2);
  assert.is(run(['boot']).status, 2);
  assert.is(run(['compare', forkExit, f]).status, 2, 'every file is checked before anything runs');
});

test('--help teaches with examples and --version answers', () => {
  for (const c of ['boot', 'compare', 'vectors', 'report']) {
    const r = run([c, '--help']);
    assert.is(r.status, 0);
    assert.match(r.stdout, /Examples:/);
  }
  assert.match(run(['--version']).stdout, /^\d+\.\d+\.\d+/);
});

test.run();
