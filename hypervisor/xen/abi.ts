/**
 * The hypercall interface numbers and the hypervisor's address-space layout,
 * as Xen 3.1.0 defines them (xen/include/public/xen.h,
 * xen/include/asm-x86/config.h, x86_32/page-{2,3}level.h). Kept apart so
 * both sides of the interface (the guest-side ops and the hypervisor model)
 * and the tests use the same numbers.
 */

// ---- mmu_update commands: the low bits of `ptr` (public/xen.h) ----
/** A checked update of a page-table entry at machine address `ptr`. */
export const MMU_NORMAL_PT_UPDATE = 0;
/** Update the machine-to-physical table: m2p[ptr >> 12] = val. */
export const MMU_MACHPHYS_UPDATE = 1;

// ---- mmuext_op commands (public/xen.h) ----
export const MMUEXT_PIN_L1_TABLE = 0;
export const MMUEXT_PIN_L2_TABLE = 1;
export const MMUEXT_PIN_L3_TABLE = 2;
export const MMUEXT_PIN_L4_TABLE = 3;
export const MMUEXT_UNPIN_TABLE = 4;
export const MMUEXT_NEW_BASEPTR = 5;
export const MMUEXT_TLB_FLUSH_LOCAL = 6;
export const MMUEXT_INVLPG_LOCAL = 7;
export const MMUEXT_TLB_FLUSH_ALL = 10;
export const MMUEXT_INVLPG_ALL = 11;

export const MMUEXT_NAMES: Record<number, string> = {
  [MMUEXT_PIN_L1_TABLE]: 'PIN_L1_TABLE',
  [MMUEXT_PIN_L2_TABLE]: 'PIN_L2_TABLE',
  [MMUEXT_PIN_L3_TABLE]: 'PIN_L3_TABLE',
  [MMUEXT_PIN_L4_TABLE]: 'PIN_L4_TABLE',
  [MMUEXT_UNPIN_TABLE]: 'UNPIN_TABLE',
  [MMUEXT_NEW_BASEPTR]: 'NEW_BASEPTR',
  [MMUEXT_TLB_FLUSH_LOCAL]: 'TLB_FLUSH_LOCAL',
  [MMUEXT_INVLPG_LOCAL]: 'INVLPG_LOCAL',
  [MMUEXT_TLB_FLUSH_ALL]: 'TLB_FLUSH_ALL',
  [MMUEXT_INVLPG_ALL]: 'INVLPG_ALL',
};

// ---- vm_assist (public/xen.h) ----
export const VMASST_CMD_ENABLE = 0;
export const VMASST_CMD_DISABLE = 1;
/** Writes to read-only mapped L1 tables trap and are emulated (ptwr). */
export const VMASST_TYPE_WRITABLE_PAGETABLES = 2;
/** PAE L3 tables may live above 4 GiB (Xen keeps a low copy for CR3). */
export const VMASST_TYPE_PAE_EXTENDED_CR3 = 3;

/** Highest vm_assist type Xen 3.1 accepts (public/xen.h MAX_VMASST_TYPE). */
export const MAX_VMASST_TYPE = 3;

// ---- update_va_mapping flags (public/xen.h) ----
export const UVMF_NONE = 0;
export const UVMF_TLB_FLUSH = 1;
export const UVMF_INVLPG = 2;
export const UVMF_FLUSHTYPE_MASK = 3;
export const UVMF_LOCAL = 0;
export const UVMF_ALL = 4;

// ---- error numbers a hypercall returns ----
export const ENOMEM = 12;
export const EINVAL = 22;
export const ENOSYS = 38;

// ---- the hypervisor hole (asm-x86/config.h) ----
/** PAE: Xen owns 0xF5800000..0xFFFFFFFF (168 MiB). */
export const HYPERVISOR_VIRT_START_PAE = 0xf5800000;
/** 2-level: Xen owns 0xFC000000..0xFFFFFFFF (64 MiB). */
export const HYPERVISOR_VIRT_START_2LEVEL = 0xfc000000;
/** PAE: first Xen slot of the L2 in L3 slot 3 (0xF5800000 - 0xC0000000) >> 21. */
export const L2_FIRST_XEN_SLOT_PAE = 428;
/** 2-level: first Xen slot of every L2 (0xFC000000 >> 22). */
export const L2_FIRST_XEN_SLOT_2LEVEL = 1008;

/** PAE L3 frames must be below 4 GiB unless pae_extended_cr3 (mfn < 0x100000). */
export const PAE_L3_LIMIT_MFN = 0x100000;

/** The guest's domain id in messages ("for dom1"). */
export const GUEST_DOMID = 1;

/** reserve_top_address(-HYPERVISOR_VIRT_START + 2 pages), as Linux's Xen port does. */
export function reservedTopFor(pae: boolean): number {
  const start = pae ? HYPERVISOR_VIRT_START_PAE : HYPERVISOR_VIRT_START_2LEVEL;
  return 2 ** 32 - start + 2 * 4096;
}
