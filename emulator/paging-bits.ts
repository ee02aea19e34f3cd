/**
 * Architectural constants of 32-bit x86 paging, named as the Intel SDM vol. 3
 * names them (ch. 2 control registers, ch. 4 paging). Everything here is a
 * plain number so the hot paths stay in int32 arithmetic.
 *
 * A PAE entry is 64 bits wide. Inside the emulator it is handled as two
 * uint32 halves (lo, hi); bit 63 (XD/NX) is bit 31 of `hi`. Outside the
 * emulator (hypervisor and guest interfaces) a whole entry is a `bigint`.
 *
 *   PTE / PDE (both modes), low word:
 *   31            12 11  9 8 7   6 5 4   3   2   1   0
 *   | frame        | avl | G |PS/PAT| D | A |PCD|PWT|U/S|R/W| P |
 */

// ---- CR0 (SDM 2.5) ----
export const CR0_PE = 1 << 0; // protection enable
export const CR0_WP = 1 << 16; // supervisor writes honour R/W
export const CR0_PG = 1 << 31; // paging

// ---- CR3 ----
export const CR3_PWT = 1 << 3;
export const CR3_PCD = 1 << 4;
/** 2-level paging: page directory base, bits 31:12. */
export const CR3_PD_MASK = 0xfffff000 | 0;
/** PAE paging: PDPT base, 32-byte aligned, bits 31:5. */
export const CR3_PDPT_MASK = 0xffffffe0 | 0;

// ---- CR4 ----
export const CR4_PSE = 1 << 4; // 4 MiB pages in 2-level paging
export const CR4_PAE = 1 << 5;
export const CR4_PGE = 1 << 7; // global pages

// ---- IA32_EFER ----
export const EFER_NXE = 1 << 11;

// ---- paging-structure entry bits (low word) ----
export const PTE_P = 1 << 0;
export const PTE_RW = 1 << 1;
export const PTE_US = 1 << 2;
export const PTE_PWT = 1 << 3;
export const PTE_PCD = 1 << 4;
export const PTE_A = 1 << 5;
export const PTE_D = 1 << 6;
/** Page size in a PDE (bit 7); PAT in a 4 KiB PTE. */
export const PTE_PS = 1 << 7;
export const PTE_PAT = 1 << 7;
export const PTE_G = 1 << 8;
export const PTE_AVL_MASK = 0xe00;
export const PTE_FRAME_MASK = 0xfffff000 | 0;
/** XD (execute-disable), bit 63 of a PAE entry: bit 31 of the high word. */
export const PTE_NX_HI = 1 << 31;

/** Physical address width: MAXPHYADDR = 36 (SDM 4.1.4, P6 family PAE). */
export const MAXPHYADDR = 36;
export const PHYS_ADDR_LIMIT = 2 ** MAXPHYADDR;
/** In the high word of a PAE entry, the address bits 35:32 are bits 3:0. */
export const PAE_HI_ADDR_MASK = 0x0000000f;

// ---- reserved bits (SDM 4.3, 4.4.1, 4.4.2, 4.7) ----
/**
 * 2-level paging, PDE with PS=1 and CR4.PSE=1: bits 16:13 hold address bits
 * 35:32 (PSE-36) and bits 21:17 are reserved, i.e. bits 21:(M-19) for M=36.
 */
export const PDE4M_RSVD_LO = 0x003e0000;
export const PDE4M_ADDR_HI_MASK = 0x0001e000; // bits 16:13 -> address 35:32
/** PAE PDPTE (register load): bits 2:1 and 8:5 reserved in the low word... */
export const PDPTE_RSVD_LO = 0x000001e6;
/** ...and bits 63:36 in the high word. */
export const PDPTE_RSVD_HI = 0xfffffff0 | 0;
/** PAE PDE/PTE: bits 62:36 reserved (bit 63 too unless EFER.NXE). */
export const PAE_RSVD_HI = 0x7ffffff0;
/** PAE PDE with PS=1 (2 MiB page): bits 20:13 also reserved. */
export const PDE2M_RSVD_LO = 0x001fe000;

// ---- #PF error code (SDM 4.7) ----
export const PFEC_P = 1 << 0;
export const PFEC_W = 1 << 1;
export const PFEC_U = 1 << 2;
export const PFEC_RSVD = 1 << 3;
export const PFEC_ID = 1 << 4;

// ---- access kinds ----
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_FETCH = 2;
export type AccessKind = 0 | 1 | 2;
export const ACCESS_NAMES = ['read', 'write', 'fetch'] as const;

// ---- page sizes ----
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const PAGE_MASK = 0xfffff000 | 0;
