/**
 * `pvmmu inject FILE.pvw`: the fault-injection sweep (cli.md, issue 6). A
 * clean run counts the allocations the guest makes after boot; then one run
 * per allocation k fails the k-th, and reports where it hit (the kernel
 * function), how the guest coped, and what leaked once everything is torn
 * down. With --refuse-hypercall (Xen), mmu_update calls are failed part-way
 * instead. Exit 1 on any leak, crash or invariant breach; 2 on bad input.
 */
import type { Command } from 'commander';
import { InputError } from '../input-error.js';
import { INJECT_TASK, assembleInject, prepareInject, type InjectContext, type InjectResult } from '../inject/sweep.js';
import { failed, injectJson, injectText } from '../inject/summary.js';
import { Progress } from '../table.js';
import { parseJobs, startPool } from '../sweep/pool.js';
import { parseShard, shardInfo, shardRange } from '../sweep/shard.js';
import { addCommonFlags, interruptibleSweep, layoutOf, loadWorkloadFlags, type CommonFlags } from './common.js';

interface InjectFlags extends CommonFlags {
  maxRuns?: string;
  refuseHypercall?: string;
  jobs?: string;
  shard?: string;
}

function positiveInt(flag: string, v: string): number {
  if (!/^\d{1,9}$/.test(v) || Number(v) < 1) throw new InputError(`${flag}: expected a positive integer below 10^9, got '${v}'`);
  return Number(v);
}

export function registerInject(program: Command): void {
  const cmd = program
    .command('inject')
    .argument('<file>', 'workload script (.pvw)')
    .description('fault injection: run the workload once per allocation, failing the k-th; report outcomes and leaks')
    .option('--max-runs <n>', 'at most N injected runs, spread evenly over the injection points')
    .option('--refuse-hypercall <k|all>', "Xen: fail the k-th mmu_update call after its first request (or every one in turn) instead of allocations")
    .option('--jobs <n>', 'run the injected runs in N worker threads (default: the number of cores); the output does not depend on N')
    .option('--shard <i/n>', 'run only shard I of N of the injected runs (1-based; needs --json; combine the shards with pvmmu merge)');
  addCommonFlags(cmd, { trace: false });
  cmd.addHelpText(
    'after',
    `
Each run fails one allocation (page allocator or slab) made after boot and
runs the workload until it completes or stops. The machine boots once: each
run starts from a snapshot of the clean run taken before its allocation
(the same as booting afresh and replaying, only faster). The table
shows, per run: k, the kernel function whose allocation failed, how the guest
coped (fork -ENOMEM, exec -ENOMEM, vmalloc NULL, touch: killed by the OOM
path, absorbed ...), the line it stopped at, and what was still held after
tearing everything down (exit all processes, vfree all areas, shrink caches)
compared with a clean boot torn down the same way: frames, slab objects,
pgd_list entries, and under Xen pins and type references. A kernel BUG, a
broken invariant, a hypervisor refusal or an internal error is a crash.

With --refuse-hypercall the hypervisor fails an mmu_update instead: the guest
(like Linux's Xen port, which BUGs) must stop at the statement with the
refusal named, and Xen's state must stay consistent (checkXenInvariants).

--jobs N runs the injected runs in N worker threads, each of which repeats
the clean runs for itself; the output is byte-identical for every N.
--shard I/N runs only the I-th of N contiguous slices of the injected runs
and prints a JSON document with a "shard" object; \`pvmmu merge\` turns the N
documents into the single run's output (docs/reliability.md).

Exit status: 0 nothing leaked or crashed, 1 a leak, a crash or an invariant
breach (or the workload fails without injection), 2 bad input.

Examples:
  pvmmu inject tools/workloads/fork-exit.pvw
  pvmmu inject tools/workloads/fork-exit.pvw --backend xen --no-pae --json
  pvmmu inject tools/workloads/vmalloc-churn.pvw --max-runs 200
  pvmmu inject tools/workloads/fork-exit.pvw --backend xen --refuse-hypercall all
  pvmmu inject tools/workloads/fork-exit.pvw --backend xen --refuse-hypercall 12
  pvmmu inject tools/workloads/default.pvw --backend xen --jobs 4
  pvmmu inject tools/workloads/default.pvw --backend xen --shard 2/4 --json > shard-2.json`,
  );
  cmd.action(async (file: string, flags: InjectFlags) => {
    const layout = layoutOf(flags);
    const maxRuns = flags.maxRuns !== undefined ? positiveInt('--max-runs', flags.maxRuns) : undefined;
    const jobs = parseJobs('--jobs', flags.jobs);
    const shard = parseShard('--shard', flags.shard);
    if (shard !== null && flags.json !== true) throw new InputError('--shard: a shard prints a JSON document for pvmmu merge; add --json');
    let only: number[] | undefined;
    const refuse = flags.refuseHypercall;
    if (refuse !== undefined && refuse !== 'all') only = [positiveInt('--refuse-hypercall', refuse)];
    const { script, cfg } = loadWorkloadFlags(file, flags);
    if (refuse !== undefined && cfg.backend !== 'xen') {
      throw new InputError('--refuse-hypercall: mmu_update is a Xen hypercall; run with --backend xen (or backend=xen in the machine line)');
    }
    const o = { ...layout, maxRuns, only, mode: refuse !== undefined ? ('mmu_update' as const) : ('allocation' as const) };
    const intr = interruptibleSweep('injected runs');
    // The workers plan the sweep (clean runs, checkpoints) while this thread does.
    const pool = startPool<unknown, InjectContext, InjectResult>(INJECT_TASK, { script, cfg, o }, jobs);
    let ctx: InjectContext;
    try {
      ctx = prepareInject(script, cfg, o);
      if (only !== undefined && ctx.head.clean.failure === null && only[0]! > ctx.head.clean.points) {
        throw new InputError(`--refuse-hypercall ${only[0]}: the workload makes only ${ctx.head.clean.points} mmu_update calls after boot`);
      }
    } catch (e) {
      pool.close();
      throw e;
    }
    const { from, to } = shardRange(shard, ctx.ks.length);
    const progress = new Progress(flags.json === true);
    const results = await pool.run({
      from,
      to,
      local: ctx,
      more: intr.more,
      onDone: (done) => progress.update(`inject ${file}`, done, to - from),
    });
    progress.done();
    if (intr.finish(results.length, to - from)) return;
    const rep = assembleInject(ctx.head, results);
    if (shard !== null) process.stdout.write(JSON.stringify({ shard: shardInfo('inject', shard, ctx.ks.length), ...injectJson(rep) }, null, 2) + '\n');
    else if (flags.json) process.stdout.write(JSON.stringify(injectJson(rep), null, 2) + '\n');
    else process.stdout.write(injectText(rep) + '\n');
    if (rep.clean.failure !== null) process.stderr.write(`pvmmu: the workload fails without injection: ${rep.clean.failure}\n`);
    if (failed(rep)) process.exitCode = 1;
  });
}
