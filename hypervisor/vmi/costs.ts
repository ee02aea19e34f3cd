/**
 * What the VMI model charges around the shadow engine's own work
 * (shadow/costs.ts). VMware published no per-call cycle figures for the VMI
 * ROM; every figure here is DERIVED from the CPU preset or a GUESS, and says
 * which.
 *
 * A VMI ROM call is a near call into the ROM page the hypervisor mapped at the
 * top of the guest's address space (`virtual_top`); an MMU call that the
 * hypervisor must see (allocate/release a page-table page, a pte update, a
 * CR3 load, a TLB flush) enters the monitor, which runs in the guest's address
 * space (no CR3 change). That entry and exit is charged like a hypercall: a
 * ring transition and back, the preset's #PF round trip (`pageFault`), as the
 * Xen model charges its hypercall. In lazy MMU mode the ROM only queues a pte
 * update (a store into its queue) and the queue costs one entry when flushed.
 * A hidden page fault is a #PF into the monitor (charged by the MMU as any
 * fault) with no world switch.
 */
import type { CycleFigures } from '../../emulator/cost-model.js';

export interface VmiCosts {
  /** One ROM call that enters the monitor and returns. */
  romCall: number;
  /** One pte update queued by the ROM in lazy MMU mode. */
  romQueued: number;
}

export interface VmiCostRow {
  name: keyof VmiCosts;
  cycles: number;
  component: 'hypercall';
  derivation: string;
}

export function vmiCostTable(c: CycleFigures): VmiCostRow[] {
  return [
    {
      name: 'romCall',
      cycles: c.pageFault,
      component: 'hypercall',
      derivation:
        'GUESS: a ROM call that enters the monitor is one ring transition and back, charged as the preset #PF round trip (pageFault), as the Xen model charges a hypercall; VMware published no VMI call figure',
    },
    {
      name: 'romQueued',
      cycles: c.walkEntryMemory,
      component: 'hypercall',
      derivation: 'GUESS: queuing one update in lazy MMU mode is one store into the ROM\'s queue (preset walkEntryMemory)',
    },
  ];
}

export function vmiCosts(c: CycleFigures): VmiCosts {
  const out = {} as VmiCosts;
  for (const row of vmiCostTable(c)) out[row.name] = row.cycles;
  return out;
}
