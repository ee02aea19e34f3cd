/**
 * Traces (issue 9 section 4): hypercalls and traps are slices ('X') with
 * their cycles and arguments (the command, the mfn, the batch size), nested
 * inside the statement that made them; refusals stay instants.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadWorkload } from '../../tools/workload/load.js';
import { runWorkload } from '../../tools/workload/interpreter.js';
import { TraceWriter } from '../../tools/trace/writer.js';

interface Ev {
  name: string;
  cat?: string;
  ph: string;
  ts: number;
  dur?: number;
  args?: Record<string, unknown>;
}

test('Xen fork+exit: hypercall and trap slices with cycles, cmd, mfn and batch size', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pvmmu-slices-'));
  const out = join(dir, 't.json');
  const { script, cfg } = loadWorkload('tools/workloads/lmbench/fork-exit.pvw', { backend: 'xen', mem: 32 << 20 });
  const r = runWorkload(script, cfg, { trace: new TraceWriter(out) });
  assert.is(r.failure, null);
  const ev = (JSON.parse(readFileSync(out, 'utf8')) as { traceEvents: Ev[] }).traceEvents;
  const hc = ev.filter((e) => e.cat === 'hypercall');
  assert.ok(hc.length > 0, 'hypercall events');
  for (const e of hc) {
    assert.is(e.ph, 'X', `${e.name} is a slice`);
    assert.is(e.dur, e.args!['cycles'], `${e.name}: its duration is its cycles`);
    assert.ok((e.dur ?? 0) > 0, `${e.name} costs cycles`);
  }
  const ext = hc.find((e) => e.name === 'hypercall mmuext_op' && /NEW_BASEPTR/.test(String(e.args!['cmd'])));
  assert.ok(ext, 'a NEW_BASEPTR');
  assert.match(String(ext!.args!['mfn']), /^0x[0-9a-f]+$/);
  assert.type(ext!.args!['batch'], 'number');
  const mc = hc.find((e) => e.name === 'hypercall multicall');
  assert.ok(mc && (mc.args!['batch'] as number) >= 1, 'a multicall with its batch size');
  // A call inside a multicall is nested in its slice.
  const inner = hc.find((e) => e.args!['in'] === 'multicall');
  assert.ok(inner, 'calls inside a multicall are marked');
  const parent = hc.find((e) => e.name === 'hypercall multicall' && e.ts <= inner!.ts && inner!.ts + inner!.dur! <= e.ts + e.dur!);
  assert.ok(parent, 'and nested in a multicall slice');
  const traps = ev.filter((e) => e.cat === 'trap');
  assert.ok(traps.some((e) => e.name === 'trap page_fault_bounce' && e.ph === 'X' && /^0x/.test(String(e.args!['va']))), 'bounced faults with their address');
  assert.ok(traps.some((e) => e.name === 'trap ptwr_emulate' && e.ph === 'X' && /^0x/.test(String(e.args!['mfn']))), 'trapped writes with their mfn');
});

test('native: no hypercall or trap events', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pvmmu-slices-'));
  const out = join(dir, 't.json');
  const { script, cfg } = loadWorkload('tools/workloads/lmbench/fork-exit.pvw', { backend: 'native', mem: 32 << 20 });
  runWorkload(script, cfg, { trace: new TraceWriter(out) });
  const ev = (JSON.parse(readFileSync(out, 'utf8')) as { traceEvents: Ev[] }).traceEvents;
  assert.is(ev.filter((e) => e.cat === 'hypercall' || e.cat === 'trap').length, 0);
});

test.run();
