/**
 * `pvmmu boot FILE.pvw`: boot the guest kernel on one backend, run the
 * workload, print the summary (cli.md): cycles, TLB, walks by depth, page
 * faults by kind, hypercalls by kind, pgds alive, frames used, measures.
 * Exit 1 if the run failed (expect, BUG, refusal, unexpected OOM, invariant).
 */
import type { Command } from 'commander';
import { openTrace } from '../trace/writer.js';
import { runWorkload } from '../workload/interpreter.js';
import { bootJson, bootText } from '../workload/summary.js';
import { addCommonFlags, loadWorkloadFlags, seedOf, type CommonFlags } from './common.js';

export function registerBoot(program: Command): void {
  const cmd = program
    .command('boot')
    .argument('<file>', 'workload script (.pvw)')
    .description('boot the guest kernel on one backend and run a workload')
    .option('--check-each', 'run the guest invariant checker after every statement');
  addCommonFlags(cmd);
  cmd.addHelpText(
    'after',
    `
Flags override the script's machine line (defaults: pae=on split=3G mem=256M
cpu=core2 backend=native kernel=patched).

Examples:
  pvmmu boot tools/workloads/fork-exit.pvw
  pvmmu boot tools/workloads/fork-exit.pvw --backend xen --no-pae --split 2G
  pvmmu boot tools/workloads/prepatch-on-xen.pvw --json
  pvmmu boot tools/workloads/vmalloc-churn.pvw --trace /tmp/t.json && pvmmu report /tmp/t.json -o /tmp/t.html`,
  );
  cmd.action((file: string, flags: CommonFlags & { checkEach?: boolean }) => {
    const seed = seedOf(flags);
    const { script, cfg } = loadWorkloadFlags(file, flags);
    const trace = flags.trace ? openTrace(flags.trace) : undefined;
    const r = runWorkload(script, cfg, { trace, seed, checkEachStatement: flags.checkEach === true });
    if (flags.json) process.stdout.write(JSON.stringify(bootJson(r), null, 2) + '\n');
    else process.stdout.write(bootText(r) + '\n');
    if (r.failure) process.stderr.write(`pvmmu: ${r.failure.message}\n`);
    if (r.invariants.length) process.stderr.write(`pvmmu: invariant violations:\n  ${r.invariants.join('\n  ')}\n`);
    if (r.failure || r.invariants.length) process.exitCode = 1;
  });
}
