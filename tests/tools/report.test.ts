/**
 * `pvmmu report`: a self-contained HTML page (no scripts, no external
 * resources) whose charts reflect the trace; malformed traces are refused
 * with exit 2 naming the file and line.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cli = join(process.cwd(), 'dist/tools/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'pvmmu-report-'));
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

const workload = join(dir, 'w.pvw');
writeFileSync(
  workload,
  `process init
mmap init 0x08048000 64K rw
touch init 0x08048000 64K write
repeat 3 {
  fork init c#
  write c# 0x08048000 7
  exit c#
}
vmalloc buf 8K
kwrite buf 0 0x1234
kread buf 0 expect 0x1234
`,
);

test('a trace from compare becomes one self-contained HTML page with SVG charts', () => {
  const prefix = join(dir, 't');
  const c = run(['compare', workload, '--trace', prefix]);
  assert.is(c.status, 0, c.stderr);
  const trace = JSON.parse(readFileSync(`${prefix}.xen.json`, 'utf8'));
  const walks = trace.traceEvents.filter((e: { cat?: string; ph?: string }) => e.cat === 'mmu' && e.ph === 'X');
  assert.ok(walks.length > 10);
  const w0 = walks[0];
  assert.match(w0.args.va, /^0x[0-9a-f]+$/);
  assert.ok(Array.isArray(w0.args.entries) && w0.args.entries.length >= 1);
  assert.ok('pa' in w0.args || w0.args.fault === 'PF');
  assert.ok(trace.traceEvents.some((e: { name: string }) => e.name.startsWith('hypercall ')), 'hypercall instants in the Xen trace');
  assert.ok(trace.traceEvents.some((e: { name: string }) => e.name === 'context switch'));

  const out = join(dir, 'r.html');
  const r = run(['report', `${prefix}.native.json`, `${prefix}.xen.json`, '-o', out]);
  assert.is(r.status, 0, r.stderr);
  const html = readFileSync(out, 'utf8');
  assert.ok(html.startsWith('<!DOCTYPE html>'));
  assert.not.match(html, /<script|<link|src=|https?:\/\//i);
  assert.ok((html.match(/<svg/g) ?? []).length >= 5);
  for (const t of ['walk latency', 'over the run', 'Most-missed pages', 'Cost by workload statement', 'Measures: cycles per run']) assert.ok(html.includes(t), t);
  assert.ok(html.includes('0x08048000'), 'the most-missed page is the touched heap');
  assert.ok(html.includes('<th>native</th><th>xen</th>'), 'the two runs are labelled by the backend their trace names');
  // The overview's walk counts are the trace's.
  assert.ok(html.includes(`<td>${walks.length.toLocaleString('en-US')}</td>`));
});

test('malformed traces are refused with file:line and exit 2', () => {
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{"traceEvents":[\n{"name":"walk","ph":"X"\n]}\n');
  const r = run(['report', bad, '-o', join(dir, 'x.html')]);
  assert.is(r.status, 2);
  assert.match(r.stderr, /bad\.json:2:1: invalid JSON in this event/);
  const trunc = join(dir, 'trunc.json');
  writeFileSync(trunc, '{"traceEvents":[\n{"name":"walk","ph":"X","ts":1,"dur":2}\n');
  const t = run(['report', trunc]);
  assert.is(t.status, 2);
  assert.match(t.stderr, /truncated/);
  assert.is(run(['report', join(dir, 'missing.json')]).status, 2);
  assert.is(run(['report', bad, bad, bad]).status, 2);
});

test.run();
