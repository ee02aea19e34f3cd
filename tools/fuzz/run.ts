#!/usr/bin/env node
/**
 * `npm run fuzz -- --seconds N [--start S] [--seed S] [--kernel seed] [--json] [--no-save]`
 * `npm run fuzz -- --seeds N [--start S] [--jobs J] [--shard I/N --json]`:
 * runs the differential workload fuzzer (differential.ts) and the MMU
 * fuzzer (mmu-gen.ts) for about N seconds (two thirds workloads, one third
 * MMU cases), seeds S, S+1, ... and reports how many seeds, statements and
 * accesses were checked. A failing workload seed is shrunk and saved as
 * tests/regression/fuzz-found/seed-N.pvw; a failing MMU case is appended to
 * tests/vectors/fuzz-found.json (+ .expected.json). `--seed S` replays one
 * seed of each fuzzer and prints the generated workload's failures in full.
 * `--seeds N` checks exactly N seeds of each fuzzer (count mode: the output
 * is the same for every --jobs, and can be sharded); --jobs J runs the seeds
 * in J worker threads (sweep.ts says what a time budget does with them).
 * Exit 0 when nothing failed, 1 on a failure, 2 on bad usage; 130 when
 * stopped by SIGINT/SIGTERM/SIGHUP (the seeds in progress finish, failing
 * seeds found so far are saved, no report is printed).
 */
import { Command, CommanderError, Option } from 'commander';
import { generateWorkload } from './workload-gen.js';
import { generateMmuCase } from './mmu-gen.js';
import { emptyReport, fuzzMmuSeed, fuzzWorkloadSeed, reportText, type FuzzOptions, type FuzzReport } from './campaign.js';
import { fuzzForJobs, fuzzSeeds } from './sweep.js';
import { InputError } from '../input-error.js';
import { parseJobs } from '../sweep/pool.js';
import { parseShard, shardInfo, shardRange } from '../sweep/shard.js';
import { Progress } from '../table.js';
import { interruptibleSweep } from '../commands/common.js';

function intArg(flag: string, v: string, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) > max) throw new CommanderError(2, 'pvmmu.fuzz', `${flag}: expected an integer 0..${max}, got '${v}'`);
  return Number(v);
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program
    .name('npm run fuzz --')
    .description('differential workload fuzzer (native vs Xen, TLB vs reference walk) and MMU fuzzer (vs ref-walker.mjs)')
    .addOption(new Option('--seconds <n>', 'time budget').default('10'))
    .addOption(new Option('--start <s>', 'first seed').default('1'))
    .option('--seeds <n>', 'count mode: check N seeds of each fuzzer (start, start+1, ...) instead of a time budget; the output does not depend on --jobs')
    .option('--jobs <n>', 'worker threads (default: the number of cores)')
    .option('--shard <i/n>', 'with --seeds and --json: run only shard I of N of the seeds (merge the shards with pvmmu merge)')
    .option('--seed <s>', 'replay one seed of each fuzzer')
    .addOption(new Option('--kernel <variant>', 'guest kernel variant of the generated workloads (seed: the patch as posted, bugs included)').choices(['patched', 'seed']).default('patched'))
    .option('--json', 'print one JSON document')
    .option('--print-workload', "with --seed: print the seed's generated workload (.pvw) and its MMU case (JSON), run nothing")
    .option('--no-save', 'do not write shrunk workloads or vectors')
    // One error style, one line: commander's usage errors read like ours ("fuzz: ...").
    .configureOutput({ outputError: (str, write) => write(`fuzz: ${str.replace(/^error: /, '').trimEnd()} (run with --help for usage)\n`) })
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
  const o = program.opts<{ seconds: string; start: string; seed?: string; seeds?: string; jobs?: string; shard?: string; json?: boolean; save: boolean; printWorkload?: boolean; kernel: 'patched' | 'seed' }>();
  let rep: FuzzReport;
  let seconds: number | null = null;
  let count: { start: number; seeds: number } | null = null;
  let shardDoc: Record<string, unknown> | null = null;
  try {
    const jobs = parseJobs('--jobs', o.jobs);
    const shard = parseShard('--shard', o.shard);
    if (shard !== null && o.seeds === undefined) throw new CommanderError(2, 'pvmmu.fuzz', '--shard: only the count mode can be sharded; add --seeds N');
    if (shard !== null && !o.json) throw new CommanderError(2, 'pvmmu.fuzz', '--shard: a shard prints a JSON document for pvmmu merge; add --json');
    if (o.seeds !== undefined && o.seed !== undefined) throw new CommanderError(2, 'pvmmu.fuzz', '--seeds and --seed: give one (--seed replays one seed)');
    if (o.seeds !== undefined && program.getOptionValueSource('seconds') === 'cli') {
      throw new CommanderError(2, 'pvmmu.fuzz', '--seeds and --seconds: give one (a count of seeds or a time budget)');
    }
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
    } else if (o.seeds !== undefined) {
      const n = intArg('--seeds', o.seeds, 10 ** 7);
      const start = intArg('--start', o.start, 2 ** 31);
      count = { start, seeds: n };
      const { from, to } = shardRange(shard, n);
      const progress = new Progress(o.json === true);
      const intr = interruptibleSweep('seeds');
      rep = await fuzzSeeds(start, from, to, { jobs, saveRoot: opts.saveRoot ?? null, gen: opts.gen, more: intr.more, onDone: (d) => progress.update('fuzz', d, to - from) });
      progress.done();
      if (intr.finish(rep.workload.seeds, to - from)) return 130;
      if (shard !== null) shardDoc = { shard: shardInfo('fuzz', shard, n) };
    } else {
      seconds = intArg('--seconds', o.seconds, 86400);
      const start = intArg('--start', o.start, 2 ** 31);
      const progress = new Progress(o.json === true);
      const t0 = Date.now();
      const budget = seconds * 1000;
      const intr = interruptibleSweep('workload seeds');
      rep = await fuzzForJobs(seconds, start, { jobs, saveRoot: opts.saveRoot ?? null, gen: opts.gen, more: intr.more, onDone: () => progress.update(`fuzz ${seconds} s`, Math.min(Date.now() - t0, budget), budget) });
      progress.done();
      if (intr.finish(rep.workload.seeds, null)) return 130;
    }
  } catch (e) {
    if (e instanceof CommanderError || e instanceof InputError) {
      process.stderr.write(`fuzz: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (o.json) process.stdout.write(JSON.stringify({ ...shardDoc, seconds, ...count, kernel: o.kernel, ...rep }, null, 2) + '\n');
  else process.stdout.write(reportText(rep, seconds, count) + '\n');
  return rep.workload.failures.length + rep.mmu.failures.length > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv);
