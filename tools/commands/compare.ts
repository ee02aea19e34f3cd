/**
 * `pvmmu compare FILE.pvw…`: run each workload on the native and the Xen
 * backend with the same configuration; what the guest observes (every read,
 * kread, segv, expect, the failure if any) must be identical and both
 * backends' invariants clean; print cycles per measure side by side with the
 * Xen/native ratio. Exit 1 on any divergence.
 */
import type { Command } from 'commander';
import { Progress } from '../table.js';
import { openTrace } from '../trace/writer.js';
import { compareJson, compareRuns, compareText, type Comparison } from '../workload/compare.js';
import { runWorkload } from '../workload/interpreter.js';
import { addCommonFlags, loadWorkloadFlags, seedOf, type CommonFlags } from './common.js';

export function registerCompare(program: Command): void {
  const cmd = program
    .command('compare')
    .argument('<files...>', 'workload scripts (.pvw)')
    .description('run workloads on native and Xen; check the guest sees the same; show costs side by side');
  addCommonFlags(cmd, { backend: false, trace: false });
  cmd.option('--trace <prefix>', 'write PREFIX.native.json and PREFIX.xen.json traces (one workload only)');
  cmd.addHelpText(
    'after',
    `
Examples:
  pvmmu compare tools/workloads/fork-exit.pvw
  pvmmu compare tools/workloads/*.pvw --no-pae
  pvmmu compare tools/workloads/lmbench.pvw --split 1G --json`,
  );
  cmd.action((files: string[], flags: CommonFlags) => {
    const seed = seedOf(flags);
    // Every file is read and checked before anything runs.
    const loaded = files.map((f) => ({ file: f, ...loadWorkloadFlags(f, flags) }));
    const progress = new Progress(flags.json === true);
    const out: Comparison[] = [];
    loaded.forEach((w, i) => {
      progress.update(`compare ${w.file}`, i, loaded.length);
      const tr = (b: string) => (flags.trace && loaded.length === 1 ? openTrace(`${flags.trace}.${b}.json`) : undefined);
      const native = runWorkload(w.script, { ...w.cfg, backend: 'native' }, { seed, trace: tr('native') });
      const xen = runWorkload(w.script, { ...w.cfg, backend: 'xen' }, { seed, trace: tr('xen') });
      const divergences = compareRuns(native, xen);
      out.push({ workload: w.file, equivalent: divergences.length === 0, divergences, native, xen });
    });
    progress.done();
    if (flags.json) {
      process.stdout.write(JSON.stringify(compareJson(out), null, 2) + '\n');
    } else {
      process.stdout.write(out.map(compareText).join('\n\n') + '\n');
    }
    if (out.some((c) => !c.equivalent)) process.exitCode = 1;
  });
}
