/**
 * What the shadow-paging engine charges for its own work, derived from the
 * CPU preset's documented figures (emulator/cost-model.ts). The round trips
 * around that work (the hardware #PF into the hypervisor, a world switch, a
 * hypercall) are charged by the backend that owns the engine (vmi/costs.ts,
 * lguest/costs.ts), because they differ between hypervisors; the #PF of a
 * hidden fault itself is charged by the MMU (`exception`) like any fault.
 *
 * Every figure goes to one ledger component:
 *  - reading guest entries, building shadow entries, writing A/D back into the
 *    guest's entries, clearing a new shadow page: `validation` (the
 *    hypervisor's page-table work, the shadow analogue of Xen's validation);
 *  - reflecting a fault into the guest's own handler: `bounce`.
 */
import type { CycleFigures } from '../../emulator/cost-model.js';

export interface ShadowCosts {
  /** The hypervisor reads one guest page-table entry (walking the guest's tables on a hidden fault). */
  guestEntryRead: number;
  /** The hypervisor writes one shadow entry (its own table: a plain store). */
  shadowEntryWrite: number;
  /** Setting A (and D) in the guest's entry on a fill (demand_page's pte_mkyoung/pte_mkdirty + lgwrite). */
  adWriteback: number;
  /** Clearing a freshly allocated shadow page (get_zeroed_page). */
  shadowPageClear: number;
  /** Delivering a fault the guest must see to the guest's own #PF handler. */
  reflect: number;
}

export interface ShadowCostRow {
  name: keyof ShadowCosts;
  cycles: number;
  component: 'validation' | 'bounce';
  derivation: string;
}

/** The engine's cost table, each figure with its derivation (docs print it). */
export function shadowCostTable(c: CycleFigures): ShadowCostRow[] {
  return [
    {
      name: 'guestEntryRead',
      cycles: c.walkEntryMemory,
      component: 'validation',
      derivation: 'DERIVED: one page-table entry read from memory, as in a hardware walk (preset walkEntryMemory)',
    },
    {
      name: 'shadowEntryWrite',
      cycles: c.pteStore,
      component: 'validation',
      derivation: 'DERIVED: a plain store into the hypervisor-private shadow table (preset pteStore, one data-cache access)',
    },
    {
      name: 'adWriteback',
      cycles: c.adUpdate,
      component: 'validation',
      derivation: 'DERIVED: setting A/D in the guest entry costs what the processor pays for its own A/D update (preset adUpdate, locked RMW)',
    },
    {
      name: 'shadowPageClear',
      cycles: 64 * c.walkEntryCached,
      component: 'validation',
      derivation: 'GUESS: clearing a 4 KiB shadow page = 64 cache-line stores at the L1D latency (preset walkEntryCached); no figure found',
    },
    {
      name: 'reflect',
      cycles: c.pageFault,
      component: 'bounce',
      derivation:
        'GUESS: the hypervisor builds the guest\'s exception frame and enters its #PF handler: one more exception delivery (preset pageFault); no figure found for VMware\'s or lguest\'s reflection path',
    },
  ];
}

export function shadowCosts(c: CycleFigures): ShadowCosts {
  const out = {} as ShadowCosts;
  for (const row of shadowCostTable(c)) out[row.name] = row.cycles;
  return out;
}
