/**
 * The hypervisor hole: Xen lives in the top of every address space, PAE from
 * HYPERVISOR_VIRT_START = 0xF5800000 (168 MiB), 2-level from 0xFC000000
 * (64 MiB). Its mappings are entries Xen itself writes into the guest's
 * tables:
 *  - PAE: L2 entries 428..511 of the L2 in L3 slot 3, written when an L3 is
 *    validated and its slot-3 L2 has been typed L2 + pae_xen_l2
 *    (create_pae_xen_mappings). This is why that L2 cannot be shared.
 *  - 2-level: L2 entries 1008..1023 of every L2, written when the L2 is
 *    validated (alloc_l2_table: every 2-level L2 is a root).
 *
 * What they map here is harmless: Xen's own L1 frame (outside guest memory)
 * mapping Xen's read-only m2p pages, supervisor-only. The guest can neither
 * see them (user accesses fault on U/S=0; the guest kernel's segments stop
 * below the hole, see xen-backend access()) nor change them (its updates into
 * those slots are refused: "Illegal L2 update attempt in Xen-private area").
 */
import type { PhysMem } from '../../emulator/phys-mem.js';
import { PTE_A, PTE_P, PTE_RW } from '../../emulator/paging-bits.js';
import {
  HYPERVISOR_VIRT_START_2LEVEL,
  HYPERVISOR_VIRT_START_PAE,
  L2_FIRST_XEN_SLOT_2LEVEL,
  L2_FIRST_XEN_SLOT_PAE,
} from './abi.js';

/** Xen's L2 entries for its own L1 (__PAGE_HYPERVISOR without D): present, writable, supervisor. */
const HOLE_L2_FLAGS = PTE_P | PTE_RW | PTE_A;
/** Xen's read-only m2p pages as the hole maps them: present, read-only, supervisor. */
const HOLE_L1_FLAGS = PTE_P | PTE_A;

export class XenHole {
  readonly start: number;
  readonly firstSlot: number;
  readonly slots: number;
  private readonly entries: number;

  /**
   * @param holeL1 Xen's L1 frame for the hole.
   * @param m2pFrames Xen's frames it maps (read-only).
   */
  constructor(
    private readonly mem: PhysMem,
    readonly pae: boolean,
    readonly holeL1: number,
    readonly m2pFrames: readonly number[],
  ) {
    this.start = pae ? HYPERVISOR_VIRT_START_PAE : HYPERVISOR_VIRT_START_2LEVEL;
    this.firstSlot = pae ? L2_FIRST_XEN_SLOT_PAE : L2_FIRST_XEN_SLOT_2LEVEL;
    this.entries = pae ? 512 : 1024;
    this.slots = this.entries - this.firstSlot;
    // Xen's L1: every entry maps one of the m2p frames, read-only, supervisor.
    for (let i = 0; i < this.entries; i++) {
      const f = m2pFrames[i % m2pFrames.length]!;
      this.writeEntry(holeL1, i, f, HOLE_L1_FLAGS);
    }
  }

  private writeEntry(mfn: number, i: number, target: number, flags: number): void {
    if (this.pae) {
      this.mem.setWord(mfn, 2 * i, ((target % 0x100000) * 4096 + flags) | 0);
      this.mem.setWord(mfn, 2 * i + 1, Math.floor(target / 0x100000));
    } else {
      this.mem.setWord(mfn, i, (target * 4096 + flags) | 0);
    }
  }

  /** Is `slot` of an L2 one of Xen's (for the slot-3 L2 under PAE, every L2 in 2-level)? */
  isXenSlot(slot: number): boolean {
    return slot >= this.firstSlot;
  }

  /** Write Xen's private mappings into L2 frame `l2mfn` (create_pae_xen_mappings / alloc_l2_table). */
  install(l2mfn: number): number {
    for (let s = this.firstSlot; s < this.entries; s++) this.writeEntry(l2mfn, s, this.holeL1, HOLE_L2_FLAGS);
    return this.slots;
  }

  /** Are Xen's entries in `l2mfn` all as Xen wrote them? (the invariant checker) */
  isIntact(l2mfn: number): boolean {
    const lo = ((this.holeL1 % 0x100000) * 4096 + HOLE_L2_FLAGS) >>> 0;
    const hi = Math.floor(this.holeL1 / 0x100000);
    for (let s = this.firstSlot; s < this.entries; s++) {
      if (this.pae) {
        // The processor may set A/D in them; compare the rest.
        if ((this.mem.word(l2mfn, 2 * s) & ~0x60) >>> 0 !== (lo & ~0x60) >>> 0) return false;
        if (this.mem.word(l2mfn, 2 * s + 1) !== hi) return false;
      } else if ((this.mem.word(l2mfn, s) & ~0x60) >>> 0 !== (lo & ~0x60) >>> 0) return false;
    }
    return true;
  }
}
