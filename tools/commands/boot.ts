/**
 * `pvmmu boot FILE.pvw`: boot the guest kernel on one backend, run the
 * workload, print the summary (cli.md): cycles, TLB, walks by depth, page
 * faults by kind, hypercalls by kind, pgds alive, frames used, measures.
 * Exit 1 if the run failed (expect, BUG, refusal, unexpected OOM, invariant).
 */
import type { Command } from 'commander';
import { Progress } from '../table.js';
import { openTrace } from '../trace/writer.js';
import { countWork } from '../workload/check.js';
import { runWorkloadAsync } from '../workload/interpreter.js';
import { bootJson, bootText, traceMetadata } from '../workload/summary.js';
import { addCommonFlags, interruptible, layoutOf, loadWorkloadFlags, tracePaths, traceNote, type CommonFlags } from './common.js';

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
  cmd.action(async (file: string, flags: CommonFlags & { checkEach?: boolean }) => {
    const layout = layoutOf(flags);
    const { script, cfg } = loadWorkloadFlags(file, flags);
    const [path] = flags.trace !== undefined ? tracePaths('--trace', flags.trace, [cfg.backend], [file]) : [];
    const trace = path !== undefined ? openTrace(path, traceMetadata(file, cfg, layout)) : undefined;
    const intr = interruptible();
    const progress = new Progress(flags.json === true);
    const total = countWork(script.body);
    let r;
    try {
      r = await runWorkloadAsync(script, cfg, { trace, ...layout, checkEachStatement: flags.checkEach === true, onProgress: (w, line) => progress.update(`boot ${file}: line ${line}, work`, w, total) }, intr.stopped);
    } catch (e) {
      if (trace) process.stderr.write(`pvmmu: ${traceNote(trace, false) ?? ''}\n`);
      throw e;
    } finally {
      intr.dispose();
      progress.done();
    }
    if (flags.json) process.stdout.write(JSON.stringify(bootJson(r), null, 2) + '\n');
    else process.stdout.write(bootText(r) + '\n');
    if (r.failure) process.stderr.write(`pvmmu: ${r.failure.message}\n`);
    if (r.invariants.length) process.stderr.write(`pvmmu: invariant violations:\n  ${r.invariants.join('\n  ')}\n`);
    if (r.failure || r.invariants.length) process.exitCode = 1;
    const interrupted = r.failure?.kind === 'interrupted';
    const note = trace ? traceNote(trace, interrupted) : null;
    if (note) process.stderr.write(`pvmmu: ${note}\n`);
    if (trace?.error) process.exitCode = 2;
    if (interrupted) process.exitCode = 130;
  });
}
