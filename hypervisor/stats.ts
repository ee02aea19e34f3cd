/**
 * What a backend counts: the machine's MMU counters and cycles, plus the
 * backend's own events (hypercalls by kind, traps, refusals by reason, pins).
 */
import type { CostBreakdown, MmuCounters } from '../emulator/cost-model.js';

/**
 * One backend event, for traces. A refusal is an instant; a hypercall or a
 * trap is reported once, when it ends, as a slice: from `at` for `cycles`
 * (everything charged meanwhile: the round trip, validation, flushes), with
 * its arguments (command, mfn, batch size, ...).
 */
export interface BackendEvent {
  kind: 'hypercall' | 'trap' | 'refusal';
  name: string;
  /** The machine's cycle clock when it started (a refusal: when it was counted). */
  at: number;
  /** A slice's length in cycles (hypercalls and traps). */
  cycles?: number;
  /** A slice's arguments. */
  args?: Record<string, number | string>;
}

export interface BackendStats {
  /** Listener for backend events (tools' traces); absent or null costs nothing. */
  listener?: ((e: BackendEvent) => void) | null;
  /** Total cycles: MMU work plus everything the backend charged. */
  readonly cycles: number;
  /**
   * `cycles` by cost component (emulator/cost-model.ts COST_COMPONENTS),
   * cumulative since boot; the components sum exactly to `cycles`.
   */
  readonly breakdown: CostBreakdown;
  readonly mmu: MmuCounters;
  /** Hypercalls by kind ("mmu_update", "mmuext_op", "multicall", ...); empty natively. */
  readonly hypercalls: Record<string, number>;
  /** Refusals by Xen reason. */
  readonly refusals: Record<string, number>;
  /** Trapped-and-emulated writes (writable page tables), fault bounces, ... */
  readonly traps: Record<string, number>;
  /** Frames currently pinned (Xen). */
  readonly pinned: number;
}
