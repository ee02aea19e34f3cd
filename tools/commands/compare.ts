/**
 * `pvmmu compare FILE.pvw…`: run each workload on the native and the Xen
 * backend with the same configuration; what the guest observes (every read,
 * kread, segv, expect, the failure if any) must be identical and both
 * backends' invariants clean; print cycles per measure side by side with the
 * Xen/native ratio. Exit 1 on any divergence.
 */
import type { Command } from 'commander';
import { num, Progress, size, table } from '../table.js';
import { runWorkload, type RunResult } from '../workload/interpreter.js';
import { bootJson, openTrace } from './boot.js';
import { addCommonFlags, loadWorkload, seedOf, type CommonFlags } from './common.js';

export interface Comparison {
  workload: string;
  equivalent: boolean;
  divergences: string[];
  native: RunResult;
  xen: RunResult;
}

export function compareRuns(native: RunResult, xen: RunResult): string[] {
  const d: string[] = [];
  const n = native.observations;
  const x = xen.observations;
  for (let i = 0; i < Math.max(n.length, x.length); i++) {
    if (n[i] !== x[i]) {
      d.push(`observation ${i}: native ${n[i] ?? '(none)'} / xen ${x[i] ?? '(none)'}`);
      if (d.length >= 20) break;
    }
  }
  const nf = native.failure?.message ?? null;
  const xf = xen.failure?.message ?? null;
  if (nf !== xf) d.push(`outcome: native ${nf ?? 'completed'} / xen ${xf ?? 'completed'}`);
  for (const v of native.invariants) d.push(`native invariant: ${v}`);
  for (const v of xen.invariants) d.push(`xen invariant: ${v}`);
  return d;
}

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
    const loaded = files.map((f) => ({ file: f, ...loadWorkload(f, flags) }));
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
      const doc = { workloads: out.map((c) => ({ workload: c.workload, equivalent: c.equivalent, divergences: c.divergences, native: bootJson(c.native), xen: bootJson(c.xen) })) };
      process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    } else {
      process.stdout.write(out.map(compareText).join('\n\n') + '\n');
    }
    if (out.some((c) => !c.equivalent)) process.exitCode = 1;
  });
}

function ratio(x: number, n: number): string {
  return n > 0 ? `${(x / n).toFixed(2)}x` : '-';
}

export function compareText(c: Comparison): string {
  const cfg = c.native.config;
  const lines = [`${c.workload}: ${cfg.pae ? 'PAE' : '2-level'}, split ${cfg.split}, mem ${size(cfg.mem)}, cpu ${cfg.cpu}, kernel ${cfg.kernel}`];
  const labels = [...new Set([...Object.keys(c.native.measures), ...Object.keys(c.xen.measures)])];
  const rows = labels.map((l) => {
    const n = c.native.measures[l];
    const x = c.xen.measures[l];
    return [l, num(n?.runs ?? 0), num(n?.perRun ?? 0, 1), num(x?.perRun ?? 0, 1), ratio(x?.perRun ?? 0, n?.perRun ?? 0)];
  });
  const work = (r: RunResult) => r.cycles - r.bootCycles;
  rows.push(['(boot)', '1', num(c.native.bootCycles), num(c.xen.bootCycles), ratio(c.xen.bootCycles, c.native.bootCycles)]);
  rows.push(['(workload)', '1', num(work(c.native)), num(work(c.xen)), ratio(work(c.xen), work(c.native))]);
  lines.push(table(['measure', 'runs', 'native cycles/run', 'xen cycles/run', 'xen/native'], rows, [1, 2, 3, 4]));
  const ev = (r: RunResult) => `walks ${num(r.walks.count)}, faults ${num(r.pageFaults.user + r.pageFaults.cow + r.pageFaults.vmalloc)}, hypercalls ${num(Object.values(r.hypercalls).reduce((a, b) => a + b, 0))}`;
  lines.push(`native: ${ev(c.native)}`);
  lines.push(`xen:    ${ev(c.xen)}`);
  if (c.equivalent) lines.push(`equivalent: the guest observed the same ${c.native.observations.length} results on both; invariants clean`);
  else lines.push(`DIVERGENT:\n  ${c.divergences.join('\n  ')}`);
  return lines.join('\n');
}
