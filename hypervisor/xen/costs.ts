/**
 * What the Xen model charges, derived from the CPU preset's documented
 * figures (emulator/cost-model.ts; docs/cost-model.md). No figure here is
 * tuned, and none comes from a Xen lmbench measurement: each is a preset
 * figure, or a sum of preset figures for the steps Xen 3.1.0's code takes,
 * and the table below says which.
 *
 * Gate crossings: a hypercall on x86_32 is int $0x82 into ring 0 and an
 * iret back, the same IDT-gate mechanism as the #PF round trip the preset
 * carries (`pageFault`, itself the era's int $0x80 round trip: the lmbench
 * null call on the preset's class). No sourced Xen PV hypercall figure of
 * the era was found.
 *
 * A #PF taken by a PV guest is delivered to Xen (the #PF round trip the MMU
 * charges as `exception`: into Xen and out into the guest's ring-1 handler),
 * Xen decides it is the guest's (fixup_page_fault: the ptwr and spurious
 * checks walk the guest's tables) and builds the bounce frame
 * (propagate_page_fault, create_bounce_frame): that work is `bounce`; and
 * the guest's handler returns with the iret hypercall (2.6.23's Xen iret
 * op), charged as a hypercall by the backend.
 *
 * The Xen changeset "faster int 0x80 handling" gives the only measured trap
 * paths: 0.327 µs for a 32-bit guest's int $0x80 straight through the trap
 * table, 0.868 µs for a 32-on-64 guest's int $0x80 bounced through Xen's
 * #GP handler. Neither is a native figure, and neither is charged here:
 * docs/cost-model.md sets the model's bounce against them as a check.
 *
 * A trapped-and-emulated L1 write (writable page tables) is a #PF into Xen
 * and back (`pageFault`), the emulation (ptwr_do_page_fault fetches the
 * faulting instruction through the guest's page tables and x86_emulate
 * decodes it: `ptwrDecode`, a GUESS with a range), and the validated update
 * (charged per entry like mmu_update).
 *
 * Validation scans (alloc_l1_table and friends, free_l1_table) stream the
 * table: one cache line per 8 PAE / 16 two-level entries, plus a flags check
 * per present entry; a non-present entry costs nothing beyond its line.
 */
import type { CycleFigures } from '../../emulator/cost-model.js';

export interface XenCosts {
  /** One hypercall entry + exit (int $0x82 + iret). */
  hypercall: number;
  /** Dispatching one entry of a multicall (copying its arguments from guest memory). */
  multicallEntry: number;
  /** Reading one page-table entry at random (an update's target, an L3 slot). */
  entryRead: number;
  /** One 64-byte line of a table streamed by a validation or release scan. */
  scanLine: number;
  /** Checking one present entry in a scan (its flags and frame, from the line in L1D). */
  entryCheck: number;
  /** Xen writing one entry (UPDATE_ENTRY: a locked cmpxchg). */
  entryWrite: number;
  /** One type-count change (cmpxchg on page_info.type_info). */
  typeRef: number;
  /** The #PF into Xen and back for a trapped L1 write. */
  ptwrTrap: number;
  /** Emulating the faulting store: fetch through the guest's tables + decode (GUESS). */
  ptwrDecode: number;
  /** Xen's work to bounce a fault to the guest (fixup checks, bounce frame). */
  bounceExtra: number;
  /** A fault Xen raises itself and bounces (the segment-limit #GP): the round trip and the bounce. */
  bouncedFault: number;
}

export interface CostRow {
  name: keyof XenCosts;
  cycles: number;
  derivation: string;
}

/** GUESS: x86_emulate decoding one mov to memory, the instruction bytes copied from guest memory; range 150-500. */
export const X86_EMULATE_DECODE_GUESS = 250;
/** GUESS: create_bounce_frame pushing the guest's exception frame (about ten stores, a few checks); range 30-150. */
export const BOUNCE_FRAME_GUESS = 60;

/** The whole table, every figure with its derivation (docs/cost-model.md prints it). */
export function xenCostTable(c: CycleFigures, pae: boolean): CostRow[] {
  const levels = pae ? 3 : 2;
  const guestWalk = levels * c.walkEntryMemory;
  const bounceExtra = guestWalk + BOUNCE_FRAME_GUESS;
  return [
    {
      name: 'hypercall',
      cycles: c.pageFault,
      derivation:
        'DERIVED: int $0x82 into ring 0 + iret back: the same IDT-gate mechanism as the #PF round trip (preset pageFault, the era int $0x80 round trip); no sourced Xen PV hypercall figure',
    },
    {
      name: 'multicallEntry',
      cycles: c.walkEntryMemory,
      derivation: 'MODELLING CHOICE: copying one multicall entry from guest memory = one memory access (preset walkEntryMemory)',
    },
    {
      name: 'entryRead',
      cycles: c.walkEntryMemory,
      derivation: 'DERIVED: one entry read at random (an update target, an L3 slot): one memory access, as in a walk (preset walkEntryMemory)',
    },
    {
      name: 'scanLine',
      cycles: c.walkEntryMemory,
      derivation: `DERIVED: a validation/release scan streams the table: one line fill per ${pae ? 8 : 16} entries (preset walkEntryMemory per 64-byte line)`,
    },
    {
      name: 'entryCheck',
      cycles: c.walkEntryCached,
      derivation: 'DERIVED: a present entry checked in a scan (flags against the disallow mask, the frame looked up): one L1D access (preset walkEntryCached); a non-present entry costs nothing beyond its line',
    },
    {
      name: 'entryWrite',
      cycles: c.adUpdate,
      derivation: 'DERIVED: UPDATE_ENTRY writes the entry with a locked cmpxchg (preset adUpdate, locked RMW)',
    },
    {
      name: 'typeRef',
      cycles: c.adUpdate,
      derivation: 'DERIVED: each type-count change is a locked cmpxchg on page_info.type_info (preset adUpdate, locked RMW)',
    },
    {
      name: 'ptwrTrap',
      cycles: c.pageFault,
      derivation: 'DERIVED: a store to a read-only L1 faults into Xen and returns: one #PF round trip (preset pageFault)',
    },
    {
      name: 'ptwrDecode',
      cycles: guestWalk + X86_EMULATE_DECODE_GUESS,
      derivation: `GUESS (range ${guestWalk + 150}-${guestWalk + 500}): ptwr_do_page_fault fetches the faulting instruction through the guest's page tables (${levels} entries × walkEntryMemory) and x86_emulate decodes it (${X86_EMULATE_DECODE_GUESS} cycles, GUESS); no measured figure found`,
    },
    {
      name: 'bounceExtra',
      cycles: bounceExtra,
      derivation: `DERIVED + GUESS: Xen's fixup_page_fault checks walk the guest's tables (${levels} × walkEntryMemory) and create_bounce_frame builds the guest's frame (${BOUNCE_FRAME_GUESS} cycles, GUESS); the #PF round trip is charged by the MMU and the guest's return is the iret hypercall`,
    },
    {
      name: 'bouncedFault',
      cycles: c.pageFault + bounceExtra,
      derivation: 'DERIVED: a fault Xen raises itself (a #GP for an access above the guest segment limit): the round trip (pageFault) + bounceExtra',
    },
  ];
}

export function xenCosts(c: CycleFigures, pae: boolean): XenCosts {
  const out = {} as XenCosts;
  for (const row of xenCostTable(c, pae)) out[row.name] = row.cycles;
  return out;
}
