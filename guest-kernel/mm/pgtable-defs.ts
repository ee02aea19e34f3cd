/**
 * Page-table entry definitions and accessors: the _PAGE_* bits and the
 * PAGE_KERNEL* / PAGE_COPY* protections of include/asm-i386/pgtable.h, and the
 * pgd_offset / pmd_offset / pte_offset walk of pgtable-{2,3}level.h.
 *
 * Entries are `bigint` in pseudo-physical form inside the kernel; what sits
 * in memory is the machine form. Reads go through ops.pte_val/pmd_val/pgd_val
 * and values are built with make_pte/make_pmd/make_pgd before a set_* op,
 * exactly as 2.6.22 does for Xen. In 2-level paging the pmd is folded into
 * the pgd: "the pmd" of an address is its pgd entry.
 */
import {
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_P,
  PTE_PCD,
  PTE_PS,
  PTE_PWT,
  PTE_RW,
  PTE_US,
} from '../../emulator/paging-bits.js';
import type { GuestMemory, ParavirtOps } from '../../hypervisor/paravirt-ops.js';
import { PTE_PFN_MASK, pteSplit } from '../../hypervisor/types.js';
import type { Layout } from '../layout.js';

export const _PAGE_PRESENT = BigInt(PTE_P);
export const _PAGE_RW = BigInt(PTE_RW);
export const _PAGE_USER = BigInt(PTE_US);
export const _PAGE_PWT = BigInt(PTE_PWT);
export const _PAGE_PCD = BigInt(PTE_PCD);
export const _PAGE_ACCESSED = BigInt(PTE_A);
export const _PAGE_DIRTY = BigInt(PTE_D);
export const _PAGE_PSE = BigInt(PTE_PS);
export const _PAGE_GLOBAL = BigInt(PTE_G);
/** _PAGE_NX: bit 63, PAE only. */
export const _PAGE_NX = 1n << 63n;

/** _PAGE_TABLE: what a pmd entry pointing to a user pte page carries. */
export const _PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY;
/** _KERNPG_TABLE: a pmd entry pointing to a kernel pte page. */
export const _KERNPG_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY;

export const PFN_MASK = PTE_PFN_MASK;

/** The protections the kernel uses, with __supported_pte_mask applied (NX only under PAE, G when PGE). */
export interface Protections {
  PAGE_KERNEL: bigint;
  PAGE_KERNEL_RO: bigint;
  PAGE_KERNEL_EXEC: bigint;
  PAGE_KERNEL_LARGE: bigint;
  PAGE_KERNEL_LARGE_EXEC: bigint;
  /** Private mappings (protection_map): COW pages are mapped read-only until written. */
  PAGE_READONLY: bigint;
  PAGE_READONLY_EXEC: bigint;
  PAGE_COPY: bigint;
  PAGE_COPY_EXEC: bigint;
  /** NX bit in use (PAE with EFER.NXE), 0n otherwise. */
  NX: bigint;
}

export function protections(pae: boolean, global: boolean): Protections {
  const NX = pae ? _PAGE_NX : 0n;
  // __PAGE_KERNEL_EXEC = P | RW | D | A, plus _PAGE_GLOBAL when the CPU has PGE
  // (pagetable_init); Xen hides PGE from its guests.
  const KEXEC = _PAGE_PRESENT | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED | (global ? _PAGE_GLOBAL : 0n);
  const K = KEXEC | NX;
  const USER_RO = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
  return {
    PAGE_KERNEL: K,
    PAGE_KERNEL_RO: K & ~_PAGE_RW,
    PAGE_KERNEL_EXEC: KEXEC,
    PAGE_KERNEL_LARGE: K | _PAGE_PSE,
    PAGE_KERNEL_LARGE_EXEC: KEXEC | _PAGE_PSE,
    PAGE_READONLY: USER_RO | NX,
    PAGE_READONLY_EXEC: USER_RO,
    PAGE_COPY: USER_RO | NX,
    PAGE_COPY_EXEC: USER_RO,
    NX,
  };
}

