/**
 * Address and frame types shared by the backends and the guest kernel.
 * The brands are optional properties: a plain number converts in, but a
 * `Pfn` never silently becomes an `Mfn` (Xen's XPADDR/XMADDR discipline).
 * Free at run time.
 */

/** Guest pseudo-physical frame number. */
export type Pfn = number & { readonly __brand?: 'Pfn' };
/** Machine frame number (what page-table entries and CR3 hold). */
export type Mfn = number & { readonly __brand?: 'Mfn' };
/** Guest pseudo-physical byte address (pfn << 12 | offset). */
export type GuestPhys = number & { readonly __brand?: 'GuestPhys' };
/** Machine byte address. */
export type MachAddr = number & { readonly __brand?: 'MachAddr' };
/** Guest virtual (linear) address, 0..2^32-1. */
export type VirtAddr = number & { readonly __brand?: 'VirtAddr' };
/**
 * A page-table entry value: 64 bits under PAE, 32 bits in 2-level paging.
 * One representation everywhere above the emulator: bigint.
 */
export type PteVal = bigint;

/** Frame bits of an entry value (bits 35:12). */
export const PTE_PFN_MASK = 0xffffff000n;
export const PTE_FLAGS_MASK = ~PTE_PFN_MASK & 0xffffffffffffffffn;

export function pteFrame(v: PteVal): number {
  return Number((v & PTE_PFN_MASK) >> 12n);
}

/**
 * A hypervisor refused an operation the guest cannot recover from (Linux's
 * Xen port BUGs on a failed mmu_update). `reason` is Xen's own wording; the
 * backend's state is unchanged by the refused operation.
 */
export class HypervisorRefusal extends Error {
  constructor(
    /** Xen's reason text, e.g. "PAE L3 3rd slot is shared". */
    readonly reason: string,
    /** Which hypercall or path refused (e.g. "mmuext_op PIN_L3_TABLE"). */
    readonly op: string,
    /** Machine frame concerned, when there is one. */
    readonly mfn?: number,
  ) {
    super(`${op}: ${reason}${mfn !== undefined ? ` (mfn 0x${mfn.toString(16)})` : ''}`);
    this.name = 'HypervisorRefusal';
  }
}
