/**
 * `pvmmu compare FILE.pvw… [--backends a,b,…]`: run each workload on each
 * backend (default native and Xen) with the same configuration; what the
 * guest observes (every read, kread, segv, expect, the failure if any) must
 * be identical and every backend's invariants clean; print cycles per
 * measure, one column per backend, with the ratio to the first. Exit 1 on
 * any divergence.
 */
import type { Command } from 'commander';
import { InputError } from '../input-error.js';
import { Progress } from '../table.js';
import { openTrace } from '../trace/writer.js';
import { countWork } from '../workload/check.js';
import { compareAll, compareJson, compareText, type Comparison } from '../workload/compare.js';
import { runWorkloadAsync, type RunResult } from '../workload/interpreter.js';
import { traceMetadata } from '../workload/summary.js';
import { BACKEND_KINDS } from '../../hypervisor/backend.js';
import { Option } from 'commander';
import { addCommonFlags, interruptible, layoutOf, loadWorkloadFlags, parseBackends, tracePaths, traceNote, type CommonFlags } from './common.js';

/** The scripts of one compare, together, at most (each is at most 4 MiB). */
const MAX_COMPARE_BYTES = 64 << 20;

export function registerCompare(program: Command): void {
  const cmd = program
    .command('compare')
    .argument('<files...>', 'workload scripts (.pvw)')
    .description('run workloads on several backends (default native and Xen); check the guest sees the same; show costs side by side');
  addCommonFlags(cmd, { backend: false });
  cmd.addOption(new Option('--backends <list>', `comma-separated backends to compare, ratios to the first (${BACKEND_KINDS.join(', ')})`).default('native,xen'));
  cmd.addHelpText(
    'after',
    `
--trace FILE writes one trace per backend: FILE with the backend's name before
its extension (--trace /tmp/fork.json: /tmp/fork.native.json and
/tmp/fork.xen.json), for one workload. A run that stops (a refusal, a BUG)
gets no ratio. lguest runs 2-level paging only: compare it with --no-pae.

Examples:
  pvmmu compare tools/workloads/fork-exit.pvw
  pvmmu compare tools/workloads/*.pvw --no-pae
  pvmmu compare tools/workloads/vmalloc-churn.pvw --split 1G --json
  pvmmu compare tools/workloads/default.pvw --backends native,xen,vmi,lguest --no-pae
  pvmmu compare tools/workloads/fork-exit.pvw --trace /tmp/fork.json && pvmmu report /tmp/fork.native.json /tmp/fork.xen.json -o /tmp/fork.html`,
  );
  cmd.action(async (files: string[], flags: CommonFlags & { backends: string }) => {
    const layout = layoutOf(flags);
    const backends = parseBackends('--backends', flags.backends);
    if (flags.trace !== undefined && files.length > 1) {
      throw new InputError(`--trace: one workload at a time (got ${files.length}); a trace describes one run per backend`);
    }
    // Every file is read and checked before anything runs.
    // ... in bounded memory: all the scripts held at once add up to at most MAX_COMPARE_BYTES.
    let bytes = 0;
    const loaded = files.map((f) => {
      const w = { file: f, ...loadWorkloadFlags(f, flags, backends) };
      bytes += w.bytes;
      if (bytes > MAX_COMPARE_BYTES) throw new InputError(`${f}: the workloads given so far add up to more than ${MAX_COMPARE_BYTES} bytes; compare them in smaller groups`);
      return w;
    });
    const paths = flags.trace !== undefined ? tracePaths('--trace', flags.trace, backends, files) : [];
    const progress = new Progress(flags.json === true);
    const intr = interruptible();
    const out: Comparison[] = [];
    const notes: string[] = [];
    let interrupted = false;
    let traceError = false;
    try {
      for (const [i, w] of loaded.entries()) {
        progress.update(`compare ${w.file}`, i, loaded.length);
        const runs = [];
        const total = countWork(w.script.body);
        for (const [j, backend] of backends.entries()) {
          const cfg = { ...w.cfg, backend };
          const trace = paths[j] !== undefined ? openTrace(paths[j]!, traceMetadata(w.file, cfg, layout)) : undefined;
          try {
            runs.push(await runWorkloadAsync(w.script, cfg, { ...layout, trace, onProgress: (k, line) => progress.update(`compare ${w.file} (${backend}): line ${line}, work`, k, total) }, intr.stopped));
          } catch (e) {
            if (trace) process.stderr.write(`pvmmu: ${traceNote(trace, false) ?? ''}\n`);
            throw e;
          }
          const stopped = runs[j]!.failure?.kind === 'interrupted';
          interrupted ||= stopped;
          if (trace) {
            const n = traceNote(trace, stopped);
            if (n) notes.push(n);
            traceError ||= trace.error !== null;
          }
          if (stopped) break;
        }
        if (interrupted) break;
        const divergences = compareAll(runs as RunResult[]);
        out.push({ workload: w.file, equivalent: divergences.length === 0, divergences, runs: runs as RunResult[] });
      }
    } finally {
      intr.dispose();
      progress.done();
    }
    if (flags.json) process.stdout.write(JSON.stringify(compareJson(out), null, 2) + '\n');
    else if (out.length) process.stdout.write(out.map(compareText).join('\n\n') + '\n');
    for (const n of notes) process.stderr.write(`pvmmu: ${n}\n`);
    if (out.some((c) => !c.equivalent)) process.exitCode = 1;
    if (traceError) process.exitCode = 2;
    if (interrupted) {
      process.stderr.write(`pvmmu: interrupted; ${out.length} of ${loaded.length} workloads compared\n`);
      process.exitCode = 130;
    }
  });
}
