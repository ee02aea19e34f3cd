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
import { BufferPool, GraphCopier, type CopierOptions } from '../../emulator/snapshot.js';
import { copyBackend, type Backend } from '../../hypervisor/backend.js';
import type { Interpreter } from './interpreter.js';

/** A copy of `it`; `shared` (the script, the configuration, the options and their callbacks) are not copied. */
export function copyMachine(it: Interpreter, shared: readonly unknown[], opts: CopierOptions = {}): Interpreter {
  return copyWithBuffers(it, shared, opts).copy;
}

function copyWithBuffers(it: Interpreter, shared: readonly unknown[], opts: CopierOptions): { copy: Interpreter; buffers: readonly ArrayBuffer[] } {
  const c = new GraphCopier(opts).share(...shared);
  const h: Backend = it.handle;
  c.preset(h, copyBackend(h, (x) => c.copy(x)));
  const copy = c.copy(it, 'interpreter');
  return { copy, buffers: c.buffersMade };
}

/** The ArrayBuffers of each machine restore() made, until it is handed back to restore() to be reused. */
const buffersOf = new WeakMap<Interpreter, readonly ArrayBuffer[]>();

export class MachineSnapshot {
  constructor(
    private readonly frozen: Interpreter,
    private readonly shared: readonly unknown[],
    private readonly opts: CopierOptions = {},
  ) {}

  /**
   * A machine continuing, byte for byte, as the snapshotted one did from the
   * snapshot on. `dropped`: a machine an earlier restore() (of any snapshot)
   * returned that the caller will never use again (nor anything of it that
   * it kept: typed arrays): the new machine fills its typed arrays' buffers
   * instead of allocating new ones (the inject sweep restores one machine per
   * injected run). The new machine is the same either way.
   */
  restore(dropped?: Interpreter): Interpreter {
    let reuse: BufferPool | undefined;
    const old = dropped !== undefined ? buffersOf.get(dropped) : undefined;
    if (old !== undefined) {
      buffersOf.delete(dropped!);
      reuse = new BufferPool(old);
    }
    const { copy, buffers } = copyWithBuffers(this.frozen, this.shared, reuse !== undefined ? { ...this.opts, reuse } : this.opts);
    buffersOf.set(copy, buffers);
    return copy;
  }

  /** The snapshot's physical memory: frames touched, and frames it shares (tests of copy-on-write). */
  get memory(): { framesTouched: number; framesShared: number } {
    const m = this.frozen.mmu.mem;
    return { framesTouched: m.framesTouched, framesShared: m.framesShared };
  }
}
