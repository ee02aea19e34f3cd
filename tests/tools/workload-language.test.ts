/**
 * The workload language, statement by statement and error by error (issue 14,
 * mutation testing of tools/workload/parser.ts and check.ts): the exact AST of
 * every statement form, the exact text and place of every error the parser and
 * the checker give, each limit at its boundary, and the checker's repeat
 * short-cut (a loop body whose names come back unchanged is checked once
 * unless it uses NAME#, inside measure/lazy/interrupt blocks too).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../../tools/input-error.js';
import { checkScript, countStatements, MAX_STATEMENTS } from '../../tools/workload/check.js';
import { resolveConfig } from '../../tools/workload/config.js';
import { MAX_NESTING, parseScript } from '../../tools/workload/parser.js';

function check(text: string, flags = {}): void {
  const s = parseScript('w.pvw', text);
  checkScript(s, resolveConfig('w.pvw', s.machine, flags));
}

/** The message the script is refused with ('' when accepted). */
function err(text: string, flags = {}): string {
  try {
    check(text, flags);
  } catch (e) {
    assert.instance(e, InputError);
    return (e as Error).message;
  }
  return '';
}

test('every statement form parses to its exact AST', () => {
  const text = [
    'machine pae=off split=2G mem=32M cpu=core2 backend=xen kernel=seed',
    'process p0',
    'fork p0 c1',
    'exec c1',
    'switch p0',
    'mmap p0 0x1000 8K rx',
    'munmap p0 0x1000 4K',
    'touch p0 0x2000 4K read',
    'write p0 0x2000 7',
    'write p0 0x2004 8 expect segv',
    'read p0 0x2000',
    'read p0 0x2000 expect 7',
    'read p0 0x3000 expect segv',
    'vmalloc buf 64K',
    'kwrite buf 4 9',
    'kread buf 4',
    'kread buf 4 expect 9',
    'vfree buf',
    'cpa 0x100000 2 nx',
    'idle',
    'vmalloc_sync_all',
    'exit c1',
    '\tlazy {',
    '  measure m.1+x {',
    '    repeat 2 {  # comment',
    '      touch p0 0x2000 4K write',
    '    }',
    '  }',
    '}',
    'interrupt pgd_alloc:after-pgd_ctor {',
    '  cpa 0 1 ro',
    '}',
  ].join('\n');
  const s = parseScript('a.pvw', text);
  assert.equal(s.machine, {
    // Each key's place is its value's column.
    where: Object.fromEntries(['pae', 'split', 'mem', 'cpu', 'backend', 'kernel'].map((k) => [k, { line: 1, col: text.indexOf(`${k}=`) + k.length + 2 }])),
    pae: false,
    split: '2G',
    mem: 32 << 20,
    cpu: 'core2',
    backend: 'xen',
    kernel: 'seed',
  });
  const n = (line: number, col: number, text: string, template = false) => ({ line, col, text, template });
  assert.equal(s.body, [
    { line: 2, col: 1, op: 'process', name: n(2, 9, 'p0') },
    { line: 3, col: 1, op: 'fork', parent: n(3, 6, 'p0'), child: n(3, 9, 'c1') },
    { line: 4, col: 1, op: 'exec', name: n(4, 6, 'c1') },
    { line: 5, col: 1, op: 'switch', name: n(5, 8, 'p0') },
    { line: 6, col: 1, op: 'mmap', name: n(6, 6, 'p0'), addr: 0x1000, len: 8192, prot: 'rx' },
    { line: 7, col: 1, op: 'munmap', name: n(7, 8, 'p0'), addr: 0x1000, len: 4096 },
    { line: 8, col: 1, op: 'touch', name: n(8, 7, 'p0'), addr: 0x2000, len: 4096, access: 'read' },
    { line: 9, col: 1, op: 'write', name: n(9, 7, 'p0'), addr: 0x2000, value: 7, expectSegv: false },
    { line: 10, col: 1, op: 'write', name: n(10, 7, 'p0'), addr: 0x2004, value: 8, expectSegv: true },
    { line: 11, col: 1, op: 'read', name: n(11, 6, 'p0'), addr: 0x2000, expect: null },
    { line: 12, col: 1, op: 'read', name: n(12, 6, 'p0'), addr: 0x2000, expect: { value: 7 } },
    { line: 13, col: 1, op: 'read', name: n(13, 6, 'p0'), addr: 0x3000, expect: 'segv' },
    { line: 14, col: 1, op: 'vmalloc', area: n(14, 9, 'buf'), len: 65536 },
    { line: 15, col: 1, op: 'kwrite', area: n(15, 8, 'buf'), offset: 4, value: 9 },
    { line: 16, col: 1, op: 'kread', area: n(16, 7, 'buf'), offset: 4, expect: null },
    { line: 17, col: 1, op: 'kread', area: n(17, 7, 'buf'), offset: 4, expect: 9 },
    { line: 18, col: 1, op: 'vfree', area: n(18, 7, 'buf') },
    { line: 19, col: 1, op: 'cpa', phys: 0x100000, pages: 2, attr: 'nx' },
    { line: 20, col: 1, op: 'idle' },
    { line: 21, col: 1, op: 'vmalloc_sync_all' },
    { line: 22, col: 1, op: 'exit', name: n(22, 6, 'c1') },
    {
      line: 23,
      col: 2,
      op: 'lazy',
      body: [
        {
          line: 24,
          col: 3,
          op: 'measure',
          label: 'm.1+x',
          body: [{ line: 25, col: 5, op: 'repeat', count: 2, body: [{ line: 26, col: 7, op: 'touch', name: n(26, 13, 'p0'), addr: 0x2000, len: 4096, access: 'write' }] }],
        },
      ],
    },
    { line: 30, col: 1, op: 'interrupt', point: 'pgd_alloc:after-pgd_ctor', body: [{ line: 31, col: 3, op: 'cpa', phys: 0, pages: 1, attr: 'ro' }] },
  ]);
  check(text);
  // Statements, blocks counted once each: 21 + lazy(1 + measure(1 + 2 x 1)) + interrupt(1 + 1).
  assert.is(countStatements(s.body), 21 + 4 + 2);
  // Tokens: tabs separate, braces are tokens of their own, '#' starts a comment only at a token's start.
  const t = parseScript('t.pvw', 'process\ta\nrepeat 2{\nfork a b#\n}\nrepeat 2 {# c\n}');
  assert.equal(t.body[1], { line: 2, col: 1, op: 'repeat', count: 2, body: [{ line: 3, col: 1, op: 'fork', parent: n(3, 6, 'a'), child: n(3, 8, 'b', true) }] });
  assert.is(t.body.length, 3);
  // A byte-order mark and CRLF line ends.
  assert.equal(parseScript('b.pvw', '\uFEFFprocess a\r\nexit a\r\n').body.map((x) => x.op), ['process', 'exit']);
});

