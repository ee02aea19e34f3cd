/**
 * What the Xen model charges, derived from the CPU preset's documented
 * figures (emulator/cost-model.ts, ../shared/reference/cost-model-sources.md).
 * No figure here is tuned: each is a preset figure, or a product of preset
 * figures with a published ratio, and the table below says which.
 *
 * No sourced figure exists for a Xen PV hypercall round trip on these
 * processors. A hypercall on x86_32 is a software interrupt (int $0x82) into
 * ring 0 and an iret back: the same entry/exit mechanism as the #PF round trip
 * the presets carry (`pageFault`: ~440 cycles entry + ~270 return, Xeon E5
 * v3). So the round trip is charged as `pageFault`, and the work Xen does
 * inside is charged per unit from the walk and locked-RMW figures.
 *
 * A #PF taken by a PV guest is delivered to Xen first and bounced into the
 * guest kernel (and the guest's iret goes back through Xen). The only
 * published figure for that path is Xen's "faster int 0x80 handling"
 * changeset: a system call bounced through Xen's #GP path took 0.87 µs
 * against 0.33 µs direct. The model applies that ratio to the native #PF
 * round trip: bounced = pageFault × 0.87 / 0.33, and charges the difference
 * on top of what the MMU already charged for the fault.
 *
 * A trapped-and-emulated L1 write (writable page tables) is a #PF into Xen
 * and the return (one `pageFault` round trip), the emulation (fetching and
 * decoding the faulting instruction: no figure found, a GUESS of one
 * walk-entry memory access for the instruction bytes) and the validated
 * update itself (charged per entry like mmu_update).
 */
import type { CycleFigures } from '../../emulator/cost-model.js';

/** The Xen PV trap path ratio: bounced 0.87 µs vs direct 0.33 µs (Xen changeset "faster int 0x80 handling"). */
export const BOUNCE_BOUNCED_US = 0.87;
export const BOUNCE_DIRECT_US = 0.33;

export interface XenCosts {
  /** One hypercall entry + exit (int $0x82 + iret). */
  hypercall: number;
  /** Dispatching one entry of a multicall (copying its arguments from guest memory). */
  multicallEntry: number;
  /** Reading one page-table entry while validating or updating. */
  entryRead: number;
  /** Xen writing one entry (UPDATE_ENTRY: a locked cmpxchg). */
  entryWrite: number;
  /** One type-count change (cmpxchg on page_info.type_info). */
  typeRef: number;
  /** The #PF into Xen and back for a trapped L1 write. */
  ptwrTrap: number;
  /** Emulating the faulting store (decode): GUESS. */
  ptwrDecode: number;
  /** A fault bounced through Xen, in total. */
  bouncedFault: number;
  /** What a bounce adds over the native #PF round trip the MMU charges. */
  bounceExtra: number;
}

export interface CostRow {
  name: keyof XenCosts;
  cycles: number;
  derivation: string;
}

/** The whole table, every figure with its derivation (docs and `pvmmu` reports print it). */
export function xenCostTable(c: CycleFigures): CostRow[] {
  const bounced = Math.round((c.pageFault * BOUNCE_BOUNCED_US) / BOUNCE_DIRECT_US);
  return [
    {
      name: 'hypercall',
      cycles: c.pageFault,
      derivation:
        'DERIVED: int $0x82 into ring 0 + iret back, the same entry/exit mechanism as the #PF round trip (preset pageFault = 440 entry + 270 return, Xeon E5 v3 measurement); no sourced Xen PV hypercall figure',
    },
    {
      name: 'multicallEntry',
      cycles: c.walkEntryMemory,
      derivation: 'MODELLING CHOICE: copying one multicall entry from guest memory = one memory access (preset walkEntryMemory)',
    },
    {
      name: 'entryRead',
      cycles: c.walkEntryMemory,
      derivation: 'per entry validated or updated: one page-table entry read from memory, as in a walk (preset walkEntryMemory)',
    },
    {
      name: 'entryWrite',
      cycles: c.adUpdate,
      derivation: 'UPDATE_ENTRY writes the entry with a locked cmpxchg (preset adUpdate, locked RMW)',
    },
    {
      name: 'typeRef',
      cycles: c.adUpdate,
      derivation: 'each type-count change is a locked cmpxchg on page_info.type_info (preset adUpdate, locked RMW)',
    },
    {
      name: 'ptwrTrap',
      cycles: c.pageFault,
      derivation: 'a store to a read-only L1 faults into Xen and returns: one #PF round trip (preset pageFault)',
    },
    {
      name: 'ptwrDecode',
      cycles: c.walkEntryMemory,
      derivation: 'GUESS: emulating the store (x86_emulate) charged as one memory access for the instruction bytes; no figure found',
    },
    {
      name: 'bouncedFault',
      cycles: bounced,
      derivation: `DERIVED: pageFault × ${BOUNCE_BOUNCED_US}/${BOUNCE_DIRECT_US} (Xen PV trap path: a trap bounced through Xen 0.87 µs vs 0.33 µs direct, Xen changeset "faster int 0x80 handling")`,
    },
    {
      name: 'bounceExtra',
      cycles: bounced - c.pageFault,
      derivation: 'bouncedFault − pageFault: charged on top of the #PF the MMU already charged',
    },
  ];
}

export function xenCosts(c: CycleFigures): XenCosts {
  const out = {} as XenCosts;
  for (const row of xenCostTable(c)) out[row.name] = row.cycles;
  return out;
}
