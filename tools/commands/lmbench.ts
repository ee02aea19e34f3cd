/**
 * `pvmmu lmbench [--backend native|xen|both] [--pae|--no-pae] [--cpu PRESET]
 * [--json]`: the lmbench latency table (tools/lmbench/lmbench.ts), native
 * and Xen side by side. Parses flags and prints; exit 2 on bad flags.
 */
import { Option, type Command } from 'commander';
import { PRESET_NAMES } from '../../emulator/cost-model.js';
import { lmbenchJson, lmbenchText, runLmbench } from '../lmbench/lmbench.js';
import type { Backend } from '../workload/config.js';

interface LmbenchFlags {
  backend?: 'native' | 'xen' | 'both';
  pae?: boolean;
  cpu?: string;
  json?: boolean;
}

export function registerLmbench(program: Command): void {
  const cmd = program
    .command('lmbench')
    .description('the lmbench latency table (null syscall, fork, exec, ctxsw, mmap, faults) in µs, native and Xen side by side')
    .addOption(new Option('--backend <name>', 'which backends to run').choices(['native', 'xen', 'both']).default('both'))
    .option('--pae', 'PAE paging (the default)')
    .option('--no-pae', '2-level paging')
    .addOption(new Option('--cpu <preset>', 'CPU preset of the cost model (its clock converts cycles to µs)').choices(PRESET_NAMES))
    .option('--json', 'print one JSON document on stdout');
  cmd.addHelpText(
    'after',
    `
Each row is a workload in tools/workloads/lmbench/ (read it, change it, rerun).

Examples:
  pvmmu lmbench
  pvmmu lmbench --no-pae --cpu p6
  pvmmu lmbench --backend native --json`,
  );
  cmd.action((flags: LmbenchFlags) => {
    const backends: Backend[] = flags.backend === 'native' ? ['native'] : flags.backend === 'xen' ? ['xen'] : ['native', 'xen'];
    const r = runLmbench({ backends, pae: flags.pae, cpu: flags.cpu });
    if (flags.json) process.stdout.write(JSON.stringify(lmbenchJson(r), null, 2) + '\n');
    else process.stdout.write(lmbenchText(r) + '\n');
  });
}
