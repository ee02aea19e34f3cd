/**
 * Sweeps in worker threads and shards (issue 12, items 4-6): --jobs 2 prints
 * byte for byte what --jobs 1 prints, and shards merged by `pvmmu merge` are
 * byte for byte the single run, for inject (allocation and mmu_update
 * modes), the fuzzer's count mode and the regression matrix; the pool
 * returns results in item order and reports a worker's exception as it was
 * thrown; bad --jobs, --shard and merge inputs are one line and exit 2; the
 * progress line's ETA.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../../tools/input-error.js';
import { parseJobs, runPool, startPool } from '../../tools/sweep/pool.js';
import { parseShard, shardInfo, shardRange } from '../../tools/sweep/shard.js';
import { mergeShards } from '../../tools/sweep/merge.js';
import { MATRIX_TASK, assembleMatrix, matrixItems, matrixText, type MatrixItem, type MatrixItemResult } from '../../tools/regression/matrix-sweep.js';
import { durationText, etaText, progressText } from '../../tools/table.js';
import { FIXTURE_TASK, type FixtureInit } from './sweep-task-fixture.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = ROOT + 'dist/tools/cli.js';
const FUZZ = ROOT + 'dist/tools/fuzz/run.js';
const W = 'tests/tools/fixtures/inject-fork.pvw';

function run(script: string, args: string[]): { out: string; err: string; code: number | null } {
  const r = spawnSync(process.execPath, [script, ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { out: r.stdout, err: r.stderr, code: r.status };
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'pvmmu-sweep-'));
}

const pool = suite('sweep pool');

pool('results come back in item order whatever the number of workers; a range runs only its items', async () => {
  const init: FixtureInit = { k: 3, failAt: -1, input: false };
  const one = await runPool<FixtureInit, FixtureInit, number>({ task: FIXTURE_TASK, init, from: 0, to: 40, jobs: 1 });
  const two = await runPool<FixtureInit, FixtureInit, number>({ task: FIXTURE_TASK, init, from: 0, to: 40, jobs: 2 });
  assert.equal(one, Array.from({ length: 40 }, (_, i) => 3 * i));
  assert.equal(two, one);
  assert.equal(await runPool<FixtureInit, FixtureInit, number>({ task: FIXTURE_TASK, init, from: 10, to: 13, jobs: 2 }), [30, 33, 36]);
});

pool('a time budget (more) stops starting items; the items started are a prefix, in order', async () => {
  let n = 0;
  const r = await runPool<FixtureInit, FixtureInit, number>({ task: FIXTURE_TASK, init: { k: 1, failAt: -1, input: false }, from: 0, to: Infinity, jobs: 2, more: () => n++ < 7 });
  assert.equal(r, [0, 1, 2, 3, 4, 5, 6]);
});

pool('an exception in a worker is rethrown as in-process: same class for InputError, same message, no hang', async () => {
  for (const jobs of [1, 2]) {
    for (const input of [true, false]) {
      let caught: unknown = null;
      try {
        await runPool<FixtureInit, FixtureInit, number>({ task: FIXTURE_TASK, init: { k: 1, failAt: 5, input }, from: 0, to: 20, jobs });
      } catch (e) {
        caught = e;
      }
      assert.ok(caught instanceof Error, `jobs ${jobs}: threw`);
      assert.is((caught as Error).message, input ? 'item 5: bad input' : 'item 5: broken');
      assert.is(caught instanceof InputError, input, `jobs ${jobs}: InputError stays InputError`);
      if (!input) assert.is((caught as Error).name, 'RangeError');
    }
  }
});

pool('a started pool: workers set up while this thread builds its context; run with it, or close it unused (no hang); a worker whose setup fails fails the run', async () => {
  const init: FixtureInit = { k: 5, failAt: -1, input: false };
  const p = startPool<FixtureInit, FixtureInit, number>(FIXTURE_TASK, init, 3);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await p.run({ from: 0, to: 30, local: init }), Array.from({ length: 30 }, (_, i) => 5 * i));
  startPool<FixtureInit, FixtureInit, number>(FIXTURE_TASK, init, 2).close();
  const bad = startPool<FixtureInit, FixtureInit, number>(FIXTURE_TASK, { ...init, setupFails: true }, 2);
  await new Promise((r) => setTimeout(r, 300));
  try {
    // Items slow enough (5 s in all on this thread) that the worker's failure arrives during the run if not before.
    await bad.run({ from: 0, to: 50, local: { ...init, itemMs: 100 } });
    assert.unreachable('the worker could not set up');
  } catch (e) {
    assert.instance(e, RangeError);
    assert.match((e as Error).message, /setup: cannot build the context/);
  }
});

pool('--jobs and --shard values', () => {
  assert.is(parseJobs('--jobs', '3'), 3);
  assert.ok(parseJobs('--jobs', undefined) >= 1);
  for (const bad of ['0', '-1', 'x', '1.5', '', '99999']) assert.throws(() => parseJobs('--jobs', bad), (e: Error) => e instanceof InputError && e.message.startsWith('--jobs: '));
  assert.equal(parseShard('--shard', '2/4'), { index: 2, count: 4 });
  assert.is(parseShard('--shard', undefined), null);
  for (const bad of ['0/4', '5/4', '1/0', '1', '1/2/3', 'a/b', '-1/2']) assert.throws(() => parseShard('--shard', bad), (e: Error) => e instanceof InputError && e.message.startsWith('--shard: '));
});

pool('shards cover every item once, contiguously, in order, sizes within one', () => {
  for (const total of [0, 1, 2, 7, 100, 1787]) {
    for (const count of [1, 2, 3, 4, 9]) {
      const rs = Array.from({ length: count }, (_, i) => shardRange({ index: i + 1, count }, total));
      assert.is(rs[0]!.from, 0);
      assert.is(rs[count - 1]!.to, total);
      for (let i = 1; i < count; i++) assert.is(rs[i]!.from, rs[i - 1]!.to);
      const sizes = rs.map((r) => r.to - r.from);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${total}/${count}: ${sizes}`);
    }
  }
});

pool.run();

const eta = suite('progress ETA');

eta('durations and ETAs', () => {
  assert.is(durationText(0), '0s');
  assert.is(durationText(1), '1s');
  assert.is(durationText(59_000), '59s');
  assert.is(durationText(65_000), '1m05s');
  assert.is(durationText(3_600_000), '1h00m');
  assert.is(durationText(7_500_000), '2h05m');
  assert.is(etaText(10_000, 0, 100), 'ETA ?');
  assert.is(etaText(10_000, 10, 100), 'ETA 1m30s');
  assert.is(etaText(10_000, 100, 100), '');
  assert.is(etaText(1_000, 1, 3), 'ETA 2s');
  assert.is(progressText('inject x', 420, 1000, 42_000), 'inject x 42% (420/1,000) ETA 58s');
  assert.is(progressText('fuzz', 5, 5, 1000), 'fuzz 100% (5/5)');
});

eta.run();

const cli = suite('--jobs and --shard on the command line');

for (const mode of [[], ['--refuse-hypercall', 'all']]) {
  const what = mode.length ? 'mmu_update' : 'allocation';
  cli(`inject (${what}): --jobs 2 == --jobs 1, and 3 merged shards == the single run (JSON and text), byte for byte`, () => {
    const base = ['inject', W, '--backend', 'xen', '--max-runs', '6', ...mode];
    const j1 = run(CLI, [...base, '--jobs', '1', '--json']);
    const j2 = run(CLI, [...base, '--jobs', '2', '--json']);
    const t1 = run(CLI, [...base, '--jobs', '1']);
    const t2 = run(CLI, [...base, '--jobs', '2']);
    assert.is(j1.code, 0, j1.err);
    assert.ok(JSON.parse(j1.out).runs >= 4, 'runs something');
    assert.is(j2.out, j1.out);
    assert.is(t2.out, t1.out);
    assert.is(j2.code, j1.code);
    const dir = tmp();
    try {
      const files = [1, 2, 3].map((i) => {
        const r = run(CLI, [...base, '--jobs', '1', '--shard', `${i}/3`, '--json']);
        assert.is(r.code, 0, r.err);
        const f = join(dir, `s${i}.json`);
        writeFileSync(f, r.out);
        return f;
      });
      const mj = run(CLI, ['merge', '-', files[2]!, files[0]!, files[1]!]);
      assert.is(mj.code, 0, mj.err);
      assert.is(mj.out, j1.out);
      const mt = run(CLI, ['merge', '--text', join(dir, 'out.txt'), ...files]);
      assert.is(mt.code, 0, mt.err);
      assert.is(readFileSync(join(dir, 'out.txt'), 'utf8'), t1.out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

cli('fuzz --seeds: --jobs 2 == --jobs 1, and 2 merged shards == the single run, byte for byte', () => {
  const base = ['--no-save', '--seeds', '2', '--start', '3'];
  const j1 = run(FUZZ, [...base, '--jobs', '1', '--json']);
  const j2 = run(FUZZ, [...base, '--jobs', '2', '--json']);
  assert.ok(j1.code === 0 || j1.code === 1, j1.err);
  assert.is(JSON.parse(j1.out).workload.seeds, 2);
  assert.is(j2.out, j1.out);
  assert.is(j2.code, j1.code);
  const t1 = run(FUZZ, [...base, '--jobs', '1']);
  assert.match(t1.out, /^pvmmu fuzz: seeds 3\.\.4\n/);
  const dir = tmp();
  try {
    const files = [1, 2].map((i) => {
      const r = run(FUZZ, [...base, '--jobs', '1', '--shard', `${i}/2`, '--json']);
      assert.ok(r.code === 0 || r.code === 1, r.err);
      const f = join(dir, `f${i}.json`);
      writeFileSync(f, r.out);
      return f;
    });
    const m = run(CLI, ['merge', '-', ...files]);
    assert.is(m.out, j1.out);
    assert.is(m.code, j1.code);
    assert.is(run(CLI, ['merge', '--text', '-', ...files]).out, t1.out);
    // A shard of another kernel variant is another run (the review found
    // such shards merged silently when the JSON did not say the kernel).
    const other = run(FUZZ, [...base, '--jobs', '1', '--shard', '2/2', '--json', '--kernel', 'seed']);
    const fo = join(dir, 'seed-kernel.json');
    writeFileSync(fo, other.out);
    const bad = run(CLI, ['merge', '-', files[0]!, fo]);
    assert.is(bad.code, 2);
    assert.match(bad.err, /seed-kernel\.json: field kernel differs from .*f1\.json/);
    assert.is(bad.out, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

cli('matrix: --jobs 2 == --jobs 1, and merged shards == the single run (two workloads)', async () => {
  const workloads = ['cow.pvw', 'fork-exit.pvw'];
  const items = matrixItems(workloads);
  const all = (jobs: number, from = 0, to = items.length) =>
    runPool<{ workloads: string[] }, MatrixItem[], MatrixItemResult>({ task: MATRIX_TASK, init: { workloads }, from, to, jobs });
  const single = assembleMatrix((await all(1)).map((r) => r.row));
  assert.is(single.runs, items.length);
  assert.is(single.changed, 0, 'matches tests/golden');
  assert.is(JSON.stringify(assembleMatrix((await all(2)).map((r) => r.row))), JSON.stringify(single));
  const shards = [];
  for (const index of [1, 2, 3]) {
    const s = { index, count: 3 };
    const { from, to } = shardRange(s, items.length);
    const rep = assembleMatrix((await all(1, from, to)).map((r) => r.row));
    shards.push({ file: `m${index}.json`, text: JSON.stringify({ shard: shardInfo('matrix', s, items.length), ...rep }, null, 2) + '\n' });
  }
  const m = mergeShards(shards.reverse());
  assert.is(JSON.stringify(m.json, null, 2), JSON.stringify(single, null, 2));
  assert.is(m.text, matrixText(single));
  assert.is(m.failed, false);
});

cli('bad --jobs / --shard: one line, exit 2', () => {
  const cases: [string, string[], RegExp][] = [
    [CLI, ['inject', W, '--jobs', '0'], /^pvmmu: --jobs: expected a number of worker threads 1\.\.1024, got '0'\n$/],
    [CLI, ['inject', W, '--jobs', 'many'], /^pvmmu: --jobs: /],
    [CLI, ['inject', W, '--shard', '3/2', '--json'], /^pvmmu: --shard: shard 3 of 2 does not exist/],
    [CLI, ['inject', W, '--shard', '1/2'], /^pvmmu: --shard: .*add --json\n$/],
    [CLI, ['matrix', '--jobs', '-2'], /^pvmmu: --jobs: |^pvmmu: /],
    [CLI, ['matrix', '--shard', 'x', '--json'], /^pvmmu: --shard: expected I\/N/],
    [FUZZ, ['--seeds', '2', '--jobs', '0'], /^fuzz: --jobs: /],
    [FUZZ, ['--shard', '1/2', '--json'], /^fuzz: --shard: only the count mode/],
    [FUZZ, ['--seeds', '2', '--seconds', '5'], /^fuzz: --seeds and --seconds: give one/],
    [FUZZ, ['--bogus'], /^fuzz: unknown option '--bogus' \(run with --help for usage\)$/m],
    [FUZZ, ['--kernel', 'x'], /^fuzz: option '--kernel <variant>' argument 'x' is invalid\. Allowed choices are patched, seed\. \(run with --help for usage\)$/m],
  ];
  for (const [script, args, re] of cases) {
    const r = run(script, args);
    assert.is(r.code, 2, args.join(' '));
    assert.match(r.err, re, args.join(' '));
    assert.is(r.err.trim().split('\n').length, 1, `${args.join(' ')}: one line: ${r.err}`);
    assert.is(r.out, '');
  }
});

cli.run();

const merge = suite('pvmmu merge: bad shard sets');

merge('a fuzz shard whose report entries have the wrong type: the file and the field, as an InputError', () => {
  const doc = (w: Record<string, unknown>): string =>
    JSON.stringify({
      shard: shardInfo('fuzz', { index: 1, count: 1 }, 1),
      seconds: null,
      start: 1,
      seeds: 1,
      kernel: 'patched',
      workload: { seeds: 1, statements: 3, accesses: 0, globalStale: 0, failures: [], expected: [], ...w },
      mmu: { seeds: 1, portable: 1, accesses: 0, failures: [] },
    });
  assert.is(mergeShards([{ file: 'ok.json', text: doc({}) }]).kind, 'fuzz');
  for (const [w, re] of [
    [{ statements: '3' }, /^f\.json: field workload\.statements: expected an integer, got "3"$/],
    [{ failures: [{ seed: 'x' }] }, /^f\.json: field workload\.failures\[0\]\.seed: expected an integer, got "x"$/],
    [{ expected: [{ seed: 1, why: 2 }] }, /^f\.json: field workload\.expected\[0\]\.why: expected a string, got 2$/],
  ] as const) {
    try {
      mergeShards([{ file: 'f.json', text: doc(w) }]);
      assert.unreachable(JSON.stringify(w));
    } catch (e) {
      assert.instance(e, InputError);
      assert.match((e as Error).message, re);
    }
  }
});

merge('missing, duplicated, foreign, incomplete shards and non-shards: the file and the field, exit 2, nothing written', () => {
  const dir = tmp();
  try {
    const base = ['inject', W, '--backend', 'xen', '--max-runs', '4', '--jobs', '1', '--json'];
    const s1 = run(CLI, [...base, '--shard', '1/2']).out;
    const s2 = run(CLI, [...base, '--shard', '2/2']).out;
    const other = run(CLI, [...base.filter((a) => a !== 'xen' && a !== '--backend'), '--shard', '2/2']).out;
    const f = (name: string, text: string): string => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const a = f('a.json', s1);
    const b = f('b.json', s2);
    const o = f('other.json', other);
    const cut = JSON.parse(s2);
    cut.results.pop();
    const c = f('cut.json', JSON.stringify(cut));
    const plain = f('plain.json', JSON.stringify({ runs: 1 }));
    // An entry of the wrong type would crash the printer or pass into the merged output.
    const typed = JSON.parse(s2);
    typed.results[1].failAt = 'x';
    const t = f('typed.json', JSON.stringify(typed));
    const leak = JSON.parse(s2);
    leak.results[0].leaked = { frames: 1 };
    const l = f('leak.json', JSON.stringify(leak));
    const broken = f('broken.json', '{"shard": ');
    const out = join(dir, 'out.json');
    const cases: [string[], RegExp][] = [
      [[a], /shard 2\/2 missing/],
      [[a, a], /a\.json: shard 1\/2 given twice/],
      [[a, o], /other\.json: field config differs from .*a\.json/],
      [[a, c], /cut\.json: field results: \d+ entries, but shard 2\/2 has \d+ items/],
      [[a, plain], /plain\.json: not a shard output/],
      [[a, t], /typed\.json: field results\[1\]\.failAt: expected an integer, got "x"/],
      [[a, l], /leak\.json: field results\[0\]\.leaked\.slabObjects: expected an integer, got nothing/],
      [[a, broken], /broken\.json:1:\d+: invalid JSON/],
    ];
    for (const [files, re] of cases) {
      const r = run(CLI, ['merge', out, ...files]);
      assert.is(r.code, 2, files.join(' '));
      assert.match(r.err, re);
      assert.is(r.err.trim().split('\n').length, 1, r.err);
      assert.not.ok(existsSync(out), 'nothing written');
    }
    assert.is(run(CLI, ['merge', out, b, a]).code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

merge.run();

const signals = suite('interrupted sweeps');

/** Start a command, send it `sig` after `ms`, and collect its exit. */
function interrupt(args: string[], sig: NodeJS.Signals, ms: number, script = CLI): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => c.kill(sig), ms);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ out, err, code });
    });
  });
}

