/**
 * `npm run golden:update`: rerun every example workload of the regression
 * matrix (tools/regression/matrix.ts) and rewrite the golden cost baselines
 * in tests/golden/ from the current figures, printing what changed. This is
 * the one way to accept a cost change: review `git diff tests/golden` and
 * commit it with the change that caused it.
 *
 *   node dist/tools/golden-update.js           rewrite the files, print the changes
 *   node dist/tools/golden-update.js --check   print the changes only; exit 1 if any
 *   --jobs N                                   worker threads (default: the number of cores)
 *
 * The matrix runs as `pvmmu matrix` runs it (regression/matrix-sweep.ts, the
 * sweep pool): the files are the same for every --jobs.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { diffGolden, formatChanges, goldenOfConfigs, goldenPath, readGolden, serializeGolden, staleGoldenFiles, type GoldenChange } from './regression/golden.js';
import { GOLDEN_DIR, ROOT, listWorkloads } from './regression/matrix.js';
import { MATRIX_TASK, matrixItems, type MatrixItem, type MatrixItemResult } from './regression/matrix-sweep.js';
import { InputError } from './input-error.js';
import { parseJobs, runPool } from './sweep/pool.js';
import { Progress } from './table.js';
import type { GoldenFile } from './regression/golden.js';

async function main(argv: string[]): Promise<number> {
  const check = argv.includes('--check');
  const ji = argv.indexOf('--jobs');
  const jobsArg = ji >= 0 ? argv[ji + 1] : undefined;
  const unknown = argv.filter((a, i) => a !== '--check' && !(ji >= 0 && (i === ji || i === ji + 1)));
  if (argv.includes('--help') || argv.includes('-h') || unknown.length > 0) {
    process.stdout.write(
      'usage: golden-update [--check] [--jobs N]\n' +
        '  Reruns tools/workloads/*.pvw on both backends in every configuration of the regression\n' +
        '  suite and rewrites tests/golden/*.json from the figures (--check: only report differences).\n',
    );
    return unknown.filter((a) => a !== '--help' && a !== '-h').length > 0 ? 2 : 0;
  }
  let jobs: number;
  try {
    if (ji >= 0 && jobsArg === undefined) throw new InputError('--jobs: expected a number of worker threads 1..1024, got nothing');
    jobs = parseJobs('--jobs', jobsArg);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    process.stderr.write(`golden-update: ${e.message}\n`);
    return 2;
  }
  const workloads = listWorkloads();
  const items: MatrixItem[] = matrixItems(workloads);
  const progress = new Progress(false);
  const results = await runPool<{ workloads: string[] }, MatrixItem[], MatrixItemResult>({
    task: MATRIX_TASK,
    init: { workloads },
    from: 0,
    to: items.length,
    jobs,
    local: items,
    onDone: (d) => progress.update('golden', d, items.length),
  });
  progress.done();
  const byWorkload = new Map<string, GoldenFile['configs']>();
  results.forEach((r, i) => {
    const w = items[i]!.workload;
    const c = byWorkload.get(w) ?? {};
    c[r.row.config] = r.figures;
    byWorkload.set(w, c);
  });
  const all: GoldenChange[] = [];
  const written: string[] = [];
  const created: string[] = [];
  mkdirSync(GOLDEN_DIR, { recursive: true });
  workloads.forEach((w) => {
    const now = goldenOfConfigs(w, byWorkload.get(w) ?? {});
    const old = readGolden(w);
    const changes = diffGolden(old, now);
    all.push(...changes);
    const rel = relative(ROOT, goldenPath(w));
    if (old === null) created.push(rel);
    else if (changes.length > 0 || serializeGolden(old) !== serializeGolden(now)) written.push(rel);
    if (!check && (old === null || changes.length > 0 || serializeGolden(old) !== serializeGolden(now))) {
      writeFileSync(goldenPath(w), serializeGolden(now));
    }
  });
  const stale = staleGoldenFiles(workloads).map((p) => relative(ROOT, p));
  if (!check) for (const p of stale) rmSync(`${ROOT}/${p}`);

  const verb = check ? 'would ' : '';
  for (const c of created) process.stdout.write(`${verb}create ${c} (new workload)\n`);
  for (const p of stale) process.stdout.write(`${verb}remove ${p} (its workload is gone)\n`);
  const changed = all.filter((c) => !created.includes(relative(ROOT, goldenPath(c.workload))));
  if (changed.length > 0) {
    process.stdout.write(`${changed.length} figure(s) changed in ${written.length} file(s):\n${formatChanges(changed, 80)}\n`);
  }
  if (created.length === 0 && stale.length === 0 && changed.length === 0 && written.length === 0) {
    process.stdout.write(`golden files up to date (${workloads.length} workloads)\n`);
    return 0;
  }
  if (check) return 1;
  process.stdout.write(`rewrote tests/golden/ (${workloads.length} workloads); review with: git diff --stat tests/golden && git diff tests/golden\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
