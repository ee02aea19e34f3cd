/**
 * The Xen backend's counters (BackendStats): the machine's MMU counters and
 * cycles, plus hypercalls by kind (`mmu_update`, `mmuext_op`, `multicall`,
 * `vm_assist`, and `mmuext_op:PIN_L3_TABLE` etc. per sub-command), traps by
 * kind (`ptwr_emulate`, `page_fault_bounce`, `segment_limit_fault`),
 * refusals by rule (Xen's message with the numbers elided) and the frames
 * currently pinned. `hypervisorCycles` is the part of `cycles` the
 * hypervisor model charged (hypercall round trips, validation, bounces).
 */
import type { Mmu } from '../../emulator/mmu.js';
import type { CostBreakdown, MmuCounters } from '../../emulator/cost-model.js';
import type { BackendEvent, BackendStats } from '../stats.js';
import type { FrameTable } from './frame-table.js';

export class XenStats implements BackendStats {
  readonly hypercalls: Record<string, number> = {};
  readonly refusals: Record<string, number> = {};
  readonly traps: Record<string, number> = {};
  hypervisorCycles = 0;
  listener: ((e: BackendEvent) => void) | null = null;

  constructor(
    private readonly machine: Mmu,
    private readonly frameTable: FrameTable,
  ) {}

  get cycles(): number {
    return this.machine.cycles;
  }
  get breakdown(): CostBreakdown {
    return this.machine.breakdown;
  }
  get mmu(): MmuCounters {
    return this.machine.counters;
  }
  get pinned(): number {
    return this.frameTable.pinnedCount;
  }

  static bump(rec: Record<string, number>, key: string): void {
    rec[key] = (rec[key] ?? 0) + 1;
  }

  /** Count one event of a kind; a refusal is also an instant for the listener (hypercalls and traps are slices: see slice()). */
  count(kind: 'hypercalls' | 'traps' | 'refusals', key: string): void {
    // (A direct reference rather than this[kind]: this runs on every hypercall.)
    XenStats.bump(kind === 'hypercalls' ? this.hypercalls : kind === 'traps' ? this.traps : this.refusals, key);
    if (kind === 'refusals' && this.listener !== null) this.listener({ kind: 'refusal', name: key, at: this.machine.cycles });
  }

  /** A hypercall or trap that started at cycle `at` has ended: tell the listener (callers check `listener` first, so nothing is built without one). */
  slice(kind: 'hypercall' | 'trap', name: string, at: number, args: Record<string, number | string>): void {
    if (this.listener !== null) this.listener({ kind, name, at, cycles: this.machine.cycles - at, args });
  }
}
