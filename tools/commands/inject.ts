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
import { injectSweep } from '../inject/sweep.js';
import { failed, injectJson, injectText } from '../inject/summary.js';
import { Progress } from '../table.js';
import { addCommonFlags, layoutOf, loadWorkloadFlags, type CommonFlags } from './common.js';

interface InjectFlags extends CommonFlags {
  maxRuns?: string;
  refuseHypercall?: string;
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
    .option('--refuse-hypercall <k|all>', "Xen: fail the k-th mmu_update call after its first request (or every one in turn) instead of allocations");
  addCommonFlags(cmd, { trace: false });
  cmd.addHelpText(
    'after',
    `
Each run boots afresh, fails one allocation (page allocator or slab) made
after boot, and runs the workload until it completes or stops. The table
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

Exit status: 0 nothing leaked or crashed, 1 a leak, a crash or an invariant
breach (or the workload fails without injection), 2 bad input.

Examples:
  pvmmu inject tools/workloads/fork-exit.pvw
  pvmmu inject tools/workloads/fork-exit.pvw --backend xen --no-pae --json
  pvmmu inject tools/workloads/vmalloc-churn.pvw --max-runs 200
  pvmmu inject tools/workloads/fork-exit.pvw --backend xen --refuse-hypercall all
  pvmmu inject tools/workloads/fork-exit.pvw --backend xen --refuse-hypercall 12`,
  );
  cmd.action((file: string, flags: InjectFlags) => {
    const layout = layoutOf(flags);
    const maxRuns = flags.maxRuns !== undefined ? positiveInt('--max-runs', flags.maxRuns) : undefined;
    let only: number[] | undefined;
    const refuse = flags.refuseHypercall;
    if (refuse !== undefined && refuse !== 'all') only = [positiveInt('--refuse-hypercall', refuse)];
    const { script, cfg } = loadWorkloadFlags(file, flags);
    if (refuse !== undefined && cfg.backend !== 'xen') {
      throw new InputError('--refuse-hypercall: mmu_update is a Xen hypercall; run with --backend xen (or backend=xen in the machine line)');
    }
    const progress = new Progress(flags.json === true);
    const rep = injectSweep(script, cfg, {
      ...layout,
      maxRuns,
      only,
      mode: refuse !== undefined ? 'mmu_update' : 'allocation',
      onRun: (i, n) => progress.update(`inject ${file}`, i, n),
    });
    progress.done();
    if (only !== undefined && rep.clean.failure === null && only[0]! > rep.clean.points) {
      throw new InputError(`--refuse-hypercall ${only[0]}: the workload makes only ${rep.clean.points} mmu_update calls after boot`);
    }
    if (flags.json) process.stdout.write(JSON.stringify(injectJson(rep), null, 2) + '\n');
    else process.stdout.write(injectText(rep) + '\n');
    if (rep.clean.failure !== null) process.stderr.write(`pvmmu: the workload fails without injection: ${rep.clean.failure}\n`);
    if (failed(rep)) process.exitCode = 1;
  });
}
