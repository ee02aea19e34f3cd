/**
 * What the lguest model charges around the shadow engine's own work
 * (shadow/costs.ts). lguest's Host and Guest live in different address
 * spaces: every exit from the Guest (a hypercall, `int $0x1f`, or a trap such
 * as a #PF) goes through the Switcher (drivers/lguest/switcher.S), which
 * loads the Host's CR3, and every return loads the Guest's shadow CR3 again
 * (core.c run_guest_once). So each world switch flushes the TLB twice; the
 * model performs the return CR3 load on the machine (its flush and the
 * refills that follow are real) and charges the Host's CR3 load by figure.
 * No cycle figure for an lguest hypercall was published with 2.6.23; the trap
 * round trip is DERIVED from the preset as the Xen model's hypercall is.
 */
import type { CycleFigures } from '../../emulator/cost-model.js';

export interface LguestCosts {
  /** `int $0x1f` into the Switcher and the iret back (the trap round trip). */
  trap: number;
  /** The Switcher's load of the Host's CR3 on the way out (the way back in is a real CR3 load). */
  hostCr3: number;
  /** One entry written into the async hypercall ring (lazy mode). */
  ringEntry: number;
}

export interface LguestCostRow {
  name: keyof LguestCosts;
  cycles: number;
  component: 'hypercall' | 'flush';
  derivation: string;
}

export function lguestCostTable(c: CycleFigures): LguestCostRow[] {
  return [
    {
      name: 'trap',
      cycles: c.pageFault,
      component: 'hypercall',
      derivation:
        'DERIVED: int $0x1f into the Switcher and back is a trap round trip, charged as the preset #PF round trip (pageFault); no published lguest hypercall figure',
    },
    {
      name: 'hostCr3',
      cycles: c.cr3Write,
      component: 'flush',
      derivation: 'DERIVED: the Switcher loads the Host\'s CR3 on every exit (preset cr3Write); the load of the Guest\'s shadow CR3 on return is done on the machine',
    },
    {
      name: 'ringEntry',
      cycles: 4 * c.pteStore,
      component: 'hypercall',
      derivation: 'DERIVED: async_hcall writes four words (call and three arguments) into lguest_data.hcalls (4 × preset pteStore)',
    },
  ];
}

export function lguestCosts(c: CycleFigures): LguestCosts {
  const out = {} as LguestCosts;
  for (const row of lguestCostTable(c)) out[row.name] = row.cycles;
  return out;
}