const PARSE_ERRORS: [string, string][] = [
  ['process a\nfrobnicate a', "w.pvw:2:1: unknown statement 'frobnicate'"],
  ['process a\0', 'w.pvw:1:10: invalid character 0x00'],
  ['} x', "w.pvw:1:3: unexpected 'x' after '}' (a closing brace stands on its own line)"],
  ['}', "w.pvw:1:1: unbalanced '}': no block is open"],
  ['machine pae=on\nmachine pae=on', "w.pvw:2:1: 'machine' may appear only once"],
  ['process a\nmachine pae=on', "w.pvw:2:1: 'machine' must be the first statement"],
  ['repeat 2 {\nmachine pae=on\n}', "w.pvw:2:1: 'machine' must be the first statement"],
  ['machine pae', "w.pvw:1:9: expected KEY=VALUE, got 'pae'"],
  ['machine =on', "w.pvw:1:9: expected KEY=VALUE, got '=on'"],
  ['machine pae=on pae=off', "w.pvw:1:16: 'pae' given twice"],
  ['machine pae=yes', "w.pvw:1:13: pae must be 'on' or 'off', got 'yes'"],
  ['machine split=4G', "w.pvw:1:15: split must be 3G, 2G or 1G, got '4G'"],
  ['machine mem=lots', "w.pvw:1:13: bad number 'lots' for mem (decimal or 0x hex, optional K/M/G)"],
  ['machine mem=65G', 'w.pvw:1:13: mem 65G is too large (at most 0x1000000000)'],
  ['machine cpu=Core2', "w.pvw:1:13: bad cpu preset 'Core2'"],
  ['machine cpu=a!', "w.pvw:1:13: bad cpu preset 'a!'"],
  ['machine backend=kvm', "w.pvw:1:17: backend must be one of native, xen, vmi, lguest, got 'kvm'"],
  ['machine kernel=old', "w.pvw:1:16: kernel must be patched, seed or prepatch, got 'old'"],
  ['machine colour=red', "w.pvw:1:9: unknown machine key 'colour' (pae, split, mem, cpu, backend, kernel)"],
  ['lazy', "w.pvw:1:5: expected '{' at the end of 'lazy'"],
  ['lazy now {', "w.pvw:1:1: expected 'lazy {'"],
  ['interrupt {', "w.pvw:1:1: expected 'interrupt POINT {'"],
  ['interrupt nowhere {', "w.pvw:1:11: unknown interrupt point 'nowhere' (known: "],
  ['interrupt pgd_alloc:after-pgd_ctor {\ninterrupt pgd_alloc:after-pgd_ctor {\n}\n}', 'w.pvw:2:1: an interrupt block cannot contain another'],
  ['interrupt pgd_alloc:after-pgd_ctor {\nidle\n}', "w.pvw:2:1: 'idle' cannot run in an interrupt (only cpa and vmalloc_sync_all can)"],
  ['repeat 2', "w.pvw:1:9: expected '{' at the end of 'repeat'"],
  ['repeat {', "w.pvw:1:1: expected 'repeat N {'"],
  ['measure {', "w.pvw:1:1: expected 'measure LABEL {'"],
  ['repeat x {\n}', "w.pvw:1:8: bad number 'x' for repeat count (decimal or 0x hex, optional K/M/G)"],
  ['repeat 1000000001 {\n}', 'w.pvw:1:8: repeat count 1000000001 is larger than 1000000000'],
  ['measure 1x {\n}', "w.pvw:1:9: bad label '1x' (letters, digits, _ - + . starting with a letter)"],
  ['measure x! {\n}', "w.pvw:1:9: bad label 'x!' (letters, digits, _ - + . starting with a letter)"],
  ['repeat 2 {', "w.pvw:1:1: unbalanced '{': block not closed before the end of the file"],
  ['process', 'w.pvw:1:8: missing process name'],
  ['process 9a', "w.pvw:1:9: bad process name '9a' (letters, digits, _ and -, starting with a letter)"],
  ['process a!', "w.pvw:1:9: bad process name 'a!' (letters, digits, _ and -, starting with a letter)"],
  ['process a b', "w.pvw:1:11: unexpected 'b' (usage: process NAME)"],
  ['process a\nexec a b', "w.pvw:2:8: unexpected 'b' (usage: exec NAME)"],
  ['fork', 'w.pvw:1:5: missing parent process name'],
  ['process a\nfork a', 'w.pvw:2:7: missing child process name'],
  ['process a\nfork a b c', "w.pvw:2:10: unexpected 'c' (usage: fork PARENT CHILD)"],
  ['process a\nmmap a', 'w.pvw:2:7: missing ADDR'],
  ['process a\nmmap a 0', 'w.pvw:2:9: missing LEN'],
  ['process a\nmmap a 0 4K', 'w.pvw:2:12: missing PROT (r, rw, rx or rwx)'],
  ['process a\nmmap a 0 4K w', "w.pvw:2:13: bad PROT 'w' (r, rw, rx or rwx)"],
  ['process a\nmmap a 0 4K rw x', "w.pvw:2:16: unexpected 'x' (usage: mmap NAME ADDR LEN PROT)"],
  ['process a\nmmap a x 4K rw', "w.pvw:2:8: bad number 'x' for ADDR (decimal or 0x hex, optional K/M/G)"],
  ['process a\nmmap a 0 x rw', "w.pvw:2:10: bad number 'x' for LEN (decimal or 0x hex, optional K/M/G)"],
  ['process a\nmmap a z0 4K rw', "w.pvw:2:8: bad number 'z0' for ADDR (decimal or 0x hex, optional K/M/G)"],
  ['process a\nmmap a 0 4Kb rw', "w.pvw:2:10: bad number '4Kb' for LEN (decimal or 0x hex, optional K/M/G)"],
  ['process a\nmunmap a', 'w.pvw:2:9: missing ADDR'],
  ['process a\nmunmap a 0', 'w.pvw:2:11: missing LEN'],
  ['process a\nmunmap a 0 4K x', "w.pvw:2:15: unexpected 'x' (usage: munmap NAME ADDR LEN)"],
  ['process a\ntouch a 0', 'w.pvw:2:10: missing LEN'],
  ['process a\ntouch a 0 4K', "w.pvw:2:13: missing 'read' or 'write'"],
  ['process a\ntouch a 0 4K rw', "w.pvw:2:14: expected 'read' or 'write', got 'rw'"],
  ['process a\ntouch a 0 4K read x', "w.pvw:2:19: unexpected 'x' (usage: touch NAME ADDR LEN read|write)"],
  ['process a\nwrite a 0', 'w.pvw:2:10: missing VALUE'],
  ['process a\nwrite a 0 1 x', "w.pvw:2:13: unexpected 'x' (usage: write NAME ADDR VALUE [expect segv])"],
  ['process a\nwrite a 0 1 expect', "w.pvw:2:19: missing 'segv'"],
  ['process a\nwrite a 0 1 expect 1', "w.pvw:2:20: a write can only expect 'segv', got '1'"],
  ['process a\nwrite a 0 1 expect segv x', "w.pvw:2:25: unexpected 'x' (usage: write NAME ADDR VALUE [expect segv])"],
  ['process a\nwrite a 0 0x100000000', 'w.pvw:2:11: VALUE 0x100000000 is too large (at most 0xffffffff)'],
  ['process a\nread a', 'w.pvw:2:7: missing ADDR'],
  ['process a\nread a 0 x', "w.pvw:2:10: unexpected 'x' (usage: read NAME ADDR [expect VALUE|segv])"],
  ['process a\nread a 0 expect', 'w.pvw:2:16: missing VALUE or segv'],
  ['process a\nread a 0 expect x', "w.pvw:2:17: bad number 'x' for expected VALUE (decimal or 0x hex, optional K/M/G)"],
  ['process a\nread a 0 expect 1 x', "w.pvw:2:19: unexpected 'x' (usage: read NAME ADDR [expect VALUE|segv])"],
  ['vmalloc', 'w.pvw:1:8: missing area name'],
  ['vmalloc b', 'w.pvw:1:10: missing LEN'],
  ['vmalloc b 4K x', "w.pvw:1:14: unexpected 'x' (usage: vmalloc AREA LEN)"],
  ['vfree', 'w.pvw:1:6: missing area name'],
  ['vmalloc b 4K\nvfree b x', "w.pvw:2:9: unexpected 'x' (usage: vfree AREA)"],
  ['process p\nsyscall', 'w.pvw:2:8: missing process name'],
  ['process p\nsyscall p q', "w.pvw:2:11: unexpected 'q' (usage: syscall NAME)"],
  ['vmalloc b 4K\nkwrite b', 'w.pvw:2:9: missing OFFSET'],
  ['vmalloc b 4K\nkwrite b 0', 'w.pvw:2:11: missing VALUE'],
  ['vmalloc b 4K\nkwrite b 0 1 x', "w.pvw:2:14: unexpected 'x' (usage: kwrite AREA OFFSET VALUE)"],
  ['vmalloc b 4K\nkwrite b x 1', "w.pvw:2:10: bad number 'x' for OFFSET (decimal or 0x hex, optional K/M/G)"],
  ['vmalloc b 4K\nkwrite b 0 x', "w.pvw:2:12: bad number 'x' for VALUE (decimal or 0x hex, optional K/M/G)"],
  ['vmalloc b 4K\nkread b', 'w.pvw:2:8: missing OFFSET'],
  ['vmalloc b 4K\nkread b 0 x', "w.pvw:2:11: unexpected 'x' (usage: kread AREA OFFSET [expect VALUE])"],
  ['vmalloc b 4K\nkread b 0 expect', 'w.pvw:2:17: missing VALUE'],
  ['vmalloc b 4K\nkread b 0 expect x', "w.pvw:2:18: bad number 'x' for expected VALUE (decimal or 0x hex, optional K/M/G)"],
  ['vmalloc b 4K\nkread b 0 expect 1 x', "w.pvw:2:20: unexpected 'x' (usage: kread AREA OFFSET [expect VALUE])"],
  ['cpa', 'w.pvw:1:4: missing PHYS'],
  ['cpa 0', 'w.pvw:1:6: missing PAGES'],
  ['cpa 0 1', 'w.pvw:1:8: missing ro, rw, nx or x'],
  ['cpa 0 1 rx', "w.pvw:1:9: bad attribute 'rx' (ro, rw, nx or x)"],
  ['cpa 0 1 ro x', "w.pvw:1:12: unexpected 'x' (usage: cpa PHYS PAGES ro|rw|nx|x)"],
  ['cpa 0x1000000000 1 ro', 'w.pvw:1:5: PHYS 0x1000000000 is too large (at most 0xfffffffff)'],
  ['cpa 0 0x1000001 ro', 'w.pvw:1:7: PAGES 0x1000001 is too large (at most 0x1000000)'],
  ['idle x', "w.pvw:1:6: unexpected 'x' (usage: idle)"],
];