signals('SIGTERM and SIGINT stop inject (one thread or workers): exit 130, stderr says how far it got, no half report', async () => {
  for (const [jobs, sig] of [['1', 'SIGTERM'], ['2', 'SIGINT']] as const) {
    const r = await interrupt(['inject', ROOT + 'tools/workloads/default.pvw', '--backend', 'xen', '--jobs', jobs], sig, 3000);
    assert.is(r.code, 130, `${jobs} ${sig}: ${r.err}`);
    assert.match(r.err, /^pvmmu: interrupted; \d+ of 1787 injected runs done, no report printed\n$/);
    assert.is(r.out, '');
  }
});

signals('SIGINT and SIGTERM stop the fuzzer (count and time modes): exit 130, stderr says how far it got, no report', async () => {
  for (const [args, sig, re] of [
    [['--seeds', '5000', '--jobs', '1', '--no-save'], 'SIGINT', /^pvmmu: interrupted; \d+ of 5000 seeds done, no report printed\n$/],
    [['--seconds', '600', '--jobs', '2', '--no-save', '--json'], 'SIGTERM', /^pvmmu: interrupted; \d+ workload seeds done, no report printed\n$/],
  ] as const) {
    const r = await interrupt([...args], sig, 3000, FUZZ);
    assert.is(r.code, 130, `${args.join(' ')} ${sig}: ${r.err}`);
    assert.match(r.err, re);
    assert.is(r.out, '');
  }
});

signals.run();
