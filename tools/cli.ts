#!/usr/bin/env node
/**
 * The `pvmmu` command line (docs/cli.md). Exit codes: 0 success, 1 the run
 * itself failed, 2 bad input or usage, 130 interrupted; bad input never shows
 * a stack trace. Every error is one line starting `pvmmu: `.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { InputError } from './input-error.js';
import { registerVectors } from './commands/vectors.js';
import { registerDemo } from './commands/demo.js';
import { registerBoot } from './commands/boot.js';
import { registerCompare } from './commands/compare.js';
import { registerReport } from './commands/report.js';
import { registerInject } from './commands/inject.js';
import { registerLmbench } from './commands/lmbench.js';
import { registerMatrix } from './commands/matrix.js';
import { registerMerge } from './commands/merge.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('pvmmu')
    .description('cycle-approximate x86 MMU emulator with a paravirt hook layer (native vs Xen)')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    // One error style: commander's usage errors read like ours ("pvmmu: ...").
    .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'pvmmu: ')) })
    .exitOverride();
  registerBoot(program);
  registerCompare(program);
  registerVectors(program);
  registerInject(program);
  registerMatrix(program);
  registerMerge(program);
  registerLmbench(program);
  registerReport(program);
  registerDemo(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length <= 2) {
    // No command: usage on stderr, and a usage error.
    process.stderr.write(program.helpInformation());
    process.stderr.write('pvmmu: no command given (see the commands above)\n');
    return 2;
  }
  try {
    const args = argv.slice(2, argv.includes('--') ? argv.indexOf('--') : undefined);
    if (args.includes('--pae') && args.includes('--no-pae')) throw new InputError('--pae and --no-pae contradict each other; give one of them');
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end with exit code 0; usage errors are bad input.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    if (e instanceof InputError) {
      process.stderr.write(`pvmmu: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

// A reader that goes away (`pvmmu … | head`) is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`pvmmu: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 70;
  },
);