test('every parse error: exact message and place', () => {
  for (const [text, want] of PARSE_ERRORS) {
    const got = err(text);
    if (want.endsWith('(known: ')) assert.ok(got.startsWith(want), `${JSON.stringify(text)}: ${got}`);
    else assert.is(got, want, JSON.stringify(text));
  }
});

const CHECK_ERRORS: [string, string][] = [
  ['fork init child', "w.pvw:1:6: unknown process 'init'"],
  ['process a\nprocess a', "w.pvw:2:9: process 'a' already exists"],
  ['process a\nprocess b\nfork a b', "w.pvw:3:8: process 'b' already exists"],
  ['exec a', "w.pvw:1:6: unknown process 'a'"],
  ['syscall a', "w.pvw:1:9: unknown process 'a'"],
  ['process a\nexit a\nsyscall a', "w.pvw:3:9: unknown process 'a'"],
  ['switch a', "w.pvw:1:8: unknown process 'a'"],
  ['process a\nexit a\nexit a', "w.pvw:3:6: unknown process 'a'"],
  ['process a\nexit a\nswitch a', "w.pvw:3:8: unknown process 'a'"],
  ['process x#', "w.pvw:1:9: 'x#' outside a repeat block (NAME# needs a loop index)"],
  ['mmap a 0 4K rw', "w.pvw:1:6: unknown process 'a'"],
  ['munmap a 0 4K', "w.pvw:1:8: unknown process 'a'"],
  ['touch a 0 4K read', "w.pvw:1:7: unknown process 'a'"],
  ['write a 0 1', "w.pvw:1:7: unknown process 'a'"],
  ['read a 0', "w.pvw:1:6: unknown process 'a'"],
  ['process a\nmmap a 0x1001 4K rw', 'w.pvw:2:1: mmap ADDR 0x1001 is not page-aligned'],
  ['process a\nmmap a 0x1000 0 rw', 'w.pvw:2:1: mmap LEN 0x0 is not a positive multiple of the page size'],
  ['process a\nmmap a 0x1000 100 rw', 'w.pvw:2:1: mmap LEN 0x64 is not a positive multiple of the page size'],
  ['process a\nmunmap a 0x1001 4K', 'w.pvw:2:1: munmap ADDR 0x1001 is not page-aligned'],
  ['process a\nmunmap a 0x1000 0', 'w.pvw:2:1: munmap LEN 0x0 is not a positive multiple of the page size'],
  ['process a\nmmap a 0xbffff000 8K rw', 'w.pvw:2:1: mmap 0xbffff000+0x2000 is outside user space (TASK_SIZE 0xc0000000 with split=3G)'],
  ['machine split=1G\nprocess a\nmunmap a 0x3ffff000 8K', 'w.pvw:3:1: munmap 0x3ffff000+0x2000 is outside user space (TASK_SIZE 0x40000000 with split=1G)'],
  ['process a\ntouch a 0 0 read', 'w.pvw:2:1: touch LEN must be positive'],
  ['process a\ntouch a 0xfffff000 0x1001 read', 'w.pvw:2:1: touch range wraps past the top of the 4 GiB address space'],
  ['process a\nwrite a 0xfffffffd 1', 'w.pvw:2:1: write ADDR 0xfffffffd: a 32-bit access there wraps the address space'],
  ['process a\nread a 0xfffffffd', 'w.pvw:2:1: read ADDR 0xfffffffd: a 32-bit access there wraps the address space'],
  ['vmalloc b 4K\nvmalloc b 4K', "w.pvw:2:9: area 'b' already exists"],
  ['vmalloc b 0', 'w.pvw:1:1: vmalloc LEN must be positive'],
  ['vmalloc b 0x20000001', 'w.pvw:1:1: vmalloc LEN 0x20000001 is larger than any vmalloc area'],
  ['vfree b', "w.pvw:1:7: unknown area 'b'"],
  ['vmalloc b 4K\nvfree b\nvfree b', "w.pvw:3:7: unknown area 'b'"],
  ['kwrite b 0 1', "w.pvw:1:8: unknown area 'b'"],
  ['kread b 0', "w.pvw:1:7: unknown area 'b'"],
  // A word that starts inside the area but runs past its end (issue 11: the message names the access and the last whole word).
  ['vmalloc b 4K\nkwrite b 0xffd 1', "w.pvw:2:1: kwrite OFFSET 0xffd: the 4-byte access 0xffd..0x1000 runs past the end of area 'b' (0x1000 bytes; the last whole word is at 0xffc)"],
  ['vmalloc b 8K\nkread b 0x1ffe', "w.pvw:2:1: kread OFFSET 0x1ffe: the 4-byte access 0x1ffe..0x2001 runs past the end of area 'b' (0x2000 bytes; the last whole word is at 0x1ffc)"],
  // An offset at or beyond the end.
  ['vmalloc b 4K\nkwrite b 0x1000 1', "w.pvw:2:1: kwrite OFFSET 0x1000 is outside area 'b' (0x1000 bytes)"],
  ['vmalloc b 4K\nkread b 0x5000', "w.pvw:2:1: kread OFFSET 0x5000 is outside area 'b' (0x1000 bytes)"],
  ['vmalloc b 4K\nkread b 0x1000', "w.pvw:2:1: kread OFFSET 0x1000 is outside area 'b' (0x1000 bytes)"],
  ['cpa 0x1001 1 ro', 'w.pvw:1:1: cpa PHYS 0x1001 is not page-aligned'],
  ['cpa 0 0 ro', 'w.pvw:1:1: cpa PAGES must be positive'],
  ['machine mem=16M\ncpa 0xfff000 2 ro', 'w.pvw:2:1: cpa range is beyond guest memory (mem=0x1000000)'],
  // Inside blocks.
  ['measure m {\nexec a\n}', "w.pvw:2:6: unknown process 'a'"],
  ['lazy {\nswitch a\n}', "w.pvw:2:8: unknown process 'a'"],
  ['interrupt pgd_alloc:after-pgd_ctor {\ncpa 0x1001 1 ro\n}', 'w.pvw:2:1: cpa PHYS 0x1001 is not page-aligned'],
];

