/**
 * Snapshots of a whole emulated machine running a workload (issue 12): the
 * Interpreter with everything it reaches (backend and hypervisor, the
 * processor, its TLBs and physical memory, the guest kernel, the run's
 * position, accounts and observations), copied by the graph copier of
 * emulator/snapshot.ts. Physical memory is shared copy-on-write, so a
 * snapshot costs the machine's bookkeeping, not its frames.
 *
 * A snapshot is never run: restore() makes a new copy of it each time, so
 * one snapshot can be restored any number of times, and what the original
 * or a restored machine does afterwards never reaches it.
 */
import { GraphCopier, type CopierOptions } from '../../emulator/snapshot.js';
import { copyBackend, type Backend } from '../../hypervisor/backend.js';
import type { Interpreter } from './interpreter.js';

/** A copy of `it`; `shared` (the script, the configuration, the options and their callbacks) are not copied. */
export function copyMachine(it: Interpreter, shared: readonly unknown[], opts: CopierOptions = {}): Interpreter {
  const c = new GraphCopier(opts).share(...shared);
  const h: Backend = it.handle;
  c.preset(h, copyBackend(h, (x) => c.copy(x)));
  return c.copy(it, 'interpreter');
}

export class MachineSnapshot {
  constructor(
    private readonly frozen: Interpreter,
    private readonly shared: readonly unknown[],
    private readonly opts: CopierOptions = {},
  ) {}

  /** A machine continuing, byte for byte, as the snapshotted one did from the snapshot on. */
  restore(): Interpreter {
    return copyMachine(this.frozen, this.shared, this.opts);
  }

  /** The snapshot's physical memory: frames touched, and frames it shares (tests of copy-on-write). */
  get memory(): { framesTouched: number; framesShared: number } {
    const m = this.frozen.mmu.mem;
    return { framesTouched: m.framesTouched, framesShared: m.framesShared };
  }
}
