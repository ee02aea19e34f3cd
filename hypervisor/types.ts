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

// ---- entry values as 32-bit words, without BigInt arithmetic ----
// Why: shifting and masking a bigint allocates and calls into the runtime
// (100+ ns each); storing it into a BigUint64Array and reading the two
// halves back is a few ns. The hot paths (fork's pte copy, exit's zap, the
// backends' stores and conversions) use these; the results are exactly
// those of the BigInt expressions named below, for every bigint (a
// BigUint64Array store takes the value modulo 2^64, as `& 0xffff...n` does).
const W64 = new BigUint64Array(1);
const W32 = new Uint32Array(W64.buffer);
const LITTLE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const LO = LITTLE ? 0 : 1;
const HI = LITTLE ? 1 : 0;

/** Number(v & 0xffffffffn): the low word of an entry, as uint32. */
export function pteLo(v: PteVal): number {
  W64[0] = v;
  return W32[LO]!;
}

/** Number((v >> 32n) & 0xffffffffn): the high word of an entry, as uint32. */
export function pteHi(v: PteVal): number {
  W64[0] = v;
  return W32[HI]!;
}

const WORDS = LITTLE ? W32 : new Uint32Array(2);

/**
 * Both words at once (one conversion instead of two): [0] = pteLo(v), [1] =
 * pteHi(v). The array is scratch, overwritten by the next call of any of
 * these functions: read it at once.
 */
export function pteSplit(v: PteVal): Uint32Array {
  W64[0] = v;
  if (!LITTLE) {
    WORDS[0] = W32[LO]!;
    WORDS[1] = W32[HI]!;
  }
  return WORDS;
}

/** (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0): an entry from its two words. */
export function pteFromWords(lo: number, hi: number): PteVal {
  W32[LO] = lo;
  W32[HI] = hi;
  return W64[0]!;
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

/**
 * The guest kernel hit BUG() or oopsed (a kernel-mode fault it cannot fix:
 * do_page_fault's no_context, do_general_protection in kernel mode). The
 * guest kernel throws it; a backend throws it too when a store the guest
 * makes through GuestMemory faults and the fault is delivered to the
 * guest's do_page_fault, which has no fixup for it (GuestMemory stores have
 * no result to return the fault through). Defined here, on the interface,
 * so both sides use one class; guest-kernel re-exports it.
 */
export class KernelBug extends Error {
  constructor(
    readonly where: string,
    message: string,
  ) {
    super(`kernel BUG in ${where}: ${message}`);
    this.name = 'KernelBug';
  }
}
