/**
 * Physical memory that remembers which frames were written: the
 * differential fuzzer's machines run on it so that the guest invariant check
 * after every statement can be incremental (guest-kernel/invariants.ts
 * IncrementalInvariantChecker redoes the census of an mm only when a table
 * frame it read was written). Every write to physical memory goes through
 * PhysMem.frameW (the guest's stores, the hypervisor's, the processor's A/D
 * updates); `discard` and `clear` change contents without it and count too.
 * Nothing modelled changes: this only observes.
 */
import { MAX_PFN, PhysMem, type Frame } from '../../emulator/phys-mem.js';
import { SNAPSHOT_COPY, type GraphCopier } from '../../emulator/snapshot.js';

export class DirtyFrameMem extends PhysMem {
  /** 1 for a frame written since the last forget(), indexed by pfn (grown on demand). */
  private dirty = new Uint8Array(4096);
  private readonly list: number[] = [];
  /** Until the first forget() (and after clear()), every frame counts as written. */
  private all = true;

  override frameW(pfn: number): Frame {
    this.mark(pfn);
    return super.frameW(pfn);
  }

  override discard(pfn: number): void {
    this.mark(pfn);
    super.discard(pfn);
  }

  /** The copy for a machine snapshot: a DirtyFrameMem too, on which every frame counts as written until its first forget(). */
  override [SNAPSHOT_COPY](c: GraphCopier): PhysMem {
    const m = super[SNAPSHOT_COPY](c);
    Object.setPrototypeOf(m, DirtyFrameMem.prototype);
    const d = m as unknown as { dirty: Uint8Array; list: number[]; all: boolean };
    d.dirty = new Uint8Array(4096);
    d.list = [];
    d.all = true;
    return m;
  }

  override clear(): void {
    super.clear();
    this.all = true;
  }

  private mark(pfn: number): void {
    if (pfn >>> 0 !== pfn || pfn >= MAX_PFN) return; // not a frame: PhysMem refuses the write
    if (pfn >= this.dirty.length) {
      let n = this.dirty.length;
      while (n <= pfn) n *= 2;
      const d = new Uint8Array(Math.min(n, MAX_PFN));
      d.set(this.dirty);
      this.dirty = d;
    }
    if (this.dirty[pfn] === 0) {
      this.dirty[pfn] = 1;
      this.list.push(pfn);
    }
  }

  /** May frame `pfn` have been written since the last forget()? (true for anything that is not a frame number) */
  written(pfn: number): boolean {
    if (this.all) return true;
    if (pfn >>> 0 !== pfn) return true;
    return pfn < this.dirty.length && this.dirty[pfn] !== 0;
  }

  /** Start a new interval: no frame written. */
  forget(): void {
    for (const pfn of this.list) this.dirty[pfn] = 0;
    this.list.length = 0;
    this.all = false;
  }
}
