/**
 * Determinism (issue 6): the same workload and seed give byte-identical
 * `--json` output and traces across runs (the CLI, twice, compared byte for
 * byte), on both backends, and the Xen backend with its p2m shuffled by the
 * seed (in process: the CLI's Xen p2m is the identity); and the fuzzer's
 * TLB checker changes nothing a run reports.
 */
import { suite } from '../harness.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateWorkload } from '../../tools/fuzz/workload-gen.js';
import { loadText, runChecked } from '../../tools/fuzz/differential.js';
import { runWorkload } from '../../tools/workload/interpreter.js';
import { openTrace } from '../../tools/trace/writer.js';

const s = suite('determinism');
const dir = mkdtempSync(join(tmpdir(), 'pvmmu-det-'));
// A generated workload with forks, COW, vmalloc, cpa and blocks, in PAE and in 2-level.
const files = [true, false].map((pae) => {
  const f = join(dir, `det-${pae ? 'pae' : '2l'}.pvw`);
  writeFileSync(f, generateWorkload(13, { statements: 30, config: { pae } }).text);
  return f;
});

function cli(args: string[]): { out: string; code: number | null; err: string } {
  const r = spawnSync(process.execPath, ['dist/tools/cli.js', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { out: r.stdout, code: r.status, err: r.stderr };
}

// Through the CLI (a fresh process each run): the PAE workload; the 2-level one in process below.
for (const f of files.slice(0, 1)) {
  const name = f.endsWith('pae.pvw') ? 'PAE' : '2-level';
  for (const backend of ['native', 'xen']) {
    s(`${name} ${backend}: boot --json --trace twice gives identical JSON bytes and identical trace files`, () => {
      const t = (run: string): string => join(dir, `t-${name}-${backend}-${run}.json`);
      const a = cli(['boot', f, '--backend', backend, '--seed', '7', '--json', '--trace', t('a')]);
      const b = cli(['boot', f, '--backend', backend, '--seed', '7', '--json', '--trace', t('b')]);
      assert.is(a.code, 0, a.err);
      assert.ok(JSON.parse(a.out).cycles > 0);
      assert.is(a.out, b.out, 'two runs printed different JSON');
      const ta = readFileSync(t('a'));
      assert.ok(ta.length > 1000, 'a trace was written');
      assert.ok(ta.equals(readFileSync(t('b'))), 'traces differ');
    });
  }
  s(`${name}: compare --json --trace twice gives identical JSON bytes and identical traces of both backends`, () => {
    const run = (r: string): string => {
      const x = cli(['compare', f, '--seed', '7', '--json', '--trace', join(dir, `c-${name}-${r}`)]);
      assert.is(x.code, 0, x.err);
      return x.out;
    };
    const a = run('a');
    assert.is(a, run('b'), 'two runs printed different JSON');
    assert.is(JSON.parse(a).workloads[0].equivalent, true);
    for (const b of ['native', 'xen']) {
      const x = readFileSync(join(dir, `c-${name}-a.${b}.json`));
      assert.ok(x.length > 1000 && x.equals(readFileSync(join(dir, `c-${name}-b.${b}.json`))), `${b} traces differ`);
    }
  });
}

for (const f of files) {
  const name = f.endsWith('pae.pvw') ? 'PAE' : '2-level';
  s(`${name}, in process: native, and Xen with a p2m shuffled by the seed: same seed, identical result and trace bytes; another seed, another machine layout, the same guest view`, () => {
    const { script, cfg } = loadText(f, readFileSync(f, 'utf8'));
    const run = (backend: 'native' | 'xen', seed: number, tag: string): { json: string; trace: Buffer; obs: string[] } => {
      const path = join(dir, `inproc-${name}-${backend}-${tag}.json`);
      const r = runWorkload(script, { ...cfg, backend }, { seed, xenP2m: 'shuffled', trace: openTrace(path) });
      assert.is(r.failure, null);
      return { json: JSON.stringify(r), trace: readFileSync(path), obs: r.observations };
    };
    for (const backend of ['native', 'xen'] as const) {
      const a = run(backend, 7, 'a');
      const b = run(backend, 7, 'b');
      assert.is(a.json, b.json, backend);
      assert.ok(a.trace.length > 1000 && a.trace.equals(b.trace), `${backend}: traces of the same seed differ`);
      if (backend === 'xen') {
        const c = run(backend, 8, 'c');
        assert.not.ok(a.trace.equals(c.trace), 'the p2m seed changed nothing in the trace (the check above would be vacuous)');
        assert.equal(c.obs, a.obs);
      }
    }
  });
}

s('the fuzzer TLB checker is side-effect-free: a checked run reports exactly what an unchecked run does', () => {
  for (const f of files) {
    const { script, cfg } = loadText(f, readFileSync(f, 'utf8'));
    for (const backend of ['native', 'xen'] as const) {
      const c = { ...cfg, backend };
      const plain = runWorkload(script, c, { seed: 7, checkEachStatement: true });
      const checked = runChecked(script, c, 7);
      assert.ok(checked.accesses > 0);
      assert.is(JSON.stringify(checked.result), JSON.stringify(plain), `${f} ${backend}`);
    }
  }
});

s.after(() => rmSync(dir, { recursive: true, force: true }));
s.run();
