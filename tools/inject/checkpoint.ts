/**
 * Checkpoints of the clean run for the inject sweep (issue 12): machine
 * snapshots (tools/workload/machine-snapshot.ts) at statement boundaries,
 * each with the number of injection points (allocations, or mmu_update
 * calls) the run had made by then. An injected run for point k starts from
 * the latest checkpoint that made fewer than k, with the failure armed at
 * k minus that count, instead of booting and replaying from the start.
 *
 * Memory is bounded: at most MAX_CHECKPOINTS snapshots, placed at the
 * boundaries the swept points need (the last boundary before each), thinned
 * to at least points/MAX_CHECKPOINTS injection points apart when there are
 * more. A snapshot holds the machine's bookkeeping (the Xen frame table, the
 * kernel's structures) and shares physical memory copy-on-write with the
 * others, so what they cost beyond the first is the frames written between
 * them.
 */
import type { MachineSnapshot } from '../workload/machine-snapshot.js';

/** At most this many checkpoints per sweep (the boot snapshot, which the sweep keeps anyway, not counted). */
export const MAX_CHECKPOINTS = 32;

export interface Checkpoint {
  /** Steps (Interpreter.advance) run at the checkpoint (0: just booted). */
  statement: number;
  /** Injection points made by then. */
  done: number;
  snapshot: MachineSnapshot;
}

export class Checkpoints {
  constructor(readonly list: readonly Checkpoint[]) {}

  /** The latest checkpoint with fewer than k injection points made (the boot one at worst). */
  startFor(k: number): Checkpoint {
    const l = this.list;
    let lo = 0;
    let hi = l.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (l[mid]!.done < k) lo = mid;
      else hi = mid - 1;
    }
    return l[lo]!;
  }
}

/**
 * Replay the clean run from the boot snapshot and take the checkpoints the
 * points `ks` need. `doneAfter[s]` is the injection points the clean run had
 * made after its s-th step (Interpreter.advance; doneAfter[0] = 0, after boot).
 */
export function recordCheckpoints(boot: MachineSnapshot, doneAfter: readonly number[], ks: readonly number[]): Checkpoints {
  // For each k, the last boundary with fewer than k points made.
  const wanted = new Set<number>();
  for (const k of ks) {
    let lo = 0;
    let hi = doneAfter.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (doneAfter[mid]! < k) lo = mid;
      else hi = mid - 1;
    }
    if (lo > 0) wanted.add(lo);
  }
  let at = [...wanted].sort((a, b) => a - b);
  if (at.length > MAX_CHECKPOINTS) {
    const total = doneAfter[doneAfter.length - 1]!;
    const gap = Math.ceil(total / MAX_CHECKPOINTS);
    const kept: number[] = [];
    let last = 0;
    for (const s of at) {
      if (doneAfter[s]! - last >= gap && kept.length < MAX_CHECKPOINTS) {
        kept.push(s);
        last = doneAfter[s]!;
      }
    }
    at = kept;
  }
  const list: Checkpoint[] = [{ statement: 0, done: 0, snapshot: boot }];
  if (at.length > 0) {
    const it = boot.restore();
    let n = 0;
    for (const s of at) {
      for (; n < s; n++) if (!it.advance()) throw new Error(`checkpoint: the clean run stopped before step ${s}`);
      list.push({ statement: s, done: doneAfter[s]!, snapshot: it.snapshot() });
    }
  }
  return new Checkpoints(list);
}
