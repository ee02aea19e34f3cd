/**
 * Guest memory of a shadow-paging backend: the guest's frames are the
 * machine's frames of the same number (NativeGuestMemory), and stores into
 * frames the hypervisor watches (page-table pages it was told about) are
 * reported before they land, so the hypervisor can note a change it was not
 * told about. The bulk paths (copy32, fill32, zeroPage, copyPage) go word by
 * word through write32 when they touch a watched frame.
 */
import type { Mmu } from '../../emulator/mmu.js';
import { NativeGuestMemory } from '../native.js';
import { pteHi, pteLo, type GuestPhys, type Pfn } from '../types.js';

export class ShadowGuestMemory extends NativeGuestMemory {
  constructor(
    mmu: Mmu,
    memBytes: number,
    /** 1 for a watched frame, by pfn. */
    private readonly watched: Uint8Array,
    /** Called before a store to a watched frame lands (addr is the word's guest-physical address). */
    private readonly onWatchedStore: (addr: number) => void,
  ) {
    super(mmu, memBytes);
  }

  private hits(addr: number, bytes: number): boolean {
    const first = Math.max(0, Math.floor(addr / 4096));
    const last = Math.min(this.nrPages - 1, Math.floor((addr + bytes - 1) / 4096));
    for (let p = first; p <= last; p++) if (this.watched[p] !== 0) return true;
    return false;
  }

  override write32(addr: GuestPhys, value: number): void {
    if (this.watched[Math.floor(addr / 4096)] === 1) this.onWatchedStore(addr);
    super.write32(addr, value);
  }
  override write64(addr: GuestPhys, value: bigint): void {
    this.write32(addr, pteLo(value));
    this.write32(addr + 4, pteHi(value));
  }
  override copy32(dst: GuestPhys, src: GuestPhys, bytes: number): void {
    if (!this.hits(dst, bytes)) return super.copy32(dst, src, bytes);
    for (let o = 0; o < bytes; o += 4) this.write32(dst + o, this.read32(src + o));
  }
  override fill32(addr: GuestPhys, bytes: number, value: number): void {
    if (!this.hits(addr, bytes)) return super.fill32(addr, bytes, value);
    for (let o = 0; o < bytes; o += 4) this.write32(addr + o, value);
  }
  override zeroPage(pfn: Pfn): void {
    if (this.watched[pfn] !== 1) return super.zeroPage(pfn);
    for (let o = 0; o < 4096; o += 4) if (this.read32(pfn * 4096 + o) !== 0) this.write32(pfn * 4096 + o, 0);
  }
  override copyPage(dst: Pfn, src: Pfn): void {
    if (this.watched[dst] !== 1) return super.copyPage(dst, src);
    for (let o = 0; o < 4096; o += 4) this.write32(dst * 4096 + o, this.read32(src * 4096 + o));
  }
}
