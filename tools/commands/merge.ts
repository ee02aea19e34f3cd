/**
 * `pvmmu merge OUT SHARD.json…`: shard outputs of inject, fuzz or matrix
 * (`--shard I/N --json`) into the single run's output (tools/sweep/merge.ts,
 * cli.md). Exit status as the single run's (0, or 1 on a leak, crash,
 * failure or golden difference); 2 on bad input (a shard missing, given
 * twice, of another run, incomplete).
 */
import type { Command } from 'commander';
import { readInputFile } from '../read-input.js';
import { refuseOutputOverInput, writeOutputFile } from '../output-file.js';
import { mergeShards } from '../sweep/merge.js';

const MAX_SHARD_BYTES = 512 * 1024 * 1024;

export function registerMerge(program: Command): void {
  const cmd = program
    .command('merge')
    .argument('<out>', "output file ('-': stdout)")
    .argument('<shards...>', 'shard outputs (--shard I/N --json of inject, fuzz --seeds or matrix), in any order')
    .description('merge shard outputs (--shard I/N --json) into the output of the single run')
    .option('--text', "write the single run's text output instead of its JSON");
  cmd.addHelpText(
    'after',
    `
OUT receives exactly what the single (unsharded) run prints with --json, or
without it under --text. Every shard 1..N must be given once, all of the
same run (same workload, configuration, mode, seeds); otherwise nothing is
written and the error names the file and the field.

Exit status: as the single run (0, or 1 on a leak, crash, fuzz failure or
golden difference), 2 bad input.

Examples:
  pvmmu merge inject.json shard-1.json shard-2.json shard-3.json shard-4.json
  pvmmu merge --text - shard-*.json`,
  );
  cmd.action((out: string, shards: string[], flags: { text?: boolean }) => {
    if (out !== '-') refuseOutputOverInput('OUT', out, shards);
    const m = mergeShards(shards.map((file) => ({ file, text: readInputFile(file, MAX_SHARD_BYTES, 'a shard output') })));
    const text = flags.text ? m.text + '\n' : JSON.stringify(m.json, null, 2) + '\n';
    if (out === '-') process.stdout.write(text);
    else writeOutputFile('OUT', out, text);
    if (m.failed) process.exitCode = 1;
  });
}
