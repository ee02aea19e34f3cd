/**
 * `npm run golden:update`: rerun every example workload of the regression
 * matrix (tools/regression/matrix.ts) and rewrite the golden cost baselines
 * in tests/golden/ from the current figures, printing what changed. This is
 * the one way to accept a cost change: review `git diff tests/golden` and
 * commit it with the change that caused it.
 *
 *   node dist/tools/golden-update.js           rewrite the files, print the changes
 *   node dist/tools/golden-update.js --check   print the changes only; exit 1 if any
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { diffGolden, formatChanges, goldenOf, goldenPath, readGolden, serializeGolden, staleGoldenFiles, type GoldenChange } from './regression/golden.js';
import { GOLDEN_DIR, ROOT, listWorkloads, runMatrix } from './regression/matrix.js';

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const unknown = argv.filter((a) => a !== '--check');
  if (argv.includes('--help') || argv.includes('-h') || unknown.length > 0) {
    process.stdout.write(
      'usage: golden-update [--check]\n' +
        '  Reruns tools/workloads/*.pvw on both backends in every configuration of the regression\n' +
        '  suite and rewrites tests/golden/*.json from the figures (--check: only report differences).\n',
    );
    return unknown.filter((a) => a !== '--help' && a !== '-h').length > 0 ? 2 : 0;
  }
  const workloads = listWorkloads();
  const all: GoldenChange[] = [];
  const written: string[] = [];
  const created: string[] = [];
  mkdirSync(GOLDEN_DIR, { recursive: true });
  workloads.forEach((w, i) => {
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[Kgolden: ${w} (${i + 1}/${workloads.length})`);
    const now = goldenOf(w, runMatrix(w));
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
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
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

process.exitCode = main(process.argv.slice(2));