test('every check error: exact message and place', () => {
  for (const [text, want] of CHECK_ERRORS) assert.is(err(text), want, JSON.stringify(text));
});

test('each limit at its boundary: the last value accepted, the next refused', () => {
  // mmap/munmap up to TASK_SIZE exactly.
  assert.is(err('process a\nmmap a 0xbffff000 4K rw\nmunmap a 0xbffff000 4K'), '');
  assert.is(err('machine split=2G\nprocess a\nmmap a 0x7ffff000 4K rw'), '');
  assert.match(err('machine split=2G\nprocess a\nmmap a 0x7ffff000 8K rw'), /outside user space \(TASK_SIZE 0x80000000 with split=2G\)/);
  // touch up to the top of the address space exactly.
  assert.is(err('process a\ntouch a 0xfffff000 0x1000 read'), '');
  // A 32-bit access at 0xfffffffc is the last one that fits.
  assert.is(err('process a\nwrite a 0xfffffffc 1\nread a 0xfffffffc'), '');
  // vmalloc: 512 MiB is the largest area.
  assert.is(err('vmalloc b 0x20000000'), '');
  // kwrite/kread: the last word of the area.
  assert.is(err('vmalloc b 4K\nkwrite b 0xffc 1\nkread b 0xffc'), '');
  // cpa up to the end of guest memory exactly.
  assert.is(err('machine mem=16M\ncpa 0xfff000 1 ro'), '');
  // repeat counts up to MAX_REPEAT; nesting up to MAX_NESTING.
  assert.is(parseScript('w.pvw', 'repeat 1000000000 {\n}').body.length, 1);
  const nest = (d: number) => 'repeat 1 {\n'.repeat(d) + 'idle\n' + '}\n'.repeat(d);
  assert.is(err(nest(MAX_NESTING)), '');
  assert.is(err(nest(MAX_NESTING + 1)), `w.pvw:${MAX_NESTING + 1}:1: blocks nested deeper than ${MAX_NESTING}`);
  const lazyNest = 'repeat 1 {\n'.repeat(MAX_NESTING) + 'lazy {\nidle\n}\n' + '}\n'.repeat(MAX_NESTING);
  assert.is(err(lazyNest), `w.pvw:${MAX_NESTING + 1}:1: blocks nested deeper than ${MAX_NESTING}`);
  // The statement budget: exactly MAX_STATEMENTS runs, one more is refused at the biggest repeat.
  assert.is(MAX_STATEMENTS, 20_000_000);
  // A repeat counts its body COUNT times (not itself): 4000 x 5000 = 20,000,000.
  assert.is(err('repeat 4000 {\nrepeat 5000 {\nidle\n}\n}'), '');
  assert.is(
    err('repeat 4000 {\nrepeat 5000 {\nidle\n}\n}\nidle'),
    'w.pvw:1:1: the script would run 20000001 statements (limit 20000000); lower the repeat count',
  );
  // The biggest repeat is named, also inside a measure (its inner repeat) and after a smaller one.
  assert.is(
    err('idle\nrepeat 2 {\nidle\n}\nmeasure m {\nrepeat 30000000 {\nidle\n}\n}'),
    'w.pvw:6:1: the script would run 30000004 statements (limit 20000000); lower the repeat count',
  );
  assert.is(
    err('lazy {\nrepeat 30000000 {\nidle\n}\n}'),
    'w.pvw:2:1: the script would run 30000001 statements (limit 20000000); lower the repeat count',
  );
  // The first of two repeats when it is the bigger one.
  assert.is(
    err('repeat 30000000 {\nidle\n}\nrepeat 2 {\nidle\n}'),
    'w.pvw:1:1: the script would run 30000002 statements (limit 20000000); lower the repeat count',
  );
  // Of two equal repeats, the first is named.
  assert.is(
    err('repeat 20000000 {\nidle\n}\nrepeat 20000000 {\nidle\n}'),
    'w.pvw:1:1: the script would run 40000000 statements (limit 20000000); lower the repeat count',
  );
  // Saturating count: no overflow to a small number.
  assert.is(countStatements(parseScript('w.pvw', 'repeat 1000000000 {\nrepeat 1000000000 {\nrepeat 1000000000 {\nidle\n}\n}\n}').body), Number.MAX_SAFE_INTEGER);
  // The script size limit: a script of exactly 4 MiB is read, one byte more is refused.
  const big = '#'.repeat(4 << 20);
  assert.equal(parseScript('w.pvw', big).body, []);
  assert.is(err(big + '#'), `w.pvw:1:1: script larger than ${4 << 20} bytes`);
});

