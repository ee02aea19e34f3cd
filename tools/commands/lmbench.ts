/**
 * `pvmmu lmbench [--backend native|xen|vmi|lguest|both|all] [--pae|--no-pae]
 * [--cpu PRESET] [--json]`: the lmbench latency table
 * (tools/lmbench/lmbench.ts), one column per backend. Parses flags and
 * prints; exit 2 on bad flags.
 */
import { Option, type Command } from 'commander';
import { PRESET_NAMES } from '../../emulator/cost-model.js';
import { lmbenchJson, lmbenchText, runLmbench } from '../lmbench/lmbench.js';
import type { Backend } from '../workload/config.js';
import { InputError } from '../input-error.js';
import { BACKEND_KINDS, backendKind } from '../../hypervisor/backend.js';

interface LmbenchFlags {
  backend?: Backend | 'both' | 'all';
  pae?: boolean;
  cpu?: string;
  json?: boolean;
}

export function registerLmbench(program: Command): void {
  const cmd = program
    .command('lmbench')
    .description('the lmbench latency table (null syscall, fork, exec, ctxsw, mmap, faults) in µs, native and Xen side by side')
    .addOption(
      new Option('--backend <name>', 'which backends to run: one, both (native and Xen) or all (every backend the paging mode allows)')
        .choices([...BACKEND_KINDS, 'both', 'all'])
        .default('both'),
    )
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
  pvmmu lmbench --backend native --json
  pvmmu lmbench --backend all --no-pae`,
  );
  cmd.action((flags: LmbenchFlags) => {
    const b = flags.backend ?? 'both';
    const backends: Backend[] =
      b === 'both' ? ['native', 'xen'] : b === 'all' ? BACKEND_KINDS.filter((k) => backendKind(k).unsupported({ pae: flags.pae ?? true, memBytes: 0 }) === null) : [b];
    for (const k of backends) {
      // The lmbench workloads need 64 MiB; a refusal names the flag, not a workload file.
      const why = backendKind(k).unsupported({ pae: flags.pae ?? true, memBytes: 64 * 1024 * 1024 });
      if (why !== null) throw new InputError(`--backend ${b}: ${why}`);
    }
    const r = runLmbench({ backends, pae: flags.pae, cpu: flags.cpu });
    if (flags.json) process.stdout.write(JSON.stringify(lmbenchJson(r), null, 2) + '\n');
    else process.stdout.write(lmbenchText(r) + '\n');
  });
}
