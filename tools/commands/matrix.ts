/**
 * `pvmmu matrix`: the regression matrix (tools/regression/matrix.ts) of the
 * example workloads over every backend and configuration, checked against
 * the golden cost baselines in tests/golden (cli.md). Exit 1 when a figure
 * differs from tests/golden, 2 on bad input.
 */
import type { Command } from 'commander';
import { InputError } from '../input-error.js';
import { MATRIX_TASK, assembleMatrix, matrixFailed, matrixItems, matrixText, type MatrixItemResult } from '../regression/matrix-sweep.js';
import { listWorkloads } from '../regression/matrix.js';
import { parseJobs, runPool } from '../sweep/pool.js';
import { parseShard, shardInfo, shardRange } from '../sweep/shard.js';
import { Progress } from '../table.js';
import { interruptibleSweep } from './common.js';

interface MatrixFlags {
  jobs?: string;
  shard?: string;
  json?: boolean;
}

export function registerMatrix(program: Command): void {
  const cmd = program
    .command('matrix')
    .description('run the regression matrix (tools/workloads on every backend and configuration) and check it against tests/golden')
    .option('--jobs <n>', 'worker threads (default: the number of cores); the output does not depend on N')
    .option('--shard <i/n>', 'run only shard I of N of the configurations (1-based; needs --json; combine with pvmmu merge)')
    .option('--json', 'print one JSON document on stdout');
  cmd.addHelpText(
    'after',
    `
One row per workload and configuration (paging mode and split): each
backend's outcome, how many divergences compare found between the backends,
and whether the figures match tests/golden (npm run golden:update rewrites
them; review the diff first).

Exit status: 0 every figure matches tests/golden, 1 a figure differs, 2 bad input.

Examples:
  pvmmu matrix
  pvmmu matrix --jobs 2 --json
  pvmmu matrix --shard 1/4 --json > matrix-1.json`,
  );
  cmd.action(async (flags: MatrixFlags) => {
    const jobs = parseJobs('--jobs', flags.jobs);
    const shard = parseShard('--shard', flags.shard);
    if (shard !== null && flags.json !== true) throw new InputError('--shard: a shard prints a JSON document for pvmmu merge; add --json');
    const workloads = listWorkloads();
    const items = matrixItems(workloads);
    const { from, to } = shardRange(shard, items.length);
    const progress = new Progress(flags.json === true);
    const intr = interruptibleSweep('matrix rows');
    const results = await runPool<{ workloads: string[] }, typeof items, MatrixItemResult>({
      task: MATRIX_TASK,
      init: { workloads },
      from,
      to,
      jobs,
      local: items,
      more: intr.more,
      onDone: (d) => progress.update('matrix', d, to - from),
    });
    progress.done();
    if (intr.finish(results.length, to - from)) return;
    const rep = assembleMatrix(results.map((r) => r.row));
    if (shard !== null) process.stdout.write(JSON.stringify({ shard: shardInfo('matrix', shard, items.length), ...rep }, null, 2) + '\n');
    else if (flags.json) process.stdout.write(JSON.stringify(rep, null, 2) + '\n');
    else process.stdout.write(matrixText(rep) + '\n');
    if (matrixFailed(rep)) process.exitCode = 1;
  });
}