test('repeat: a body whose names change is checked again; NAME# bodies every time, inside blocks too', () => {
  // No template, but the names change: the second iteration sees the first's process.
  assert.is(err('repeat 2 {\nprocess x\n}'), "w.pvw:2:9: process 'x' already exists");
  assert.is(err('repeat 2 {\nvmalloc b 4K\n}'), "w.pvw:2:9: area 'b' already exists");
  // A NAME# body that leaves the names unchanged is still checked at every index.
  for (const wrap of [(b: string) => b, (b: string) => `measure m {\n${b}\n}`, (b: string) => `lazy {\n${b}\n}`]) {
    const body = wrap('fork init c#\nexit c#');
    assert.is(err(`process init\nprocess c1\nrepeat 2 {\n${body}\n}`), `w.pvw:${body.startsWith('fork') ? 4 : 5}:11: process 'c1' already exists`);
    assert.is(err(`process init\nrepeat 2 {\n${body}\n}`), '');
  }
  // A template in an inner repeat binds that loop's index, not the outer one.
  assert.is(err('process init\nprocess c1\nrepeat 2 {\nrepeat 1 {\nfork init c#\nexit c#\n}\n}'), '');
  // The fixed point: a body that leaves the names as they were runs once in the checker and is accepted.
  assert.is(err('process a\nrepeat 1000000 {\nfork a b\nexit b\n}'), '');
});

test.run();
