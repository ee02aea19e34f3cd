/**
 * The workload language front end: every error is FILE:LINE:COL before
 * anything runs, including the ones that depend on the configuration.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseScript } from '../../tools/workload/parser.js';
import { checkScript, countStatements } from '../../tools/workload/check.js';
import { resolveConfig } from '../../tools/workload/config.js';
import { InputError } from '../../tools/input-error.js';

function check(text: string, flags = {}): void {
  const s = parseScript('w.pvw', text);
  checkScript(s, resolveConfig('w.pvw', s.machine, flags));
}

function refuses(text: string, re: RegExp, flags = {}): void {
  try {
    check(text, flags);
  } catch (e) {
    assert.instance(e, InputError);
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`accepted: ${JSON.stringify(text)}`);
}

test('the spec example parses and checks', () => {
  const text = `# fork and exit a process with a 256 KiB heap, 100 times
machine pae=on split=3G mem=256M
process init
mmap init 0x08048000 256K rw
touch init 0x08048000 256K write
repeat 100 {
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
`;
  const s = parseScript('ex.pvw', text);
  assert.equal(s.machine.pae, true);
  assert.is(s.machine.mem, 256 << 20);
  assert.is(s.body.length, 8);
  const rep = s.body[3]!;
  assert.is(rep.op, 'repeat');
  assert.is(countStatements(s.body), 3 + 100 * 4 + 4);
  check(text);
});

test('sizes and numbers', () => {
  const s = parseScript('n.pvw', 'process a\nmmap a 0x1000 4K rw\nmmap a 16M 1M r\nwrite a 0x1000 4294967295');
  const m = s.body[1]!;
  assert.ok(m.op === 'mmap' && m.len === 4096 && m.addr === 0x1000);
  const m2 = s.body[2]!;
  assert.ok(m2.op === 'mmap' && m2.addr === 16 << 20 && m2.len === 1 << 20 && m2.prot === 'r');
});

test('NAME# takes the innermost loop index', () => {
  check('process init\nrepeat 3 {\n  fork init c#\n}\nexit c0\nexit c1\nexit c2');
  refuses('process init\nrepeat 3 {\n  fork init c#\n}\nexit c3', /w\.pvw:5:6: unknown process 'c3'/);
  refuses('process init\nrepeat 2 {\n  repeat 2 {\n    fork init c#\n  }\n}', /w\.pvw:4:15: process 'c0' already exists/);
});

const errors: [string, string, RegExp][] = [
  ['unknown statement', 'process a\nfrobnicate a', /^w\.pvw:2:1: unknown statement 'frobnicate'/],
  ['bad number', 'process a\nmmap a 0xZZ 4K rw', /^w\.pvw:2:8: bad number '0xZZ'/],
  ['number too large', 'process a\nwrite a 0x1000 0x100000000', /^w\.pvw:2:16: VALUE 0x100000000 is too large/],
  ['unknown process', 'fork init child', /^w\.pvw:1:6: unknown process 'init'/],
  ['unknown area', 'process a\nkread nope 0', /^w\.pvw:2:7: unknown area 'nope'/],
  ['name taken', 'process a\nprocess a', /^w\.pvw:2:9: process 'a' already exists/],
  ['area taken', 'vmalloc b 4K\nvmalloc b 4K', /^w\.pvw:2:9: area 'b' already exists/],
  ['unbalanced close', 'process a\n}', /^w\.pvw:2:1: unbalanced '}'/],
  ['unclosed block', 'repeat 2 {\nprocess a#', /^w\.pvw:1:1: unbalanced '{'/],
  ['brace not alone', 'repeat 2 {\n} process a', /^w\.pvw:2:3: unexpected 'process' after '}'/],
  ['missing brace', 'repeat 2\nprocess a', /^w\.pvw:1:9: expected '\{'/],
  ['unaligned mmap', 'process a\nmmap a 0x1234 4K rw', /^w\.pvw:2:1: mmap ADDR 0x1234 is not page-aligned/],
  ['unaligned len', 'process a\nmmap a 0x1000 100 rw', /^w\.pvw:2:1: mmap LEN 0x64/],
  ['kernel-space mmap 3G', 'process a\nmmap a 0xc0000000 4K rw', /outside user space \(TASK_SIZE 0xc0000000 with split=3G\)/],
  ['bad prot', 'process a\nmmap a 0x1000 4K wx', /^w\.pvw:2:18: bad PROT 'wx'/],
  ['machine not first', 'process a\nmachine pae=off', /^w\.pvw:2:1: 'machine' must be the first statement/],
  ['machine twice', 'machine pae=off\nmachine pae=on', /^w\.pvw:2:1: 'machine' may appear only once/],
  ['bad machine key', 'machine turbo=on', /^w\.pvw:1:9: unknown machine key 'turbo'/],
  ['bad machine value', 'machine pae=maybe', /^w\.pvw:1:13: pae must be 'on' or 'off'/],
  ['absurd mem', 'machine mem=64G', /^w\.pvw:1:13: mem=68719476736 is outside/],
  ['unknown cpu', 'machine cpu=pentium9', /^w\.pvw:1:13: unknown cpu preset 'pentium9'/],
  ['template outside loop', 'process a#', /^w\.pvw:1:9: 'a#' outside a repeat block/],
  ['kread beyond area', 'vmalloc b 4K\nkread b 4094', /^w\.pvw:2:1: kread OFFSET 0xffe: the 4-byte access 0xffe\.\.0x1001 runs past the end of area 'b'/],
  ['enormous repeat', 'repeat 1000000000 {\n repeat 1000000000 {\n  vmalloc a 4K\n  vfree a\n }\n}', /^w\.pvw:1:1: the script would run \d+ statements/],
  ['binary garbage', 'process a\n\u0000\u0001\u00ff', /^w\.pvw:2:1: invalid character 0x00/],
  ['expect on write', 'process a\nwrite a 0x1000 1 expect 5', /^w\.pvw:2:25: a write can only expect 'segv'/],
  ['cpa beyond memory', 'cpa 0x10000000 1 ro', /^w\.pvw:1:1: cpa range is beyond guest memory/],
];

for (const [what, text, re] of errors) test(`refused: ${what}`, () => refuses(text, re));

test('the split in force decides user space: flags override the machine line', () => {
  check('machine split=3G\nprocess a\nmmap a 0x90000000 4K rw');
  refuses('machine split=3G\nprocess a\nmmap a 0x90000000 4K rw', /split=2G/, { split: '2G' });
  refuses('process a\nmmap a 0x40000000 4K rw', /TASK_SIZE 0x40000000 with split=1G/, { split: '1G' });
});

test('addition: syscall NAME (a null system call), with FILE:LINE:COL errors', () => {
  check('process p\nsyscall p\nrepeat 2 {\n  measure null {\n    syscall p\n  }\n}');
  const s = parseScript('w.pvw', 'process p\nsyscall p');
  assert.equal(s.body[1], { line: 2, col: 1, op: 'syscall', name: { line: 2, col: 9, text: 'p', template: false } });
  refuses('process p\nsyscall', /^w\.pvw:2:8: missing process name/);
  refuses('process p\nsyscall p q', /^w\.pvw:2:11: unexpected 'q' \(usage: syscall NAME\)/);
  refuses('syscall ghost', /^w\.pvw:1:9: unknown process 'ghost'/);
});

test('additions: idle, vmalloc_sync_all, lazy and interrupt blocks', () => {
  const s = parseScript(
    'x.pvw',
    'process a\nidle\nvmalloc v 4K\nvmalloc_sync_all\nlazy {\n  kread v 0\n}\ninterrupt pgd_alloc:after-pgd_ctor {\n  vmalloc_sync_all\n  cpa 0x1000000 1 ro\n}\nprocess b\n',
  );
  assert.equal(s.body.map((x) => x.op), ['process', 'idle', 'vmalloc', 'vmalloc_sync_all', 'lazy', 'interrupt', 'process']);
  const irq = s.body[5]!;
  assert.ok(irq.op === 'interrupt' && irq.point === 'pgd_alloc:after-pgd_ctor' && irq.body.length === 2);
  checkScript(s, resolveConfig('x.pvw', s.machine, {}));
  refuses('interrupt pgd_free:somewhere {\n}', /^w\.pvw:1:11: unknown interrupt point 'pgd_free:somewhere'/);
  refuses('process a\ninterrupt pgd_alloc:before-set_pgd {\n  exit a\n}', /^w\.pvw:3:3: 'exit' cannot run in an interrupt/);
  refuses('interrupt pgd_alloc:before-set_pgd {\n  interrupt pgd_alloc:before-set_pgd {\n  }\n}', /^w\.pvw:2:3: an interrupt block cannot contain another/);
  refuses('idle now', /^w\.pvw:1:6: unexpected 'now'/);
  refuses('lazy\n}', /^w\.pvw:1:5: expected '\{' at the end of 'lazy'/);
});

test('a user access to a kernel address is not an input error', () => {
  check('process a\nread a 0xc0000000 expect segv\nwrite a 0xc0001000 1 expect segv');
});

test.run();
