/**
 * `pvmmu vectors FILE.json [--out RESULTS.json] [--expect EXPECTED.json]`:
 * run MMU conformance vectors (docs/vectors.md). The file is
 * validated as a whole before any case runs; results are written only when
 * every case ran.
 */
import type { Command } from 'commander';
import { getPreset, DEFAULT_PRESET } from '../../emulator/cost-model.js';
import { InputError, parseJsonFile } from '../input-error.js';
import { readInputFile } from '../read-input.js';
import { MAX_VECTOR_FILE_BYTES, parseResults, parseVectors } from '../vectors/format.js';
import { refuseOutputOverInput, writeOutputFile } from '../output-file.js';
import { plural } from '../table.js';
import { compareResults, runVectors } from '../vectors/run-vectors.js';

export function registerVectors(program: Command): void {
  program
    .command('vectors')
    .argument('<file>', 'vector file (format x86-mmu-vectors/1)')
    .description('run MMU conformance vectors and write x86-mmu-results/1')
    .option('-o, --out <file>', 'write results here instead of stdout')
    .option('--expect <file>', 'compare with expected results; exit 1 on any difference')
    .option('--cpu <preset>', 'CPU preset for the cycles field', DEFAULT_PRESET)
    .addHelpText(
      'after',
      `
Every case starts on a fresh machine (memory zero, TLB empty, CR3 = 0).
A malformed file is refused as a whole (exit 2) naming the case and field.

Examples:
  pvmmu vectors tests/vectors/sdm-suite.json
  pvmmu vectors tests/vectors/sdm-suite.json -o /tmp/results.json
  pvmmu vectors tests/vectors/sdm-suite.json --expect tests/vectors/sdm-suite.expected.json`,
    )
    .action((file: string, opts: { out?: string; expect?: string; cpu: string }) => {
      try {
        getPreset(opts.cpu);
      } catch (e) {
        throw new InputError(`--cpu: ${(e as Error).message}`);
      }
      const cases = parseVectors(file, parseJsonFile(file, readInputFile(file, MAX_VECTOR_FILE_BYTES, 'a vector file')));
      const expected = opts.expect
        ? parseResults(opts.expect, parseJsonFile(opts.expect, readInputFile(opts.expect, MAX_VECTOR_FILE_BYTES, 'an expected-results file')))
        : undefined;
      if (opts.out) refuseOutputOverInput('--out', opts.out, [file, ...(opts.expect ? [opts.expect] : [])]);
      const results = runVectors(file, cases, opts.cpu);
      const text = JSON.stringify(results, null, 2) + '\n';
      if (opts.out) writeOutputFile('--out', opts.out, text);
      else if (!opts.expect) process.stdout.write(text);
      if (expected !== undefined) {
        const diffs = compareResults(results, expected);
        for (const d of diffs.slice(0, 50)) process.stderr.write(d + '\n');
        if (diffs.length > 50) process.stderr.write(`… and ${diffs.length - 50} more\n`);
        process.stderr.write(`${plural(cases.length, 'case')}, ${plural(diffs.length, 'difference')}\n`);
        if (diffs.length) process.exitCode = 1;
      }
    });
}
