#!/usr/bin/env node
/**
 * `npm run fuzz -- --seconds N [--start S] [--seed S] [--kernel seed] [--json] [--no-save]`:
 * runs the differential workload fuzzer (differential.ts) and the MMU
 * fuzzer (mmu-gen.ts) for about N seconds (two thirds workloads, one third
 * MMU cases), seeds S, S+1, ... and reports how many seeds, statements and
 * accesses were checked. A failing workload seed is shrunk and saved as
 * tests/regression/fuzz-found/seed-N.pvw; a failing MMU case is appended to
 * tests/vectors/fuzz-found.json (+ .expected.json). `--seed S` replays one
 * seed of each fuzzer and prints the generated workload's failures in full.
 * Exit 0 when nothing failed, 1 on a failure, 2 on bad usage.
 */
import { Command, CommanderError, Option } from 'commander';
import { generateWorkload } from './workload-gen.js';
import { generateMmuCase } from './mmu-gen.js';
import { emptyReport, fuzzFor, fuzzMmuSeed, fuzzWorkloadSeed, reportText, type FuzzOptions, type FuzzReport } from './campaign.js';

function intArg(flag: string, v: string, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) > max) throw new CommanderError(2, 'pvmmu.fuzz', `${flag}: expected an integer 0..${max}, got '${v}'`);
  return Number(v);
}

export function main(argv: string[]): number {
  const program = new Command();
  program
    .name('npm run fuzz --')
    .description('differential workload fuzzer (native vs Xen, TLB vs reference walk) and MMU fuzzer (vs ref-walker.mjs)')
    .addOption(new Option('--seconds <n>', 'time budget').default('10'))
    .addOption(new Option('--start <s>', 'first seed').default('1'))
    .option('--seed <s>', 'replay one seed of each fuzzer')
    .addOption(new Option('--kernel <variant>', 'guest kernel variant of the generated workloads (seed: the patch as posted, bugs included)').choices(['patched', 'seed']).default('patched'))
    .option('--json', 'print one JSON document')
    .option('--print-workload', "with --seed: print the seed's generated workload (.pvw) and its MMU case (JSON), run nothing")
    .option('--no-save', 'do not write shrunk workloads or vectors')
    .exitOverride();
  try {
    program.parse(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help') return 0;
      if (e.code === 'pvmmu.fuzz') process.stderr.write(`fuzz: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const o = program.opts<{ seconds: string; start: string; seed?: string; json?: boolean; save: boolean; printWorkload?: boolean; kernel: 'patched' | 'seed' }>();
  let rep: FuzzReport;
  let seconds: number | null = null;
  try {
    const opts: FuzzOptions = { saveRoot: o.save ? process.cwd() : null, gen: { config: { kernel: o.kernel } } };
    if (o.printWorkload) {
      if (o.seed === undefined) throw new CommanderError(2, 'pvmmu.fuzz', '--print-workload needs --seed S');
      const s = intArg('--seed', o.seed, 2 ** 31);
      process.stdout.write(generateWorkload(s, { config: { kernel: o.kernel } }).text + '\n# mmu case:\n# ' + JSON.stringify(generateMmuCase(s)) + '\n');
      return 0;
    }
    if (o.seed !== undefined) {
      const s = intArg('--seed', o.seed, 2 ** 31);
      rep = emptyReport();
      fuzzWorkloadSeed(rep, s, opts);
      fuzzMmuSeed(rep, s, opts);
    } else {
      seconds = intArg('--seconds', o.seconds, 86400);
      const start = intArg('--start', o.start, 2 ** 31);
      const tty = !o.json && process.stderr.isTTY;
      rep = fuzzFor(seconds, start, opts, (r) => {
        if (tty) process.stderr.write(`\r${r.workload.seeds} workload seeds, ${r.mmu.seeds} mmu seeds, ${r.workload.failures.length + r.mmu.failures.length} failing `);
      });
      if (tty) process.stderr.write('\n');
    }
  } catch (e) {
    if (e instanceof CommanderError) {
      process.stderr.write(`fuzz: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (o.json) process.stdout.write(JSON.stringify({ seconds, ...rep }, null, 2) + '\n');
  else process.stdout.write(reportText(rep, seconds) + '\n');
  return rep.workload.failures.length + rep.mmu.failures.length > 0 ? 1 : 0;
}

process.exitCode = main(process.argv);
