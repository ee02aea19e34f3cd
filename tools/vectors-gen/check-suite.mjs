#!/usr/bin/env node
// Cross-checks a vector file and its expected results against the reference
// walker (ref-walker.mjs), and checks that every case is portable.
//
//   node tools/vectors-gen/check-suite.mjs tests/vectors/sdm-suite.json [expected.json]
//
// For each case:
//   1. the file is well formed (format tags, names unique and matching, every
//      region echoed with the same pa / width / length, regions don't overlap);
//   2. the reference walker without any TLB reproduces the expected result;
//   3. the walker with an aggressive (but SDM-conforming) TLB and PDE cache
//      gives the same result, i.e. the case does not depend on TLB contents;
//   4. no fault happens while a non-leaf entry on the faulting walk has A = 0
//      (that A bit is implementation-defined after a fault).
// Exit code 1 if anything fails.
import { readFileSync } from 'node:fs';
import { runCase, sameResult } from './ref-walker.mjs';

const [inPath, expPathArg] = process.argv.slice(2);
if (!inPath) {
  console.error('usage: check-suite.mjs VECTORS.json [EXPECTED.json]');
  process.exit(2);
}
const expPath = expPathArg ?? inPath.replace(/\.json$/, '.expected.json');
const input = JSON.parse(readFileSync(inPath, 'utf8'));
const expected = JSON.parse(readFileSync(expPath, 'utf8'));

const problems = [];
const bad = (name, msg) => problems.push(`${name}: ${msg}`);
const HEX = /^0x[0-9a-f]+$/;

if (input.format !== 'x86-mmu-vectors/1') bad('(file)', `input format ${input.format}`);
if (expected.format !== 'x86-mmu-results/1') bad('(file)', `expected format ${expected.format}`);
if (input.cases.length !== expected.cases.length) bad('(file)', 'case counts differ');

const names = new Set();
let steps = 0;
input.cases.forEach((c, i) => {
  const e = expected.cases[i];
  if (names.has(c.name)) bad(c.name, 'duplicate name');
  names.add(c.name);
  if (!e || e.name !== c.name) { bad(c.name, 'expected case missing or out of order'); return; }
  if (e.cycles !== undefined) bad(c.name, 'expected result carries cycles');
  steps += c.steps.length;

  // structure
  for (const [k, v] of Object.entries(c.cpu ?? {})) {
    if (!['cr0', 'cr4', 'efer'].includes(k) || !HEX.test(v)) bad(c.name, `cpu.${k} = ${v}`);
  }
  const spans = [];
  for (const r of c.memory ?? []) {
    const w = r.u64 ? 8 : 4;
    const list = r.u64 ?? r.u32;
    if (!HEX.test(r.pa) || !Array.isArray(list) || !list.every((x) => HEX.test(x))) bad(c.name, `region ${r.pa} malformed`);
    const lo = BigInt(r.pa), hi = lo + BigInt(w * list.length);
    if (lo % BigInt(w) !== 0n) bad(c.name, `region ${r.pa} not ${w}-byte aligned`);
    if (hi > 1n << 36n) bad(c.name, `region ${r.pa} beyond 64 GiB`);
    for (const [a, b] of spans) if (lo < b && a < hi) bad(c.name, `region ${r.pa} overlaps another`);
    spans.push([lo, hi]);
  }
  for (const s of c.steps) {
    const ok = { cr3: ['value'], cr0: ['value'], cr4: ['value'], access: ['va', 'kind'], poke: ['pa'], invlpg: ['va'] }[s.op];
    if (!ok || !ok.every((k) => s[k] !== undefined)) bad(c.name, `bad step ${JSON.stringify(s)}`);
    if (s.op === 'access' && !['read', 'write', 'fetch'].includes(s.kind)) bad(c.name, `bad kind ${s.kind}`);
  }
  if (e.steps.length !== c.steps.length) bad(c.name, 'step count differs');
  if ((e.memory ?? []).length !== (c.memory ?? []).length) bad(c.name, 'memory echo length differs');
  (c.memory ?? []).forEach((r, j) => {
    const o = e.memory[j];
    const same = o && o.pa === r.pa && (r.u64 ? o.u64 && o.u64.length === r.u64.length : o.u32 && o.u32.length === r.u32.length);
    if (!same) bad(c.name, `memory echo ${j} does not match region ${r.pa}`);
  });

  // semantics
  const ref = runCase(c, { tlb: false });
  const agg = runCase(c, { tlb: true });
  if (!sameResult(ref, e)) {
    bad(c.name, `expected differs from reference walker\n    expected: ${JSON.stringify({ steps: e.steps, memory: e.memory })}\n    walker:   ${JSON.stringify({ steps: ref.steps, memory: ref.memory })}`);
  }
  if (!sameResult(ref, agg)) {
    bad(c.name, `result depends on TLB contents\n    no TLB:     ${JSON.stringify({ steps: ref.steps, memory: ref.memory })}\n    caching TLB: ${JSON.stringify({ steps: agg.steps, memory: agg.memory })}`);
  }
  for (const n of ref.notes) bad(c.name, `not portable: ${n}`);
});

for (const p of problems) console.log(p);
console.log(`${inPath}: ${input.cases.length} cases, ${steps} steps, ${problems.length} problem(s)`);
process.exit(problems.length ? 1 : 0);
