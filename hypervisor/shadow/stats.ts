/**
 * The counters of a shadow-paging backend (BackendStats): the machine's MMU
 * counters and cycles, plus hypercalls (VMI ROM calls, lguest hypercalls) by
 * name, traps by kind (`hidden_fault`, `reflected_fault`, shadow switches
 * and teardowns, `unshadowed_entry`), and refusals by reason.
 */
import type { CostBreakdown, MmuCounters } from '../../emulator/cost-model.js';
import type { Mmu } from '../../emulator/mmu.js';
import type { BackendEvent, BackendStats } from '../stats.js';

export class ShadowStats implements BackendStats {
  readonly hypercalls: Record<string, number> = {};
  readonly refusals: Record<string, number> = {};
  readonly traps: Record<string, number> = {};
  readonly pinned = 0;
  listener: ((e: BackendEvent) => void) | null = null;

  constructor(private readonly machine: Mmu) {}

  get cycles(): number {
    return this.machine.cycles;
  }
  get breakdown(): CostBreakdown {
    return this.machine.breakdown;
  }
  get mmu(): MmuCounters {
    return this.machine.counters;
  }

  /** Count one event of a kind, and tell the listener if one is attached. */
  count(kind: 'hypercalls' | 'traps' | 'refusals', key: string): void {
    const rec = kind === 'hypercalls' ? this.hypercalls : kind === 'traps' ? this.traps : this.refusals;
    rec[key] = (rec[key] ?? 0) + 1;
    if (this.listener !== null) {
      this.listener({ kind: kind === 'hypercalls' ? 'hypercall' : kind === 'traps' ? 'trap' : 'refusal', name: key, at: this.machine.cycles });
    }
  }
}