/** The state the walkers need: the backend and the layout. */
export interface PtCtx {
  readonly ops: ParavirtOps;
  readonly mem: GuestMemory;
  readonly L: Layout;
}

/** Raw (machine-form) entry at a guest-physical address. */
export function readRaw(k: PtCtx, addr: number): bigint {
  return k.L.pae ? k.mem.read64(addr) : BigInt(k.mem.read32(addr) >>> 0);
}

/** *ptep, pseudo-physical form (pte_val). */
export function pte_read(k: PtCtx, ptep: number): bigint {
  const raw = readRaw(k, ptep);
  return raw === 0n ? 0n : k.ops.pte_val(raw);
}

/** *pmdp, pseudo-physical form (pmd_val). */
export function pmd_read(k: PtCtx, pmdp: number): bigint {
  const raw = readRaw(k, pmdp);
  return raw === 0n ? 0n : k.ops.pmd_val(raw);
}

/** *pgdp, pseudo-physical form (pgd_val). */
export function pgd_read(k: PtCtx, pgdp: number): bigint {
  const raw = readRaw(k, pgdp);
  return raw === 0n ? 0n : k.ops.pgd_val(raw);
}

export function present(v: bigint): boolean {
  return (v & _PAGE_PRESENT) !== 0n;
}

/** Frame (pfn) of an entry value. */
export function entryPfn(v: bigint): number {
  // Bits 35:12 (= Number(v >> 12n) & 0xffffff for any 64-bit entry), from the two words.
  const w = pteSplit(v);
  return (w[0]! >>> 12) | ((w[1]! & 0xf) << 20);
}

/** Guest-physical address of the table an entry points to. */
export function entryPa(v: bigint): number {
  // Number(v & PFN_MASK), from the two words.
  const w = pteSplit(v);
  return ((w[0]! & 0xfffff000) >>> 0) + (w[1]! & 0xf) * 0x100000000;
}

/** pfn_pte(pfn, prot) */
export function pfn_pte(pfn: number, prot: bigint): bigint {
  return (BigInt(pfn) << 12n) | prot;
}

/** pgd_offset(pgd base, address): address of the pgd entry. */
export function pgd_offset(k: PtCtx, pgdBase: number, va: number): number {
  return pgdBase + Math.floor((va >>> 0) / k.L.PGDIR_SIZE) * k.L.ENTRY_SIZE;
}

/**
 * pmd_offset(pud, address): address of the pmd entry. PAE: inside the pmd
 * page the pgd entry points to (whatever the pgd entry holds: an empty entry
 * yields an address in page 0, as Linux would compute it). 2-level: the pgd
 * entry itself.
 */
export function pmd_offset(k: PtCtx, pgdp: number, va: number): number {
  if (!k.L.pae) return pgdp;
  return entryPa(pgd_read(k, pgdp)) + ((va >>> 21) & 511) * 8;
}

/** pte_offset_kernel(pmd, address): address of the pte entry in the pte page the pmd value points to. */
export function pte_offset(k: PtCtx, pmdVal: bigint, va: number): number {
  return entryPa(pmdVal) + (k.L.pae ? ((va >>> 12) & 511) * 8 : ((va >>> 12) & 1023) * 4);
}

/** Zero `bytes` of guest memory at `addr` (memset). */
export function memzero(mem: GuestMemory, addr: number, bytes: number): void {
  if (mem.fill32 !== undefined && bytes % 4 === 0) {
    mem.fill32(addr, bytes, 0); // the same stores, done by the backend
    return;
  }
  for (let off = 0; off < bytes; off += 4) mem.write32(addr + off, 0);
}

/** memcpy between guest-physical addresses. */
export function memcpy(mem: GuestMemory, dst: number, src: number, bytes: number): void {
  if (mem.copy32 !== undefined && bytes % 4 === 0) {
    mem.copy32(dst, src, bytes); // the same loads and stores, done by the backend
    return;
  }
  for (let off = 0; off < bytes; off += 4) mem.write32(dst + off, mem.read32(src + off));
}
